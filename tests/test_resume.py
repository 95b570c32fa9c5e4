"""Protocol 1.2 on the server: entering in one step (`?nick=&room=`) and resuming a lost
connection (`?resume=TOKEN`), on one server and across nodes sharing Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from aiohttp_chat import protocol
from aiohttp_chat.resume import Tokens

from .support.checks import TOKEN, eventually
from .support.peers import TIMEOUT, Peer, open_peer
from .support.prometheus import scrape, value
from .support.redis import RedisServer
from .support.servers import StartNode


async def enter(client: TestClient[Any, Any], **query: str) -> tuple[Peer, dict[str, Any]]:
    """A /chat connection asking for `query`; the peer and its `connecting` frame."""
    ws = await client.ws_connect("/chat", params=query)
    first = json.loads((await ws.receive(timeout=TIMEOUT)).data)
    assert first["action"] == "connecting", first
    assert first["protocol"] == "1.2" and TOKEN.fullmatch(first["resume"]), first
    return Peer(ws, first["user"], first["resume"]), first


async def users(peer: Peer, room: str) -> list[str]:
    return sorted((await peer.ask(action="user_list", room=room))["users"])


async def closed_with(peer: Peer) -> tuple[int | None, str]:
    message = await peer.ws.receive(timeout=TIMEOUT)
    while message.type is WSMsgType.TEXT:  # what was queued before the close
        message = await peer.ws.receive(timeout=TIMEOUT)
    assert message.type is WSMsgType.CLOSE, message  # a close frame, with its code
    return message.data, message.extra or ""


# ------------------------------------------------------------------------ the tokens alone


def test_a_token_is_honoured_once_and_expires() -> None:
    class Member:
        def __init__(self, room: str, nick: str) -> None:
            self.room, self.nick, self.token = room, nick, None

    tokens = Tokens(keep=300, most=2)
    alice = Member("Lounge", "Alice")
    first = tokens.issue(alice)  # type: ignore[arg-type]
    second = tokens.issue(alice)  # type: ignore[arg-type]
    assert first != second and tokens.take(first, 0) is None  # a move replaced it
    assert tokens.take(second, 0) is alice and alice.token is None
    assert tokens.take(second, 0) is None  # once
    token = tokens.issue(alice)  # type: ignore[arg-type]
    tokens.ended_now(alice, 1000)  # type: ignore[arg-type]
    assert tokens.take(token, 1299) == ("Lounge", "Alice")
    token = tokens.issue(alice)  # type: ignore[arg-type]
    tokens.ended_now(alice, 1000)  # type: ignore[arg-type]
    assert tokens.take(token, 1300) is None  # expired
    ended = []
    for nick in ("Bob", "Carol", "Dave"):  # at most 2 kept: the oldest goes
        member = Member("Lounge", nick)
        ended.append(tokens.issue(member))  # type: ignore[arg-type]
        tokens.ended_now(member, 0)  # type: ignore[arg-type]
    assert [tokens.take(token, 1) for token in ended] == [
        None,
        ("Lounge", "Carol"),
        ("Lounge", "Dave"),
    ]


# ------------------------------------------------------------------------ entering


async def test_entering_in_one_step_is_one_joined_in_that_room_and_nothing_in_default(
    client: TestClient[Any, Any], connect: Any
) -> None:
    lounge, default = await connect(), await connect()
    await lounge.join("Lounge")
    await lounge.drain()
    await default.drain()
    alice, first = await enter(client, nick="Alice", room="Lounge")
    assert first["room"] == "Lounge" and first["user"] == "Alice"
    assert first["limits"] == {"rate": 10, "burst": 20, "max_message_chars": 4096}
    assert await lounge.recv() == {"action": "joined", "room": "Lounge", "user": "Alice"}
    await lounge.assert_quiet()
    await default.assert_quiet()  # never a stranger in Default
    await alice.assert_quiet()  # granted: no refusal follows
    assert await users(alice, "Lounge") == sorted(["Alice", lounge.nick])


async def test_a_name_sent_percent_encoded_arrives_as_written(client: TestClient[Any, Any]) -> None:
    _, first = await enter(client, nick="Zoë", room="Salle à manger")
    assert (first["user"], first["room"]) == ("Zoë", "Salle à manger")


@pytest.mark.parametrize(
    ("query", "room", "refusal"),
    [
        ({"nick": "Al", "room": "Lounge"}, "Lounge", ("set_nick", protocol.NICK_INVALID)),
        ({"nick": "Bob", "room": "Lounge"}, "Lounge", ("set_nick", protocol.NICK_TAKEN)),
        ({"nick": "A\x1bce"}, "Default", ("set_nick", protocol.NICK_FORBIDDEN_CHARS)),
        ({"nick": "Zed", "room": "ab"}, "Default", ("join_room", protocol.ROOM_INVALID)),
        ({"nick": "Al", "room": "ab"}, "Default", ("join_room", protocol.ROOM_INVALID)),
    ],
)
async def test_what_is_refused_is_said_right_after_connecting(
    client: TestClient[Any, Any],
    connect: Any,
    query: dict[str, str],
    room: str,
    refusal: tuple[str, str],
) -> None:
    bob = await connect()
    await bob.set_nick("Bob")
    await bob.join("Lounge")
    peer, first = await enter(client, **query)
    assert first["room"] == room
    wished = query["nick"]
    if refusal[0] == "join_room" and wished == "Zed":  # the nick is granted, in Default
        assert first["user"] == "Zed"
    else:
        assert first["user"].startswith("User")
    action, text = refusal
    assert await peer.recv() == {"action": action, "success": False, "message": text}


# ------------------------------------------------------------------------ resuming


async def test_a_lost_connection_is_resumed_unheard_and_the_old_one_closed_with_4001(
    client: TestClient[Any, Any], connect: Any
) -> None:
    alice, first = await enter(client, nick="Alice", room="Lounge")
    bob = await connect()
    await bob.join("Lounge")
    await alice.drain()
    await bob.drain()
    again, second = await enter(client, resume=first["resume"], nick="Other", room="Other")
    assert (second["room"], second["user"]) == ("Lounge", "Alice")
    assert second["resume"] != first["resume"]  # a new one, for the new connection
    assert await closed_with(alice) == (4001, "Resumed elsewhere")
    await bob.assert_quiet()  # nothing at all: no left, no joined
    assert await users(bob, "Lounge") == ["Alice", bob.nick]
    await again.send(action="chat_message", message="still me")
    assert (await bob.recv())["user"] == "Alice"
    await eventually(lambda: _resumed_counted(client), TIMEOUT)


async def _resumed_counted(client: TestClient[Any, Any]) -> bool:
    return value(await scrape(client), "disconnects_total", reason="resumed") == 1


async def test_after_the_connection_ended_the_room_hears_it_come_back_once(
    client: TestClient[Any, Any], connect: Any
) -> None:
    alice, first = await enter(client, nick="Alice", room="Lounge")
    bob = await connect()
    await bob.join("Lounge")
    await alice.ws.close()
    assert await bob.recv() == {"action": "left", "room": "Lounge", "user": "Alice", "shame": False}
    again, second = await enter(client, resume=first["resume"])
    assert (second["room"], second["user"]) == ("Lounge", "Alice")
    assert await bob.recv() == {"action": "joined", "room": "Lounge", "user": "Alice"}
    await bob.assert_quiet()
    await again.assert_quiet()


async def test_a_token_works_once_and_a_move_replaces_it(
    client: TestClient[Any, Any], connect: Any
) -> None:
    alice, first = await enter(client, nick="Alice", room="Lounge")
    await alice.set_nick("Alicia")  # its reply carries the new token: the old one is void
    assert alice.token != first["resume"]
    _, stale = await enter(client, resume=first["resume"], nick="Zed")
    assert (stale["room"], stale["user"]) == ("Default", "Zed")  # as it asked, without it
    _, resumed = await enter(client, resume=alice.token or "")
    assert (resumed["room"], resumed["user"]) == ("Lounge", "Alicia")
    _, used = await enter(client, resume=alice.token or "")
    assert used["room"] == "Default" and used["user"].startswith("User")


async def test_a_token_does_not_take_a_nick_someone_else_took_meanwhile(
    client: TestClient[Any, Any],
) -> None:
    alice, first = await enter(client, nick="Alice", room="Lounge")
    await alice.ws.close()
    other, _ = await enter(client, nick="Alice", room="Lounge")  # another person, same name
    late, second = await enter(client, resume=first["resume"], nick="Alice", room="Lounge")
    assert second["user"] != "Alice"  # refused, and told: the nick is in use
    assert await late.recv() == protocol.fail("set_nick", protocol.NICK_TAKEN)
    assert await other.recv() == protocol.joined("Lounge", second["user"])
    await other.assert_quiet()


# ------------------------------------------------------------------------ across nodes


@pytest.fixture
def redis_server(each_redis: RedisServer) -> RedisServer:
    """Across nodes on one Redis and on a three-master Redis Cluster."""
    return each_redis


async def test_a_connection_is_resumed_on_another_node_unheard(node: StartNode) -> None:
    one, two = await node(), await node()
    alice, first = await enter(one, nick="Alice", room="Lounge")
    here, there = await open_peer(one), await open_peer(two)
    for peer in (here, there):
        await peer.join("Lounge")
    await eventually(lambda: _has(here, "Lounge", 3), TIMEOUT)
    await alice.drain()
    await here.drain()
    await there.drain()
    again, second = await enter(two, resume=first["resume"])
    assert (second["room"], second["user"]) == ("Lounge", "Alice")
    assert await closed_with(alice) == (4001, "Resumed elsewhere")
    await eventually(lambda: _has(here, "Lounge", 3), TIMEOUT)
    assert await users(there, "Lounge") == sorted(["Alice", here.nick, there.nick])
    await again.send(action="chat_message", message="moved")
    for peer in (here, there):  # nothing but the message: no left, no joined
        assert (await peer.recv())["message"] == "moved"
        await peer.assert_quiet()
    await again.ws.close()  # and it leaves from its new node as any member does
    for peer in (here, there):
        assert (await peer.recv())["action"] == "left"
    _, third = await enter(one, resume=second["resume"])  # good after the end, on node one
    assert (third["room"], third["user"]) == ("Lounge", "Alice")


async def _has(peer: Peer, room: str, count: int) -> bool:
    return len(await users(peer, room)) == count


async def test_a_stale_token_from_another_node_is_ignored(node: StartNode) -> None:
    one, two = await node(), await node()
    alice, first = await enter(one, nick="Alice", room="Lounge")
    await alice.join("Other")  # the token of Lounge is void
    _, second = await enter(two, resume=first["resume"], nick="Bob")
    assert (second["room"], second["user"]) == ("Default", "Bob")
    assert (await alice.ask(action="user_list"))["users"] == ["Alice"]  # left alone
