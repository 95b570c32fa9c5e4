"""One connection's session (`chat.ChatSession`) on the rooms of one process: which requests
it answers and how it refuses, what entering and leaving decide and tell.

What needs no socket (a request's reply, the counters) runs on a socket that never
connected; what is sent runs on real `ChatSocket`s (`support.sockets`).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from aiohttp_chat import chat, metrics, protocol
from aiohttp_chat.chat import ChatSession, encode_failure
from aiohttp_chat.protocol import Wish
from aiohttp_chat.rooms import LocalRooms

from .support.sockets import OpenPair, Pair, unconnected

LIMITS = protocol.limits(10, 20, protocol.DEFAULT_MAX_MESSAGE_CHARS)
ALIKE_LOUNGE = protocol.room_alike_text("Lounge")


async def ask(session: ChatSession, **request: Any) -> Any:
    """The reply to one request, parsed."""
    return json.loads(await session.handle_text(json.dumps(request)))


async def entered(rooms: LocalRooms, nick: str, room: str, pair: Pair | None = None) -> ChatSession:
    """A session that entered `room` as `nick`, as it asked in its handshake; its greeting
    read, on `pair` if it has one."""
    session = ChatSession(rooms, unconnected() if pair is None else pair.socket, "")
    assert await session.enter(Wish(nick, room), LIMITS)
    assert (session.nick, session.room) == (nick, room)
    if pair is not None:
        assert await pair.received() == connecting(session)
    return session


def connecting(session: ChatSession) -> protocol.Message:
    assert session.token is not None
    return protocol.connecting(session.room, session.nick, session.token, LIMITS)


# ------------------------------------------------------------------------ requests


def test_the_handler_table_holds_the_actions_the_metrics_count() -> None:
    # A chat message takes a way of its own: it may be answered after Redis keeps it.
    assert {*chat._HANDLERS, protocol.CHAT_MESSAGE} == metrics.ACTIONS
    assert protocol.CHAT_MESSAGE not in chat._HANDLERS


@pytest.mark.parametrize(
    ("text", "action", "refusal"),
    [
        ("nope", None, protocol.NOT_A_JSON_OBJECT),
        ("[1]", None, protocol.NOT_A_JSON_OBJECT),
        ('{"room": "Lounge"}', None, protocol.NOT_ALLOWED),
        ('{"action": "leave"}', "leave", protocol.NOT_ALLOWED),  # a method, not an action
        ('{"action": "handle_text"}', "handle_text", protocol.NOT_ALLOWED),
        ('{"action": "__init__"}', "__init__", protocol.NOT_ALLOWED),
        ('{"action": ["user_list"]}', ["user_list"], protocol.NOT_ALLOWED),
    ],
)
async def test_only_the_tables_actions_are_answered_the_rest_counted_as_other(
    text: str, action: object, refusal: str
) -> None:
    rooms = LocalRooms()
    session = await entered(rooms, "Alice", "Lounge")
    assert json.loads(await session.handle_text(text)) == protocol.fail(action, refusal)
    assert rooms.stats.requests == Counter({("other", "refused"): 1})
    assert (session.nick, session.room) == ("Alice", "Lounge")


async def test_a_refused_request_is_counted_under_its_action() -> None:
    rooms = LocalRooms()
    session = await entered(rooms, "Alice", "Lounge")
    assert await ask(session, action="set_nick", nick="Al") == protocol.fail(
        protocol.SET_NICK, protocol.NICK_INVALID
    )
    assert (await ask(session, action="user_list"))["success"] is True
    assert rooms.stats.requests == Counter({("set_nick", "refused"): 1, ("user_list", "ok"): 1})


async def test_a_room_change_past_the_budget_is_rate_limited_and_a_bad_name_costs_none() -> None:
    asked: list[bool] = []

    def budget() -> bool:
        asked.append(False)
        return False

    rooms = LocalRooms()
    session = ChatSession(rooms, unconnected(), "Alice", may_change_room=budget)
    await rooms.enter(session)
    assert await ask(session, action="join_room", room="ab") == protocol.fail(
        protocol.JOIN_ROOM, protocol.ROOM_INVALID
    )
    assert asked == []  # refused on its name, before the budget was asked
    assert await ask(session, action="join_room", room="Lounge") == protocol.fail(
        protocol.JOIN_ROOM, protocol.ROOM_CHANGES_LIMITED
    )
    assert asked == [False]
    assert session.room == protocol.DEFAULT_ROOM
    assert await rooms.users(protocol.DEFAULT_ROOM) == ["Alice"]
    assert rooms.stats.requests == Counter(
        {("join_room", "refused"): 1, ("join_room", "rate_limited"): 1}
    )


async def test_a_member_that_may_have_missed_messages_is_told_so_once() -> None:
    """The history of a room whose messages it may have missed (Redis sets `missed`) is
    `complete: false` once, however complete it is: the next one is as it is."""
    rooms = LocalRooms()
    session = await entered(rooms, "Alice", "Lounge")
    await ask(session, action="chat_message", message="hello")
    session.missed = "Lounge"
    assert (await ask(session, action="history", room="Kitchen"))["complete"] is True
    assert (await ask(session, action="history"))["complete"] is False
    assert (await ask(session, action="history"))["complete"] is True
    assert session.missed is None


def test_encode_failure_names_the_action_as_sent_or_null_when_it_cannot() -> None:
    action: object = {"deep": [1, "two"]}
    assert json.loads(encode_failure(action, protocol.RATE_LIMITED)) == protocol.fail(
        action, protocol.RATE_LIMITED
    )
    deep: object = []
    for _ in range(5000):  # past both encoders' nesting limits
        deep = [deep]
    assert json.loads(encode_failure(deep, protocol.RATE_LIMITED)) == protocol.fail(
        None, protocol.RATE_LIMITED
    )


# ------------------------------------------------------------------------ entering


@pytest.mark.parametrize(
    ("wish", "room", "nick", "refusal"),
    [
        (Wish("Zed", "Lounge"), "Lounge", "Zed", None),
        (Wish("Bob", "Lounge"), "Lounge", None, (protocol.SET_NICK, protocol.NICK_TAKEN)),
        (Wish("Zed", "lounge"), "Default", "Zed", (protocol.JOIN_ROOM, ALIKE_LOUNGE)),
        (Wish("Al", "ab"), "Default", None, (protocol.JOIN_ROOM, protocol.ROOM_INVALID)),
        (Wish(None, None), "Default", None, None),
    ],
    ids=["granted", "nick-taken", "room-alike", "both-refused-room-told", "nothing-asked"],
)
async def test_entering_is_greeted_then_told_one_refusal_then_heard(
    open_pair: OpenPair,
    wish: Wish,
    room: str,
    nick: str | None,
    refusal: tuple[str, str] | None,
) -> None:
    newcomer, lounge, default = [await open_pair() for _ in range(3)]
    rooms = LocalRooms()
    await entered(rooms, "Bob", "Lounge", lounge)
    await entered(rooms, "Carol", "Default", default)
    session = ChatSession(rooms, newcomer.socket, "")
    assert await session.enter(wish, LIMITS)
    assert session.room == room
    if nick is None:  # a default one
        assert session.nick.startswith("User")
    else:
        assert session.nick == nick
    assert await newcomer.received() == connecting(session)
    if refusal is not None:
        assert await newcomer.received() == protocol.fail(*refusal)
    hears = lounge if room == "Lounge" else default
    assert await hears.received() == protocol.joined(room, session.nick)
    for pair in (newcomer, lounge, default):
        await pair.assert_quiet()


async def test_a_resumed_connection_takes_its_place_unheard_and_the_lost_one_leaves_unheard(
    open_pair: OpenPair,
) -> None:
    old, new, other = [await open_pair() for _ in range(3)]
    rooms = LocalRooms()
    alice = await entered(rooms, "Alice", "Lounge", old)
    await entered(rooms, "Bob", "Lounge", other)
    assert alice.token is not None
    again = ChatSession(rooms, new.socket, "")
    assert await again.enter(Wish("Zed", "Kitchen", alice.token), LIMITS)  # the rest unheeded
    assert (again.nick, again.room) == ("Alice", "Lounge")
    assert await new.received() == connecting(again)
    assert await old.closed_with() == (protocol.RESUMED_CODE, protocol.RESUMED_REASON)
    alice.leave(shame=True)  # as its view does once its socket is closed
    await ask(again, action="chat_message", message="still me")
    assert (await other.received())["user"] == "Alice"  # nothing came before it
    await other.assert_quiet()
    await new.assert_quiet()


# ------------------------------------------------------------------------ leaving


async def test_leaving_is_told_with_its_shame_once_and_is_safe_before_entering(
    open_pair: OpenPair,
) -> None:
    stayer, leaver = [await open_pair() for _ in range(2)]
    rooms = LocalRooms()
    await entered(rooms, "Bob", "Lounge", stayer)
    never = ChatSession(rooms, unconnected(), "")
    never.leave(shame=True)  # it never entered: nothing to undo, nobody to tell
    for shame in (True, False):
        alice = await entered(rooms, "Alice", "Lounge", leaver)
        assert await stayer.received() == protocol.joined("Lounge", "Alice")
        alice.leave(shame=shame)
        alice.leave(shame=shame)  # a second time: nothing
        assert await stayer.received() == protocol.left("Lounge", "Alice", shame=shame)
        await leaver.assert_quiet()  # the leaver hears nothing of its own leave
    await stayer.assert_quiet()
    assert await rooms.users("Lounge") == ["Bob"]
