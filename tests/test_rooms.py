"""The rooms of one process (`rooms.LocalRooms`): who may enter where, what a move, a leave, a
resumption and a broadcast do to the members, on real `ChatSocket`s.

The registry moves themselves are `test_utils.py`'s, the tokens `test_resume.py`'s; here is
what `Rooms` adds on top of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from aiohttp_chat import protocol
from aiohttp_chat.frames import ChatSocket
from aiohttp_chat.history import MemoryHistory
from aiohttp_chat.metrics import Stats
from aiohttp_chat.protocol import Clash, ProtocolError
from aiohttp_chat.rooms import LocalRooms, Resumption

from .support.checks import exactly
from .support.sockets import OpenPair, Pair, unconnected

# ------------------------------------------------------------------------ members


@dataclass(eq=False)  # a member is itself, as the rooms and the tokens see it
class Someone:
    """A `rooms.Member`: what the rooms know of one connection."""

    socket: ChatSocket
    room: str
    nick: str
    missed: str | None = None
    token: str | None = None


async def entered(
    rooms: LocalRooms, room: str, nick: str, socket: ChatSocket | None = None
) -> Someone:
    """A member registered as `nick` in `room`."""
    member = Someone(socket or unconnected(), room, nick)
    await rooms.enter(member)
    return member


async def pairs(open_pair: OpenPair, count: int) -> list[Pair]:
    return [await open_pair() for _ in range(count)]


def left(room: str, nick: str) -> bytes:
    return protocol.encode(protocol.left(room, nick, shame=False))


STAMP = "2026-01-02T03:04:05.678Z"


# ------------------------------------------------------------------------ who may be where


async def test_on_one_process_take_holds_nothing_until_the_member_enters() -> None:
    rooms = LocalRooms()
    assert await rooms.take("Lounge", "Alice") is None
    assert await rooms.take("Lounge", "Alice") is None  # asked twice: still free
    await entered(rooms, "Lounge", "Alice")
    assert await rooms.take("Lounge", "Alice") is Clash.SAME
    assert await rooms.take("Kitchen", "Alice") is None  # per room


async def test_default_is_always_there_to_be_mistaken_for() -> None:
    rooms = LocalRooms()
    assert await rooms.users(protocol.DEFAULT_ROOM) == []  # nobody in it, nothing said
    for alike in ("default", "DEFAULT", "Defau1t"):
        assert await rooms.alike_room(alike) == protocol.DEFAULT_ROOM
    assert await rooms.alike_room(protocol.DEFAULT_ROOM) is None  # itself is not "alike"


async def test_a_room_can_be_mistaken_for_while_it_has_members_or_kept_history() -> None:
    rooms = LocalRooms(history=MemoryHistory())
    alice = await entered(rooms, "Lounge", "Alice")
    assert await rooms.alike_room("lounge") == "Lounge"
    await rooms.move(alice, "Kitchen")
    assert await rooms.alike_room("lounge") is None  # empty, nothing said: gone
    rooms.chat(alice, "hello", STAMP)
    await rooms.move(alice, "Attic")
    assert await rooms.alike_room("KITCHEN") == "Kitchen"  # empty, but its history is kept
    without_history = LocalRooms(history=MemoryHistory(per_room=0))
    bob = await entered(without_history, "Lounge", "Bob")
    without_history.chat(bob, "hello", STAMP)
    await without_history.move(bob, "Attic")
    assert await without_history.alike_room("lounge") is None


async def test_rename_and_move_change_the_member_only_when_the_rules_allow() -> None:
    rooms = LocalRooms()
    alice, _ = await entered(rooms, "Lounge", "Alice"), await entered(rooms, "Lounge", "Bob")
    other_bob = await entered(rooms, "Kitchen", "Bob")
    with pytest.raises(ProtocolError, match=exactly(protocol.NICK_TAKEN)):
        await rooms.rename(alice, "Bob")
    assert alice.nick == "Alice"
    await rooms.rename(alice, "Alicia")
    assert alice.nick == "Alicia"
    with pytest.raises(ProtocolError, match=exactly(protocol.NICK_TAKEN_IN_ROOM)):
        await rooms.move(other_bob, "Lounge")
    assert other_bob.room == "Kitchen"
    await rooms.move(alice, "Kitchen")
    assert alice.room == "Kitchen"
    assert await rooms.users("Kitchen") == ["Bob", "Alicia"]
    assert await rooms.users("Lounge") == ["Bob"]


# ------------------------------------------------------------------------ leaving


async def test_a_leave_tells_the_room_but_the_leaver_and_only_once(open_pair: OpenPair) -> None:
    a, b, c = await pairs(open_pair, 3)
    rooms = LocalRooms()
    alice = await entered(rooms, "Lounge", "Alice", a.socket)
    await entered(rooms, "Lounge", "Bob", b.socket)
    await entered(rooms, "Kitchen", "Carol", c.socket)
    assert rooms.leave(alice, left("Lounge", "Alice")) is True
    assert await b.received() == protocol.left("Lounge", "Alice", shame=False)
    assert await rooms.users("Lounge") == ["Bob"]
    assert rooms.leave(alice, left("Lounge", "Alice")) is False  # not registered any more
    for pair in (a, b, c):
        await pair.assert_quiet()


async def test_a_member_that_left_may_resume_and_one_never_registered_may_not() -> None:
    rooms = LocalRooms()
    alice = Someone(unconnected(), "Lounge", "Alice")
    token = await rooms.issue_token(alice)
    await rooms.enter(alice)
    rooms.leave(alice, left("Lounge", "Alice"))
    back = Someone(unconnected(), protocol.DEFAULT_ROOM, "")
    assert await rooms.resume(back, token) == Resumption(heard=True)
    assert (back.room, back.nick) == ("Lounge", "Alice")
    assert await rooms.users("Lounge") == []  # registering it is the caller's
    greeted = Someone(unconnected(), "Lounge", "Ghost")  # told a token, then it failed
    token = await rooms.issue_token(greeted)
    assert rooms.leave(greeted, left("Lounge", "Ghost")) is False
    assert await rooms.resume(Someone(unconnected(), protocol.DEFAULT_ROOM, ""), token) is None


# ------------------------------------------------------------------------ resuming


async def test_a_member_still_registered_is_replaced_unheard(open_pair: OpenPair) -> None:
    old, new, other = await pairs(open_pair, 3)
    rooms = LocalRooms()
    alice = await entered(rooms, "Lounge", "Alice", old.socket)
    await entered(rooms, "Lounge", "Bob", other.socket)
    token = await rooms.issue_token(alice)
    again = Someone(new.socket, protocol.DEFAULT_ROOM, "Zed")
    assert await rooms.resume(again, token) == Resumption(heard=False, replacing=alice)
    assert (again.room, again.nick) == ("Lounge", "Alice")
    rooms.replace(alice, again)
    assert await old.closed_with() == (protocol.RESUMED_CODE, protocol.RESUMED_REASON)
    assert rooms.leave(alice, left("Lounge", "Alice")) is False  # the lost one ends unheard
    assert await rooms.users("Lounge") == ["Alice", "Bob"]
    await rooms.broadcast("Lounge", b'{"to": "Lounge"}')
    assert await new.received() == await other.received() == {"to": "Lounge"}
    await new.assert_quiet()
    await other.assert_quiet()
    assert await rooms.resume(Someone(unconnected(), "Lounge", ""), token) is None  # once


# ------------------------------------------------------------------------ broadcasts


async def test_a_broadcast_reaches_the_room_but_the_one_excluded_and_counts(
    open_pair: OpenPair,
) -> None:
    a, b, c, d = await pairs(open_pair, 4)
    stats = Stats()
    rooms = LocalRooms(stats=stats)
    for nick, pair in (("Alice", a), ("Bob", b), ("Dave", d)):
        await entered(rooms, "Lounge", nick, pair.socket)
    await entered(rooms, "Kitchen", "Carol", c.socket)
    await rooms.broadcast("Lounge", b'{"n": 1}', a.socket)
    assert await b.received() == await d.received() == {"n": 1}
    assert stats.deliveries == 2
    await d.socket.close()  # closed, still registered: skipped, not counted
    rooms.broadcast_here("Lounge", b'{"n": 2}')
    assert await a.received() == await b.received() == {"n": 2}
    assert stats.deliveries == 4
    rooms.broadcast_here("Nowhere", b'{"n": 3}')
    assert stats.deliveries == 4
    for pair in (a, b, c):
        await pair.assert_quiet()


async def test_chat_keeps_a_message_and_leaves_sending_it_to_the_caller(
    open_pair: OpenPair,
) -> None:
    a, b = await pairs(open_pair, 2)
    rooms = LocalRooms()
    alice = await entered(rooms, "Lounge", "Alice", a.socket)
    await entered(rooms, "Lounge", "Bob", b.socket)
    payload, id = rooms.chat(alice, "hello", STAMP).outcome()
    assert json.loads(payload) == protocol.chat_broadcast("hello", "Alice", id, STAMP)
    await a.assert_quiet()
    await b.assert_quiet()
    assert await rooms.read_history("Lounge", None, 10) == (
        [protocol.history_entry(id, STAMP, "Alice", "hello")],
        True,
    )
