"""Every acknowledged chat message reaches every member of the other nodes once, in order,
whatever Redis does meanwhile; or the member is told to catch up. On one Redis and on a
Redis Cluster, with real nodes and a real redis-server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from aiohttp_chat import protocol
from aiohttp_chat.cluster import keys
from aiohttp_chat.cluster.catchup import Catchup
from aiohttp_chat.metrics import Stats
from aiohttp_chat.protocol import UNAVAILABLE

from .support.checks import eventually
from .support.peers import Peer, open_peer
from .support.prometheus import scrape, value
from .support.redis import RedisServer
from .support.servers import StartNode


@pytest.fixture
def redis_server(each_redis: RedisServer) -> RedisServer:
    return each_redis


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Any]:
    if redis_server.cluster:
        client: Any = redis.RedisCluster.from_url(redis_server.url)
    else:
        client = redis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def _pair(node: StartNode, room: str = "Lounge") -> tuple[Peer, Peer, Any, Any]:
    """alice on one node, bob on another, both in `room`; the two nodes."""
    one, two = await node(), await node()
    alice, bob = await open_peer(one), await open_peer(two)
    for peer, nick in ((alice, "alice"), (bob, "bob")):
        await peer.set_nick(nick)
        await peer.join(room)
    await alice.drain()
    await bob.drain()
    return alice, bob, one, two


class Sender:
    """alice, sending a message every 50 ms for as long as asked (fewer in two seconds than
    a room's log holds), trying again when Redis is away; the ids acknowledged, in order."""

    def __init__(self, peer: Peer) -> None:
        self.peer, self.acked, self.refused = peer, [], 0

    async def run(self, seconds: float) -> None:
        deadline, n = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            reply = await self.peer.ask(action="chat_message", message=f"m{n}")
            if reply["success"]:
                self.acked.append(reply["id"])
                n += 1
            else:
                assert reply["message"] == UNAVAILABLE, reply
                self.refused += 1
            await asyncio.sleep(0.05)


async def _heard(peer: Peer, settle: float = 3.0) -> list[Any]:
    """Every chat message `peer` received, until none came for `settle` seconds."""
    messages = []
    while True:
        try:
            message = await asyncio.wait_for(peer.recv(), settle)
        except TimeoutError:
            return messages
        if message["action"] == "chat_message":
            messages.append(message)


async def _told_to_catch_up(peer: Peer, after: str) -> bool:
    reply = await peer.ask(action="history", after=after, limit=1)
    assert reply["success"], reply
    return not reply["complete"]


def _check_delivery(acked: list[str], heard: list[Any]) -> list[str]:
    """Each message heard once, in the order sent; the acknowledged ones not heard."""
    ids = [message["id"] for message in heard]
    assert len(ids) == len(set(ids)), "a message was delivered twice"
    assert ids == [id for id in acked if id in set(ids)], "out of order"
    return [id for id in acked if id not in set(ids)]


# ------------------------------------------------------------------------ the attacks


async def test_messages_acknowledged_while_redis_restarts_empty_reach_the_other_node(
    node: StartNode, redis_server: RedisServer
) -> None:
    """Redis killed and restarted empty under traffic: the messages acknowledged after it
    came back are in the rooms' logs before the other node has subscribed again."""
    alice, bob, _, _ = await _pair(node)
    sender = Sender(alice)
    sending = asyncio.create_task(sender.run(5.0))
    await asyncio.sleep(1.0)
    redis_server.stop()
    await asyncio.sleep(0.5)
    redis_server.start()  # empty: no persistence
    await sending
    heard = await _heard(bob)
    assert sender.refused > 0  # it was away
    after_restart = [id for id in sender.acked if id.split("-")[0] != sender.acked[0].split("-")[0]]
    assert after_restart  # a new epoch: the log was lost with Redis
    missing = _check_delivery(sender.acked, heard)
    assert not [id for id in missing if id in after_restart], "acknowledged, never delivered"
    # What the old log held is gone: bob cannot know whether he missed some of it.
    assert await _told_to_catch_up(bob, heard[-1]["id"])
    assert not await _told_to_catch_up(bob, heard[-1]["id"])  # told once


async def test_a_killed_subscription_loses_nothing(
    node: StartNode, redis_server: RedisServer, redis_client: Any
) -> None:
    alice, bob, _, two = await _pair(node)
    sender = Sender(alice)
    sending = asyncio.create_task(sender.run(4.0))
    await asyncio.sleep(1.0)
    if redis_server.cluster:
        await redis_client.execute_command(
            "CLIENT KILL", "TYPE", "pubsub", target_nodes=redis.RedisCluster.PRIMARIES
        )
    else:
        await redis_client.client_kill_filter(_type="pubsub")
    await sending
    heard = await _heard(bob)
    assert _check_delivery(sender.acked, heard) == []
    assert not await _told_to_catch_up(bob, heard[-1]["id"])  # nothing was lost
    samples = await scrape(two)
    assert value(samples, "redis_unrecoverable_total") == 0


async def _append_unpublished(
    redis_client: Any, room: str, text: str, *, history: int = 100
) -> str:
    """A chat message added to `room`'s log the way a node adds one, but published on a
    channel nobody hears: as if its publication were lost on the way. Its id."""
    prefix, suffix = protocol.chat_broadcast_parts(text, "carol", "2026-12-01T10:00:00.000Z")
    args = [history, 3_600_000, "lostepoch", "chat:nowhere", "elsewhere", prefix, suffix]
    args += ["carol", text, "2026-12-01T10:00:00.000Z", "PUBLISH"]
    log = [keys.history(room), keys.epoch(room)]
    id = await redis_client.eval(keys.APPEND, 2, *log, *args)
    return id.decode() if isinstance(id, bytes) else str(id)


async def test_a_gap_in_the_ids_is_filled_from_the_log(node: StartNode, redis_client: Any) -> None:
    alice, bob, _, two = await _pair(node)
    first = await alice.ask(action="chat_message", message="first")
    lost = await _append_unpublished(redis_client, "Lounge", "lost on the way")
    after = await alice.ask(action="chat_message", message="after")
    heard = await _heard(bob, settle=1.0)
    assert [(m["id"], m["user"], m["message"]) for m in heard] == [
        (first["id"], "alice", "first"),
        (lost, "carol", "lost on the way"),  # fetched when "after" showed the gap
        (after["id"], "alice", "after"),
    ]
    assert value(await scrape(two), "redis_recovered_total") >= 1
    assert not await _told_to_catch_up(bob, after["id"])


async def test_what_the_log_no_longer_holds_is_told_not_skipped(
    node: StartNode, redis_client: Any
) -> None:
    one, two = await node(history=1), await node(history=1)
    alice, bob = await open_peer(one), await open_peer(two)
    for peer in (alice, bob):
        await peer.join("Lounge")
    await alice.drain()
    await alice.ask(action="chat_message", message="first")
    for text in ("lost one", "lost two"):
        await _append_unpublished(redis_client, "Lounge", text, history=1)
    after = await alice.ask(action="chat_message", message="after")
    heard = await _heard(bob, settle=1.0)
    assert [m["message"] for m in heard] == ["first", "after"]  # the log kept only "after"
    paged = await bob.ask(action="history", before=after["id"])  # paging back tells nothing
    assert (paged["messages"], paged["complete"]) == ([], True)
    assert await _told_to_catch_up(bob, after["id"])  # though "after" is the newest id
    assert value(await scrape(two), "redis_unrecoverable_total") == 1


async def test_a_member_who_arrives_is_not_sent_what_was_said_before(
    node: StartNode,
) -> None:
    """A node starts to follow a room where its log ends: a newcomer on a node that had
    nobody in the room hears only what is said after it joined (history is for the rest)."""
    one, two = await node(), await node()
    alice = await open_peer(one)
    await alice.join("Lounge")
    for n in range(5):
        await alice.ask(action="chat_message", message=f"before {n}")
    bob = await open_peer(two)
    await bob.join("Lounge")
    await alice.ask(action="chat_message", message="now")
    heard = await _heard(bob, settle=1.0)
    assert [m["message"] for m in heard] == ["now"]
    await eventually(lambda: _quiet(two), 2)


async def _quiet(client: TestClient[Any, Any]) -> bool:
    samples = await scrape(client)
    return (
        value(samples, "redis_unrecoverable_total") == value(samples, "redis_recovered_total") == 0
    )


# ------------------------------------------------------------------------ the rules alone


class Followed:
    """A `Catchup` of node `here` following Lounge, whose log `fetch` reads: what it
    delivered, and whether it told the members they missed something."""

    def __init__(self, fetch: Any, tail: tuple[bytes, bytes] = (b"", b"")) -> None:
        self.delivered: list[bytes] = []
        self.missed: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.catchup = Catchup(
            b"here",
            fetch,
            lambda room, body: self.delivered.append(body),
            self.missed.append,
            lambda coroutine: self.tasks.append(asyncio.create_task(coroutine)),
            Stats(),
        )
        self.catchup.follow("Lounge")
        self.catchup.start_at("Lounge", tail)

    async def settled(self) -> None:
        await asyncio.gather(*self.tasks)


def _log_entry(n: int, origin: bytes = b"there") -> tuple[bytes, list[bytes]]:
    fields = [b"o", origin, b"u", b"alice", b"m", f"m{n}".encode(), b"t", b"2026-12-02 03:00:00"]
    return f"0-{n}".encode(), fields


async def test_a_room_whose_log_was_empty_catches_up_on_all_it_holds_later() -> None:
    """The subscription came back before anyone spoke in a room just followed: everything
    its log holds by then was said after, so all of it is delivered and nothing is missed."""
    log = [_log_entry(1), _log_entry(2)]

    async def fetch(room: str, epoch: str, n: int) -> Any:
        return b"E", [entry for entry in log if int(entry[0][2:]) > n]

    followed = Followed(fetch)
    followed.catchup.resubscribed("Lounge")
    await followed.settled()
    assert [json.loads(body)["id"] for body in followed.delivered] == ["E-0-1", "E-0-2"]
    assert followed.missed == []
    followed.catchup.heard("Lounge", (b"there", b"E-0-2", b"again"))  # seen: dropped
    followed.catchup.heard("Lounge", (b"there", b"E-0-3", b"next"))
    assert followed.delivered[2:] == [b"next"]


async def test_a_catch_up_that_fails_leaves_the_room_heard_and_its_members_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A log this version cannot read (or a bug) ends one catch-up, not the room: what was
    heard meanwhile is delivered, later messages too, and the members are told."""

    async def fetch(room: str, epoch: str, n: int) -> Any:
        return b"E", [(b"0-3", [b"no fields"])]

    followed = Followed(fetch, (b"E", b"0-1"))
    followed.catchup.heard("Lounge", (b"there", b"E-0-2", b"two"))
    followed.catchup.heard("Lounge", (b"there", b"E-0-4", b"four"))  # a gap: catches up
    followed.catchup.heard("Lounge", (b"there", b"E-0-5", b"five"))  # queued meanwhile
    await followed.settled()
    followed.catchup.heard("Lounge", (b"there", b"E-0-6", b"six"))
    assert followed.delivered == [b"two", b"four", b"five", b"six"]
    assert followed.missed == ["Lounge"]
    assert "Could not catch up on Lounge" in caplog.text


async def test_an_id_not_of_ours_is_delivered_as_it_comes() -> None:
    async def fetch(room: str, epoch: str, n: int) -> Any:
        raise AssertionError("nothing to catch up on")

    followed = Followed(fetch, (b"E", b"0-1"))
    followed.catchup.heard("Lounge", (b"there", b"E-0-x", b"odd"))
    followed.catchup.heard("Lounge", (b"there", b"E-0-2", b"two"))
    assert followed.delivered == [b"odd", b"two"] and followed.tasks == []
