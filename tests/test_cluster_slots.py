"""A busy room's slot moves from one Redis Cluster master to another under traffic: the
nodes follow the cluster's redirections (ASK while it migrates, MOVED once it moved) and
every acknowledged message reaches every member once, in order, with the room's ids."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.crc import key_slot

from aiohttp_chat.cluster import keys

from .support.checks import eventually
from .support.peers import TIMEOUT
from .support.redis_cluster import RedisClusterServer, SlotMove
from .support.servers import StartNode

ROOM = "Busy"
SLOT = key_slot(keys.history(ROOM).encode())  # every key of the room, and its channel


@pytest.fixture
def redis_server(redis_cluster: RedisClusterServer) -> RedisClusterServer:
    """The nodes here share a three-master Redis Cluster."""
    return redis_cluster


class Member:
    """A member of the busy room that reads everything it is sent, as it comes, and may
    send chat messages one at a time, each once the last was acknowledged."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, nick: str) -> None:
        self.ws, self.nick = ws, nick
        self.heard: list[dict[str, Any]] = []  # chat messages of the others
        self.acked: list[str] = []  # the ids of its own, acknowledged
        self.failed: list[dict[str, Any]] = []
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "success" in data:
                self.replies.put_nowait(data)
            elif data["action"] == "chat_message":
                self.heard.append(data)

    async def ask(self, **request: Any) -> dict[str, Any]:
        await self.ws.send_json(request)
        return await asyncio.wait_for(self.replies.get(), TIMEOUT)

    async def say(self, text: str) -> None:
        reply = await self.ask(action="chat_message", message=text)
        if reply["success"]:
            self.acked.append(reply["id"])
        else:
            self.failed.append(reply)

    async def chatter(self, until: asyncio.Event) -> None:
        """Say `NICK:0`, `NICK:1`, ... until told to stop."""
        while not until.is_set():
            await self.say(f"{self.nick}:{len(self.acked) + len(self.failed)}")


async def join(session: aiohttp.ClientSession, node: TestClient[Any, Any], nick: str) -> Member:
    ws = await session.ws_connect(str(node.make_url("/chat")))
    assert (await ws.receive_json(timeout=TIMEOUT))["action"] == "connecting"
    member = Member(ws, nick)
    assert (await member.ask(action="set_nick", nick=nick))["success"] is True
    assert (await member.ask(action="join_room", room=ROOM))["success"] is True
    return member


@contextlib.asynccontextmanager
async def busy_room(node: StartNode) -> AsyncIterator[list[Member]]:
    """Three members of the busy room on each of two nodes, named `PORT-i` for theirs; the
    room's log long enough to hold all that a test says."""
    nodes = [await node(history=100_000), await node(history=100_000)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        members = []
        for place in nodes:
            members += [await join(session, place, f"{place.port}-{i}") for i in range(3)]
        try:
            yield members
        finally:
            for member in members:
                member.reading.cancel()
                await member.ws.close()


def number(id: str) -> tuple[str, int]:
    """A chat message id's epoch and number (`EPOCH-0-N`)."""
    epoch, _, n = id.rpartition("-")
    return epoch, int(n)


async def everyone_heard_everything(members: list[Member]) -> None:
    """Every acknowledged message reached every other member once, and nothing else did;
    the room's ids are of one epoch, numbered without gaps; and each member heard the
    messages said on each node in the order of the room's log.

    (Not all of them in that order: a member hears those of its own node as they are
    acknowledged, those of the others from Redis, on another connection.)"""
    said = {id: member for member in members for id in member.acked}
    ids = sorted(said, key=lambda id: number(id)[1])
    assert {number(id)[0] for id in ids} == {number(ids[0])[0]}, "a new epoch: keys were lost"
    assert [number(id)[1] for id in ids] == list(range(1, len(ids) + 1))

    def expected(member: Member) -> list[str]:
        return [id for id in ids if said[id] is not member]

    async def all_heard() -> bool:
        return all(len(member.heard) >= len(expected(member)) for member in members)

    await eventually(all_heard, 10)
    for member in members:
        heard = [message["id"] for message in member.heard]
        assert sorted(heard, key=lambda id: number(id)[1]) == expected(member), member.nick
        for node in {node_of(other) for other in members}:
            from_node = [number(id)[1] for id in heard if node_of(said[id]) == node]
            assert from_node == sorted(from_node), (member.nick, node)
        for message in member.heard:  # and the text is the one acknowledged with the id
            assert message["message"].split(":")[0] == message["user"] == said[message["id"]].nick


def node_of(member: Member) -> str:
    return member.nick.split("-")[0]  # its node's port


async def under_traffic(members: list[Member], step: Callable[[], Any]) -> None:
    """Run `step` while two members on each node chat as fast as they are answered."""
    stop = asyncio.Event()
    senders = [members[0], members[1], members[3], members[4]]
    chatter = [asyncio.create_task(member.chatter(stop)) for member in senders]
    try:
        await asyncio.sleep(0.3)
        await step()
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*chatter)


async def test_a_slot_moved_under_traffic_loses_nothing(
    node: StartNode, redis_cluster: RedisClusterServer
) -> None:
    async with busy_room(node) as members, SlotMove(redis_cluster, SLOT) as move:

        async def moving() -> None:
            await move.begin()
            await asyncio.sleep(0.2)  # commands for the keys the source still has: there
            assert await move.migrate_keys() > 0
            await asyncio.sleep(0.2)  # the keys are the target's: ASKed there
            await move.finish()

        await under_traffic(members, moving)
        assert await move.keys_at(move.target) > 0 and await move.keys_at(move.source) == 0
        assert all(not member.failed for member in members), [m.failed for m in members]
        assert sum(len(member.acked) for member in members) > 40  # before, during, after
        await under_traffic(members, lambda: asyncio.sleep(0.1))  # and on the new shard
        await everyone_heard_everything(members)


async def test_commands_asked_to_the_target_while_the_slot_migrates_are_answered(
    node: StartNode, redis_cluster: RedisClusterServer
) -> None:
    """While the slot migrates and its keys are the target's, the source answers ASK for
    every command of the room: each is sent again to the target after ASKING."""
    async with busy_room(node) as members, SlotMove(redis_cluster, SLOT) as move:
        for member in members:
            await member.say(f"{member.nick}:0")
        await move.begin()
        assert await move.migrate_keys() > 0
        before = sum(len(member.acked) for member in members)

        async def migrating() -> None:
            await asyncio.sleep(0.5)  # the slot stays half moved meanwhile

        await under_traffic(members, migrating)
        assert all(not member.failed for member in members), [m.failed for m in members]
        assert sum(len(member.acked) for member in members) > before + 10
        assert await move.keys_at(move.source) == 0  # so all of them ran on the target
        await move.finish()
        await under_traffic(members, lambda: asyncio.sleep(0.1))
        await everyone_heard_everything(members)
