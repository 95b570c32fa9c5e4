"""Every row of the protocol, against a real server, with several clients at once."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from aiohttp_chat.chat import ChatSession
from aiohttp_chat.server import ROOMS, Settings

from .support.checks import eventually, stamped
from .support.draws import Draws
from .support.peers import TIMEOUT, Connect, Peer

OK = {"success": True, "message": ""}


def joined(room: str, user: str) -> dict[str, Any]:
    return {"action": "joined", "room": room, "user": user}


def left(room: str, user: str, shame: bool) -> dict[str, Any]:
    return {"action": "left", "room": room, "user": user, "shame": shame}


# ------------------------------------------------------------------------ connecting


async def test_connect_greets_newcomer_and_tells_the_room(connect: Connect) -> None:
    alice = await connect()
    assert re.fullmatch(r"User(0|[1-9]\d{0,5})", alice.nick)
    bob = await connect()
    assert bob.nick != alice.nick
    assert await alice.recv() == joined("Default", bob.nick)
    await bob.assert_quiet()  # no broadcast about one's own arrival
    await alice.assert_quiet()
    reply = await bob.ask(action="user_list")
    assert reply["action"] == "user_list" and reply["room"] == "Default"
    assert sorted(reply["users"]) == sorted([alice.nick, bob.nick])


@pytest.mark.parametrize("rng", [lambda: Draws(42, 42, 42, 7)], indirect=True)
async def test_default_nick_collision_draws_again(connect: Connect) -> None:
    first = await connect()
    second = await connect()
    assert (first.nick, second.nick) == ("User42", "User7")


@pytest.mark.parametrize("rng", [lambda: Draws(42)], indirect=True)
async def test_no_free_default_nick_closes_with_try_again_later(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    await connect()
    ws = await client.ws_connect("/chat")
    message = await ws.receive(timeout=5)
    assert message.type is WSMsgType.CLOSE
    assert (message.data, message.extra) == (WSCloseCode.TRY_AGAIN_LATER, "Username already in use")


# ------------------------------------------------------------------------ set_nick


async def test_set_nick_broadcasts_to_own_room_only(connect: Connect) -> None:
    alice, bob, carol = await connect(), await connect(), await connect()
    await carol.join("Elsewhere")
    for _ in range(3):  # bob joined, carol joined, carol left
        await alice.recv()
    for _ in range(2):  # carol joined, carol left
        await bob.recv()
    old = alice.nick
    await alice.set_nick("Alice")
    assert await bob.recv() == {
        "action": "nick_changed",
        "room": "Default",
        "from_user": old,
        "to_user": "Alice",
    }
    await alice.assert_quiet()
    await carol.assert_quiet()
    assert set((await bob.ask(action="user_list"))["users"]) == {"Alice", bob.nick}


@pytest.mark.parametrize(
    ("nick", "text"),
    [
        (None, "Name must be a string and between 3-20 chars."),
        (1234, "Name must be a string and between 3-20 chars."),
        (["abc"], "Name must be a string and between 3-20 chars."),
        ("ab", "Name must be a string and between 3-20 chars."),
        ("x" * 21, "Name must be a string and between 3-20 chars."),
        ("\x1b[2J", "Name contains characters that are not allowed."),
        ("evil\u202eoof", "Name contains characters that are not allowed."),
        ("nul\x00nul", "Name contains characters that are not allowed."),
    ],
)
async def test_set_nick_rejects_bad_names(connect: Connect, nick: object, text: str) -> None:
    alice = await connect()
    assert await alice.ask(action="set_nick", nick=nick) == {
        "action": "set_nick",
        "success": False,
        "message": text,
    }
    assert (await alice.ask(action="user_list"))["users"] == [alice.nick]


async def test_set_nick_without_nick_field(connect: Connect) -> None:
    alice = await connect()
    reply = await alice.ask(action="set_nick")
    assert reply == {
        "action": "set_nick",
        "success": False,
        "message": "Name must be a string and between 3-20 chars.",
    }


async def test_set_nick_lengths_count_code_points(connect: Connect) -> None:
    alice = await connect()
    await alice.set_nick("x😀😀")
    await alice.set_nick("é" * 20)


async def test_nick_uniqueness_is_per_room(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()  # bob joined
    await alice.set_nick("Taken")
    await bob.recv()  # nick_changed
    taken = {"action": "set_nick", "success": False, "message": "Name already in use."}
    assert await bob.ask(action="set_nick", nick="Taken") == taken
    assert await alice.ask(action="set_nick", nick="Taken") == taken  # your own nick too
    await bob.join("Other")
    await bob.set_nick("Taken")  # same nick, other room: allowed


# ------------------------------------------------------------------------ join_room


async def test_join_room_moves_and_tells_both_rooms(connect: Connect) -> None:
    alice, bob, carol = await connect(), await connect(), await connect()
    for _ in range(2):
        await alice.recv()
    await bob.recv()
    await carol.join("Lounge")
    assert await alice.recv() == left("Default", carol.nick, False)
    assert await bob.recv() == left("Default", carol.nick, False)
    await bob.join("Lounge")
    assert await carol.recv() == joined("Lounge", bob.nick)  # names the new room
    assert await alice.recv() == left("Default", bob.nick, False)
    await bob.assert_quiet()
    assert set((await alice.ask(action="user_list", room="Lounge"))["users"]) == {
        bob.nick,
        carol.nick,
    }
    assert (await alice.ask(action="user_list"))["users"] == [alice.nick]


async def test_join_room_refusals(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    in_use = {
        "action": "join_room",
        "success": False,
        "message": "Name already in use in this room.",
    }
    assert await alice.ask(action="join_room", room="Default") == in_use  # current room
    await bob.join("Other")
    await bob.set_nick("Same")
    await alice.set_nick("Same")
    assert await alice.ask(action="join_room", room="Other") == in_use
    for room, text in [
        (None, "Room name must be a string and between 3-20 chars."),
        (42, "Room name must be a string and between 3-20 chars."),
        ("ab", "Room name must be a string and between 3-20 chars."),
        ("r" * 21, "Room name must be a string and between 3-20 chars."),
        ("bell\x07", "Room name contains characters that are not allowed."),
    ]:
        assert await alice.ask(action="join_room", room=room) == {
            "action": "join_room",
            "success": False,
            "message": text,
        }
    assert (await alice.ask(action="user_list"))["room"] == "Default"


async def test_empty_rooms_are_forgotten(client: TestClient[Any, Any], connect: Connect) -> None:
    alice = await connect()
    await alice.join("Temporary")
    rooms = client.app[ROOMS]
    assert set(rooms) == {"Temporary"}
    await alice.join("Another")
    assert set(rooms) == {"Another"}
    await alice.ws.close()
    await asyncio.sleep(0.05)
    assert dict(rooms) == {}


# ------------------------------------------------------------------------ chat_message


async def test_chat_message_reaches_the_room_only(connect: Connect) -> None:
    alice, bob, carol = await connect(), await connect(), await connect()
    for _ in range(2):
        await alice.recv()
    await bob.recv()
    await carol.join("Elsewhere")
    await alice.recv()  # carol left
    await bob.recv()
    reply = await alice.ask(action="chat_message", message="Hello world!")
    assert stamped(reply) == {"action": "chat_message", "success": True, "message": "Hello world!"}
    assert stamped(await bob.recv()) == {
        "action": "chat_message",
        "message": "Hello world!",
        "user": alice.nick,
    }
    await alice.assert_quiet()
    await carol.assert_quiet()


@pytest.mark.parametrize("message", ["", None, 7, ["hi"], {"text": "hi"}, "x" * 4097])
async def test_chat_message_rejects_bad_messages(connect: Connect, message: object) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    assert await bob.ask(action="chat_message", message=message) == {
        "action": "chat_message",
        "success": False,
        "message": "Message must be a non-empty string of at most 4096 characters.",
    }
    await alice.assert_quiet()


async def test_chat_message_at_the_limit_and_unicode(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    for text in ("x" * 4096, "😀" * 4096, "lone \ud800 surrogate", "é\n\ttabs"):
        reply = await bob.ask(action="chat_message", message=text)
        assert stamped(reply) == {"action": "chat_message", "success": True, "message": text}
        broadcast = await alice.recv()
        assert stamped(broadcast) == {"action": "chat_message", "message": text, "user": bob.nick}
        assert (broadcast["id"], broadcast["time"]) == (reply["id"], reply["time"])


@pytest.mark.parametrize("settings", [Settings(max_message_chars=10)])
async def test_message_limit_is_configurable(connect: Connect) -> None:
    alice = await connect()
    assert (await alice.ask(action="chat_message", message="x" * 10))["success"] is True
    assert await alice.ask(action="chat_message", message="x" * 11) == {
        "action": "chat_message",
        "success": False,
        "message": "Message must be a non-empty string of at most 10 characters.",
    }


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # a burst, on purpose
async def test_each_senders_messages_arrive_in_order(connect: Connect) -> None:
    peers = [await connect() for _ in range(5)]
    room = "Ordered"
    for peer in peers:
        await peer.join(room)
    for peer in peers:
        await peer.drain()
    senders, count = peers[:2], 200
    await asyncio.gather(
        *(
            s.ws.send_str(json.dumps({"action": "chat_message", "message": f"{s.nick}:{i}"}))
            for s in senders
            for i in range(count)
        )
    )
    for peer in peers:
        expected = 2 * count - (count if peer in senders else 0)
        seen: dict[str, list[int]] = {s.nick: [] for s in senders}
        replies: list[int] = []
        for _ in range(expected + (count if peer in senders else 0)):
            message = await peer.recv()
            sender, number = message["message"].split(":")
            if "success" in message:
                replies.append(int(number))
            else:
                seen[sender].append(int(number))
        for sender in senders:
            if sender is not peer:
                assert seen[sender.nick] == list(range(count))
        if peer in senders:
            assert replies == list(range(count))  # replies in the order of the requests


async def test_many_clients_all_receive_a_broadcast(connect: Connect) -> None:
    peers = [await connect() for _ in range(30)]
    for peer in peers:
        await peer.join("Crowd")
    speaker = peers[0]
    await speaker.ask(action="chat_message", message="all of you")
    for peer in peers[1:]:
        while (message := await peer.recv())["action"] != "chat_message":
            pass
        assert stamped(message) == {
            "action": "chat_message",
            "message": "all of you",
            "user": speaker.nick,
        }


# ------------------------------------------------------------------------ user_list


async def test_room_list(client: TestClient[Any, Any], connect: Connect) -> None:
    people = [await connect() for _ in range(6)]
    for peer, room in zip(people, ["Zoo", "Attic", "Zoo", "Bar", "Attic", "Zoo"], strict=True):
        await peer.join(room)
    assert await people[0].ask(action="room_list") == {
        "action": "room_list",
        "success": True,
        "rooms": [
            {"room": "Zoo", "users": 3},
            {"room": "Attic", "users": 2},
            {"room": "Bar", "users": 1},
        ],  # Default is empty: all six moved on
    }
    await people[3].ws.close()

    async def bar_is_gone() -> bool:  # an answer may be up to a second old (`memo.py`)
        reply = await people[0].ask(action="room_list")
        return [entry["room"] for entry in reply["rooms"]] == ["Zoo", "Attic"]

    await eventually(bar_is_gone, 3)


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])
async def test_room_list_names_the_largest_hundred(client: TestClient[Any, Any]) -> None:
    # More connections than one aiohttp session opens at once (100) by default.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        people = []  # held: a WebSocket nobody holds is closed
        for index in range(103):
            ws = await session.ws_connect(client.make_url("/chat"))
            await ws.receive_json(timeout=TIMEOUT)  # connecting
            people.append(Peer(ws, ""))
            await people[-1].join(f"Room{index % 101:03}")  # 0 and 1: two members, the rest one
        reply = await people[0].ask(action="room_list")
    listed = [(entry["room"], entry["users"]) for entry in reply["rooms"]]
    assert listed == [("Room000", 2), ("Room001", 2)] + [(f"Room{i:03}", 1) for i in range(2, 100)]


async def test_user_list(client: TestClient[Any, Any], connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await bob.join("Kitchen")
    assert await alice.ask(action="user_list", room="Kitchen") == {
        "action": "user_list",
        "success": True,
        "room": "Kitchen",
        "users": [bob.nick],
    }
    assert await alice.ask(action="user_list", room="Nowhere") == {
        "action": "user_list",
        "success": True,
        "room": "Nowhere",
        "users": [],
    }
    assert "Nowhere" not in client.app[ROOMS]
    for room in (None, "Default"):
        request = {"action": "user_list"} | ({"room": room} if room else {})
        reply = await alice.ask(**request)
        assert reply == {
            "action": "user_list",
            "success": True,
            "room": "Default",
            "users": [alice.nick],
        }
    for room, text in [
        (["x"], "Room name must be a string and between 3-20 chars."),
        ("x" * 60_000, "Room name must be a string and between 3-20 chars."),  # not echoed
        ("ab", "Room name must be a string and between 3-20 chars."),
        ("Lounge\x1b[2J", "Room name contains characters that are not allowed."),
    ]:
        assert await alice.ask(action="user_list", room=room) == {
            "action": "user_list",
            "success": False,
            "message": text,
        }


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("request_text", "action"),
    [
        ('{"action": "shout"}', "shout"),
        ('{"nick": "x"}', None),
        ('{"action": null}', None),
        ('{"action": 5}', 5),
        ('{"action": ["set_nick"]}', ["set_nick"]),
        ('{"action": {"deep": [1, 2]}}', {"deep": [1, 2]}),
    ],
)
async def test_unknown_or_missing_action(
    connect: Connect, request_text: str, action: object
) -> None:
    alice = await connect()
    await alice.ws.send_str(request_text)
    assert await alice.recv() == {"action": action, "success": False, "message": "Not allowed."}
    await alice.assert_quiet()


@pytest.mark.parametrize(
    "text",
    ["hello", "{", "[1, 2]", '"string"', "42", "null", "", "[" * 60_000, '{"a":' * 10_000],
    ids=["word", "brace", "list", "string", "number", "null", "empty", "deep-list", "deep-obj"],
)
async def test_text_that_is_not_a_json_object(connect: Connect, text: str) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    await bob.ws.send_str(text)
    assert await bob.recv() == {
        "action": None,
        "success": False,
        "message": "Message must be a JSON object.",
    }
    await bob.assert_quiet()
    await alice.assert_quiet()  # nobody heard bob leave: he did not


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # a burst, on purpose
async def test_actions_nested_near_the_recursion_limit(connect: Connect) -> None:
    """Near the limit, a request parses but its action may not serialize back: no crash."""
    alice = await connect()
    for depth in range(900, 1000, 3):
        await alice.ws.send_str('{"action": ' + "[" * depth + "]" * depth + "}")
        reply = await alice.recv()
        assert reply["success"] is False
        assert reply["message"] in ("Not allowed.", "Message must be a JSON object.")
    await alice.assert_quiet()


async def test_binary_frames_are_refused(connect: Connect) -> None:
    alice = await connect()
    await alice.ws.send_bytes(b'{"action": "user_list"}')
    assert await alice.recv() == {
        "action": None,
        "success": False,
        "message": "Binary frames are not supported.",
    }
    await alice.assert_quiet()


@pytest.mark.parametrize("path", ["/chat", "/echo"])
async def test_plain_http_gets_426(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 426
    assert "WebSocket" in await response.text()
    assert response.headers["Upgrade"] == "websocket"


# ------------------------------------------------------------------------ leaving


async def test_polite_close_is_left_without_shame_and_frees_the_nick(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    await bob.set_nick("Bobby")
    await alice.recv()
    await bob.ws.close()
    assert await alice.recv() == left("Default", "Bobby", False)
    carol = await connect()
    await carol.set_nick("Bobby")


async def test_abrupt_disconnect_is_left_with_shame(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    await bob.set_nick("Vanisher")
    await alice.recv()
    connection = bob.ws._response.connection
    assert connection is not None and connection.transport is not None
    connection.transport.abort()  # no close frame: a killed client or a dropped network
    assert await alice.recv() == left("Default", "Vanisher", True)
    assert (await alice.ask(action="user_list"))["users"] == [alice.nick]


@pytest.mark.parametrize("settings", [Settings(heartbeat=0.2)])
async def test_heartbeat_drops_a_peer_that_does_not_answer_pings(connect: Connect) -> None:
    alice = await connect()
    mute = await connect(autoping=False)  # never answers the server's pings
    await alice.recv()
    assert await alice.recv() == left("Default", mute.nick, True)
    await alice.assert_quiet()  # alice answers pings and stays


@pytest.mark.parametrize("settings", [Settings(max_frame_bytes=1024)])
async def test_frame_over_the_size_limit_closes_with_1009(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()
    await bob.ws.send_str(json.dumps({"action": "chat_message", "message": "x" * 2000}))
    message = await bob.ws.receive(timeout=5)
    assert message.type is WSMsgType.CLOSE and message.data == WSCloseCode.MESSAGE_TOO_BIG
    assert await alice.recv() == left("Default", bob.nick, True)


async def test_a_closed_peer_does_not_disturb_a_broadcast(connect: Connect) -> None:
    alice, bob, carol = await connect(), await connect(), await connect()
    for _ in range(2):
        await alice.recv()
    await bob.recv()
    connection = carol.ws._response.connection
    assert connection is not None and connection.transport is not None
    connection.transport.abort()
    await alice.ask(action="chat_message", message="still here")  # may race carol's leave
    messages = [await bob.recv(), await bob.recv()]
    assert {"action": "chat_message", "message": "still here", "user": alice.nick} in map(
        stamped, messages
    )


async def test_an_internal_error_ends_only_that_connection(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await connect(), await connect()
    await alice.recv()

    def broken(self: ChatSession, text: str) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ChatSession, "handle_text", broken)
    await bob.send(action="user_list")
    message = await bob.ws.receive(timeout=5)
    assert (message.type, message.data) == (WSMsgType.CLOSE, WSCloseCode.INTERNAL_ERROR)
    assert await alice.recv() == left("Default", bob.nick, True)
    assert "Internal error serving" in caplog.text and "RuntimeError: a bug" in caplog.text
    monkeypatch.undo()
    await alice.assert_quiet()


# ------------------------------------------------------------------------ /echo


@pytest.mark.parametrize(
    "value", [{"message": "Hello world!"}, [1, "two", None], "text", 42, 4.5, None, True, {}]
)
async def test_echo_returns_any_json_value(client: TestClient[Any, Any], value: Any) -> None:
    async with client.ws_connect("/echo") as ws:
        await ws.send_str(json.dumps(value))
        assert await ws.receive_json(timeout=5) == {"echo": value}


async def test_echo_bad_input_keeps_the_connection(client: TestClient[Any, Any]) -> None:
    async with client.ws_connect("/echo") as ws:
        for text in ("not json", "{", "[" * 60_000, "NaN", "[Infinity]", "1e999"):
            await ws.send_str(text)
            assert await ws.receive_json(timeout=5) == {
                "success": False,
                "message": "Message must be valid JSON.",
            }
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive_json(timeout=5) == {
            "success": False,
            "message": "Binary frames are not supported.",
        }
        await ws.send_str("[1]")
        assert await ws.receive_json(timeout=5) == {"echo": [1]}


async def test_echo_value_nested_almost_too_deep(client: TestClient[Any, Any]) -> None:
    async with client.ws_connect("/echo") as ws:
        for depth in (900, 990, 999):
            await ws.send_str("[" * depth + "]" * depth)
            reply = await ws.receive_json(timeout=5)
            assert "echo" in reply or reply == {
                "success": False,
                "message": "Message must be valid JSON.",
            }


async def test_server_survives_a_storm_of_bad_input(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    """Abusive clients come and go; a well-behaved one keeps chatting."""
    alice, bob = await connect(), await connect()
    await alice.recv()

    async def abuse(index: int) -> None:
        ws = await client.ws_connect("/chat")
        for frame in ("nope", "[]", '{"action": 1}', '{"action": "set_nick", "nick": {}}'):
            await ws.send_str(frame)
        await ws.send_bytes(b"\xff" * 10)
        if index % 2:
            await ws.close()
        else:
            connection = ws._response.connection
            assert connection is not None and connection.transport is not None
            connection.transport.abort()

    await asyncio.gather(*(abuse(i) for i in range(20)))
    reply = await bob.ask(action="chat_message", message="calm")
    while reply.get("action") != "chat_message":
        reply = await bob.recv()
    assert reply["success"] is True
    await asyncio.sleep(0.2)
    assert set((await bob.ask(action="user_list"))["users"]) >= {alice.nick, bob.nick}
    users = None
    for _ in range(50):  # every abuser is gone from the room
        message = await bob.ask(action="user_list")
        while message.get("action") != "user_list" or "success" not in message:
            message = await bob.recv()
        users = set(message["users"])
        if users == {alice.nick, bob.nick}:
            break
        await asyncio.sleep(0.05)
    assert users == {alice.nick, bob.nick}
