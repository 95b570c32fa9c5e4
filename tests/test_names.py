"""Names nobody can pass off as someone else's (protocol 1.2), on a real server: in one
process, then on two nodes sharing one Redis and a Redis Cluster."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from typing import Any, Final

import pytest
from aiohttp.test_utils import TestClient

from aiohttp_chat import protocol
from aiohttp_chat.client_view import ChatView

from .support.checks import eventually
from .support.peers import TIMEOUT, Connect, open_peer
from .support.redis import RedisServer
from .support.servers import StartNode

ALIKE: Final = "Name looks like one already in use."
ALIKE_IN_ROOM: Final = "Name looks like one already in use in this room."
FORBIDDEN: Final = "Name contains characters that are not allowed."
ROOM_FORBIDDEN: Final = "Room name contains characters that are not allowed."

# The issue's own list, tried with `Alice` in the room: each was once a second person.
IMPERSONATIONS: Final = [
    ("alice", ALIKE),
    ("ALICE", ALIKE),
    ("\u0410lice", ALIKE),  # Cyrillic A
    ("\uff21lice", ALIKE),  # fullwidth A
    ("A1ice", ALIKE),
    ("Alice\ufe0f", ALIKE),  # a variation selector
    ("Alice ", FORBIDDEN),
    ("Alice\u00a0", FORBIDDEN),
    ("Alice\u2028", FORBIDDEN),  # line separator
    ("\u0301\u0301\u0301", FORBIDDEN),  # combining marks alone
    ("\u3000\u3000\u3000", FORBIDDEN),  # ideographic spaces
    ("\u3164\u3164\u3164", FORBIDDEN),  # Hangul filler
    ("\u2800\u2800\u2800", FORBIDDEN),  # braille blank
    ("\ue000\ue001\ue002", FORBIDDEN),  # private use
    ("Ali ce", FORBIDDEN),
]
ACCEPTED: Final = ["Bob", "Zoë", "李小龍", "Ærø", "Владимир", "O'Brien", "user_42", "Jean-Luc"]


def fail(action: str, text: str) -> dict[str, Any]:
    return {"action": action, "success": False, "message": text}


async def open_raw(client: TestClient[Any, Any], **query: str) -> tuple[Any, list[Any]]:
    """A /chat connection asking `query` in its handshake: the socket and its first frames
    (`connecting`, and the refusal that follows it, if any)."""
    ws = await client.ws_connect("/chat", params=query)
    frames = [json.loads((await ws.receive(timeout=TIMEOUT)).data)]
    while True:
        try:
            frame = json.loads((await ws.receive(timeout=0.3)).data)
        except TimeoutError:
            return ws, frames
        frames.append(frame)


@pytest.mark.parametrize(("name", "refusal"), IMPERSONATIONS, ids=ascii)
async def test_no_one_else_can_be_alice(connect: Connect, name: str, refusal: str) -> None:
    alice, mallory = await connect(), await connect()
    await alice.set_nick("Alice")
    assert await mallory.ask(action="set_nick", nick=name) == fail("set_nick", refusal)
    # nor by entering the room under that name from another one
    await mallory.join("Elsewhere")
    if refusal == ALIKE:
        await mallory.set_nick(name)
        reply = await mallory.ask(action="join_room", room="Default")
        assert reply == fail("join_room", ALIKE_IN_ROOM)
    assert await alice.ask(action="user_list") == {
        "action": "user_list",
        "success": True,
        "room": "Default",
        "users": ["Alice"],
    }


async def test_nor_by_asking_for_the_name_in_the_handshake(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    alice = await connect()
    await alice.set_nick("Alice")
    ws, (connecting, refusal) = await open_raw(client, nick="\u0410lice")
    assert connecting["user"].startswith("User")
    assert refusal == fail("set_nick", ALIKE)
    await ws.close()


@pytest.mark.parametrize("name", ACCEPTED)
async def test_real_names_are_accepted_and_shown_as_written(connect: Connect, name: str) -> None:
    alice, other = await connect(), await connect()
    await alice.set_nick("Alice")
    await alice.drain()
    before = other.nick
    await other.set_nick(name)
    assert await alice.recv() == {
        "action": "nick_changed",
        "room": "Default",
        "from_user": before,
        "to_user": name,
    }


async def test_one_person_whether_composed_or_not(connect: Connect) -> None:
    zoe, other = await connect(), await connect()
    decomposed = unicodedata.normalize("NFD", "Zoë")
    reply = await zoe.ask(action="set_nick", nick=decomposed)
    assert reply["success"] is True
    assert (await other.recv())["to_user"] == "Zoë"  # kept and shown composed
    assert await other.ask(action="set_nick", nick="Zoë") == fail("set_nick", protocol.NICK_TAKEN)
    assert await other.ask(action="set_nick", nick=decomposed) == fail(
        "set_nick", protocol.NICK_TAKEN
    )
    assert await other.ask(action="set_nick", nick="ZOË") == fail("set_nick", ALIKE)


async def test_its_owner_may_change_the_case_of_a_nick(connect: Connect) -> None:
    alice = await connect()
    await alice.set_nick("alice")
    await alice.set_nick("Alice")
    await alice.set_nick("ALICE")


async def test_a_room_alike_to_an_existing_one_is_refused_with_its_name(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    someone = await connect()
    refusal = fail("join_room", "Room name looks like an existing room: Default.")
    for room in ("default", "DEFAULT", "D\u0435fault"):  # Cyrillic ie
        assert await someone.ask(action="join_room", room=room) == refusal
    assert await someone.ask(action="join_room", room="Default ") == fail(
        "join_room", ROOM_FORBIDDEN
    )
    await someone.join("The Lounge")
    other = await connect()
    assert await other.ask(action="join_room", room="the lounge") == fail(
        "join_room", "Room name looks like an existing room: The Lounge."
    )
    ws, (connecting, refused) = await open_raw(client, room="THE LOUNGE")
    assert connecting["room"] == "Default"
    assert refused == fail("join_room", "Room name looks like an existing room: The Lounge.")
    await ws.close()


async def test_a_room_exists_while_it_keeps_history(connect: Connect) -> None:
    someone = await connect()
    await someone.join("Lounge")
    await someone.ask(action="chat_message", message="hello")
    await someone.join("Default")  # nobody left in Lounge, but what was said is kept
    assert await someone.ask(action="join_room", room="lounge") == fail(
        "join_room", "Room name looks like an existing room: Lounge."
    )
    await someone.join("Kitchen")
    await someone.join("Default")  # nothing was said in Kitchen: it is gone with its members
    await someone.join("KITCHEN")


async def _resumed_into_a_look_alike(
    first: TestClient[Any, Any], second: TestClient[Any, Any]
) -> None:
    """Alice leaves Lounge (empty, nothing said); `lounge` is made meanwhile; her token does
    not bring her back to a Lounge beside it: she enters as she asks, refused the room."""
    ws, (connecting,) = await open_raw(first, nick="Alice", room="Lounge")
    await ws.close()
    someone = await open_peer(second)

    async def made() -> bool:
        return bool((await someone.ask(action="join_room", room="lounge"))["success"])

    await eventually(made, 5)
    ws, frames = await open_raw(second, resume=connecting["resume"], nick="Alice", room="Lounge")
    assert frames[0]["room"] == "Default"
    assert frames[1:] == [fail("join_room", "Room name looks like an existing room: lounge.")]
    await ws.close()


async def test_a_token_does_not_resume_into_a_room_beside_its_look_alike(
    client: TestClient[Any, Any],
) -> None:
    await _resumed_into_a_look_alike(client, client)


async def test_a_hostile_servers_room_name_is_never_offered() -> None:
    offered: list[str] = []
    view = ChatView(offer=offered.append)
    view.sent({"action": "join_room", "room": "lounge"})
    text = "Room name looks like an existing room: \x1b]52;c;cm0gLXJmIH4=\x07Lounge."
    shown = view.received({"action": "join_room", "success": False, "message": text}).text
    assert offered == [] and shown is not None and "\x1b" not in shown


# ------------------------------------------------------------------------ on Redis


@pytest.fixture
def redis_server(each_redis: RedisServer) -> RedisServer:
    return each_redis


async def test_two_nodes_racing_alike_nicks_admit_exactly_one(node: StartNode) -> None:
    one, two = await node(), await node()
    for index in range(10):
        room = f"Race {index}"
        left, right = await open_peer(one), await open_peer(two)
        await left.join(room)
        await right.join(f"Start {index}")
        await right.set_nick(f"\u0410lice{index}")  # Cyrillic A
        await left.drain()
        await asyncio.gather(
            left.send(action="set_nick", nick=f"Alice{index}"),
            right.send(action="join_room", room=room),
        )
        replies = [await left.reply(), await right.reply()]
        assert sorted(reply["success"] for reply in replies) == [False, True], replies
        refusal = next(reply for reply in replies if not reply["success"])
        assert refusal["message"] in (ALIKE, ALIKE_IN_ROOM)
        await left.ws.close()
        await right.ws.close()


async def test_racing_handshakes_on_two_nodes_admit_one_alice(node: StartNode) -> None:
    one, two = await node(), await node()
    for index in range(5):
        latin, cyrillic = await asyncio.gather(
            open_raw(one, nick=f"Alice{index}", room="Race"),
            open_raw(two, nick=f"\u0410lice{index}", room="Race"),
        )
        named = [frames[0]["user"] for _, frames in (latin, cyrillic)]
        assert sorted(name.startswith("User") for name in named) == [False, True], named
        refused = [frames[1] for _, frames in (latin, cyrillic) if len(frames) > 1]
        assert [frame["message"] for frame in refused if frame["action"] == "set_nick"] == [ALIKE]
        for ws, _ in (latin, cyrillic):
            await ws.close()


async def test_alike_nicks_and_rooms_across_nodes(node: StartNode) -> None:
    one, two = await node(), await node()
    alice, mallory = await open_peer(one), await open_peer(two)
    await alice.set_nick("Alice")
    assert await mallory.ask(action="set_nick", nick="ALICE") == fail("set_nick", ALIKE)
    await alice.join("Lounge")
    assert await mallory.ask(action="join_room", room="lounge") == fail(
        "join_room", "Room name looks like an existing room: Lounge."
    )
    await mallory.set_nick("alice")
    assert await mallory.ask(action="join_room", room="Lounge") == fail("join_room", ALIKE_IN_ROOM)
    await alice.join("Kitchen")  # Lounge is empty and kept no history: it is gone

    async def entered() -> bool:
        reply = await mallory.ask(action="join_room", room="lounge")
        return bool(reply["success"])

    await eventually(entered, 5)  # once the release that empties Lounge is done
    assert await alice.ask(action="join_room", room="Lounge") == fail(
        "join_room", "Room name looks like an existing room: lounge."
    )


async def test_on_redis_a_room_exists_while_it_keeps_history(node: StartNode) -> None:
    one, two = await node(), await node()
    someone, other = await open_peer(one), await open_peer(two)
    await someone.join("Lounge")
    await someone.ask(action="chat_message", message="hello")
    await someone.join("Default")

    async def emptied() -> bool:  # the release that leaves Lounge empty is spawned
        return (await other.ask(action="user_list", room="Lounge"))["users"] == []

    await eventually(emptied, 5)
    assert await other.ask(action="join_room", room="LOUNGE") == fail(
        "join_room", "Room name looks like an existing room: Lounge."
    )


async def test_on_redis_without_history_an_empty_room_is_gone(node: StartNode) -> None:
    one, two = await node(history=0), await node(history=0)
    someone, other = await open_peer(one), await open_peer(two)
    await someone.join("Lounge")
    await someone.ask(action="chat_message", message="hello")  # kept nowhere
    await someone.join("Default")

    async def entered() -> bool:
        return bool((await other.ask(action="join_room", room="LOUNGE"))["success"])

    await eventually(entered, 5)


async def test_on_redis_a_token_does_not_resume_into_a_room_beside_its_look_alike(
    node: StartNode,
) -> None:
    await _resumed_into_a_look_alike(await node(), await node())


async def test_alike_nicks_taken_during_an_outage_leave_one_standing(
    node: StartNode, redis_server: RedisServer
) -> None:
    one, two = await node(), await node()
    redis_server.stop()
    # Asked in the handshake, checked on its own node alone while Redis is away
    first = await open_peer(one, params={"nick": "Alice"})
    second = await open_peer(two, params={"nick": "\u0410LICE"})
    assert (first.nick, second.nick) == ("Alice", "\u0410LICE")
    redis_server.start()
    renamed = None
    while renamed is None:  # one of them is renamed, as for the very same nick
        for peer in (first, second):
            try:
                heard = await asyncio.wait_for(peer.recv(), 0.5)
            except TimeoutError:
                continue
            if heard["action"] == "nick_changed" and heard["to_user"].startswith("User"):
                renamed = heard
    assert renamed["from_user"] in ("Alice", "\u0410LICE")

    async def settled() -> bool:
        names = set((await first.ask(action="user_list"))["users"])
        return (
            len(names) == 2
            and sum(protocol.skeleton(n) == protocol.skeleton("Alice") for n in names) == 1
        )

    await eventually(settled, 10)
