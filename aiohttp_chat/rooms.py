"""The rooms as one connection sees them: who is where, under which nick, and what was said.

`Rooms` is the interface a `ChatSession` speaks to. `LocalRooms` is this process alone: its
registry (room -> nick -> socket, moved with `utils`) and its in-memory history.
`cluster.ClusterRooms` is the same interface over several processes sharing Redis: it keeps
this node's members in a `LocalRooms` of its own, asks Redis first for what must be global,
and carries the broadcasts to the other nodes.

On a single server nothing here waits: a move, its broadcast and the reply are decided in
one step of the event loop, so no other connection sees a half-done move.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple, Protocol

from . import presence, protocol, utils
from .endings import Ending
from .frames import ChatSocket
from .history import MemoryHistory
from .memo import Memo
from .metrics import Stats
from .protocol import Clash, Message
from .resume import Tokens
from .utils import Registry


class Member(Protocol):
    """A connection in a room: what the rooms know of it, and may change (a lost nick)."""

    socket: ChatSocket
    room: str
    nick: str
    missed: str | None  # a room whose messages this member may have missed (with Redis)
    token: str | None  # to resume it with, where it is now (`resume.py`)


DEFAULT_ALIKE: Final = protocol.skeleton(protocol.DEFAULT_ROOM)


class Resumption(NamedTuple):
    """A resume token honoured: the member has its nick and room back (not yet registered).
    `replacing`: its lost connection, still registered here, whose place it takes; `heard`:
    whether the room is to hear it join (that connection had ended)."""

    heard: bool
    replacing: Member | None = None


class Chat:
    """A chat message on its way into its room's history (`Rooms.chat`): kept at once in one
    process; with Redis, once Redis has answered, and meanwhile the connection goes on with
    its next requests (`ChatSession` answers them in order)."""

    __slots__ = ("_finish", "_future", "_kept", "in_order")

    def __init__(
        self,
        kept: tuple[bytes, str] | None = None,
        future: asyncio.Future[Any] | None = None,
        finish: Callable[[asyncio.Future[Any]], tuple[bytes, str]] | None = None,
        *,
        in_order: bool = True,
    ) -> None:
        """`kept`: its broadcast and id, known now; else `finish(future)` reads them from
        `future`, once done. `in_order`: whether a message sent after it is sure to be kept
        after it (else the next one waits until this one is kept)."""
        self._kept, self._future, self._finish = kept, future, finish
        self.in_order = in_order

    @property
    def done(self) -> bool:
        return self._future is None or self._future.done()

    def when_done(self, callback: Callable[[object], None]) -> None:
        assert self._future is not None
        self._future.add_done_callback(callback)

    def outcome(self) -> tuple[bytes, str]:
        """Its broadcast (serialized) and its id; `Unavailable` if it could not be kept."""
        if self._kept is not None:
            return self._kept
        assert self._future is not None and self._finish is not None
        return self._finish(self._future)


class Rooms(Protocol):
    """What a connection asks of the rooms, wherever they are kept."""

    registry: Registry[ChatSocket]  # this process's members
    stats: Stats

    async def default_nick(self, room: str) -> str | None:
        """A free `User<n>` nick in `room`, or None if none was found."""

    async def take(self, room: str, nick: str) -> Clash | None:
        """What keeps `nick` from `room`; None if it is free there (with Redis: and now
        held for this node)."""

    async def alike_room(self, room: str) -> str | None:
        """The existing room (with members, or kept history; `Default` always) whose name
        is alike to `room` but not `room`, if any."""

    async def enter(self, member: Member) -> None:
        """Register `member` under its nick in its room (the nick is known to be free)."""

    def leave(self, member: Member, left: bytes | None) -> bool:
        """Unregister `member` and tell its room `left` (None: unheard, the room being
        `quiet`); False if it was not registered."""

    async def issue_token(self, member: Member) -> str:
        """A new resume token for `member` where it is now (the old one stops working)."""

    async def resume(self, member: Member, token: str) -> Resumption | None:
        """Give `member` the nick and room `token` resumes, if it is honoured (`resume.py`);
        None if not. Registering it is the caller's (`enter` or `replace`)."""

    def replace(self, old: Member, new: Member) -> None:
        """Register `new` in `old`'s place (its nick and room); `old` is closed with 4001
        and leaves unheard."""

    async def rename(self, member: Member, new: str) -> None: ...

    async def move(self, member: Member, new: str) -> None: ...

    def quiet(self, room: str) -> bool:
        """Whether `room` hears no `joined` or `left` now (`presence.quiet`): asked after an
        arrival is registered, before a departure is, so that the size counts that member."""

    async def broadcast(self, room: str, payload: bytes, exclude: ChatSocket | None = None) -> None:
        """Send `payload` to every member of `room` (but `exclude`), on every node: on the
        others as far as they can be reached (a join or a leave is not refused for want of
        Redis)."""

    def broadcast_here(self, room: str, payload: bytes, exclude: ChatSocket | None = None) -> None:
        """Send `payload` to this process's members of `room`, but `exclude`."""

    def chat(self, member: Member, text: str, stamp: str) -> Chat:
        """Keep a chat message in the room's history (with Redis: and send it to the other
        nodes); what gives its broadcast, serialized, and its id."""

    async def users(self, room: str) -> list[str]: ...

    async def user_list(self, room: str, after: str | None) -> Message:
        """The `user_list` answer for `room`: every name, or the page after `after`
        (`presence.Rosters`)."""

    async def room_list(self) -> list[tuple[str, int]]:
        """The rooms with members, each with its member count (`protocol.largest_rooms`);
        with Redis, as they were at most a second ago (`census.py`)."""

    async def read_history(
        self, room: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[Message], bool]:
        """The newest `limit` messages kept for `room` between `after` and `before` (ids;
        None: no bound), oldest first, and `complete` (protocol 1.1 and 1.2)."""


class LocalRooms:
    """The rooms of this process alone."""

    def __init__(
        self,
        registry: Registry[ChatSocket] | None = None,
        history: MemoryHistory | None = None,
        stats: Stats | None = None,
        rng: random.Random | None = None,
        announce_limit: int = presence.DEFAULT_ANNOUNCE_LIMIT,
    ) -> None:
        self.registry = utils.new_registry() if registry is None else registry
        self.announce_limit = announce_limit
        self.rng = rng  # what default nicks are drawn from (None: the `random` module)
        self.history = MemoryHistory() if history is None else history
        self.stats = Stats() if stats is None else stats
        self.tokens = Tokens()
        self._largest = Memo(self._read_largest)  # told of every change
        self.rosters = presence.Rosters(self.users)  # told of every change

    async def default_nick(self, room: str) -> str | None:
        return utils.free_default_nick(self.registry, room, rng=self.rng)

    async def take(self, room: str, nick: str) -> Clash | None:
        return utils.clash(self.registry.get(room), nick)

    async def alike_room(self, room: str) -> str | None:
        if protocol.skeleton(room) == DEFAULT_ALIKE and room != protocol.DEFAULT_ROOM:
            return protocol.DEFAULT_ROOM
        return utils.alike_room(self.registry, room) or self.history.alike_room(room)

    async def enter(self, member: Member) -> None:
        utils.add_member(self.registry, member.room, member.nick, member.socket)
        self._changed(member.room)

    def leave(self, member: Member, left: bytes | None) -> bool:
        room = member.room
        if not utils.remove_member(self.registry, room, member.nick, member.socket):
            self.tokens.revoke(member)  # greeted, but not registered: its token goes too
            return False
        self._changed(room)
        self.tokens.ended_now(member, time.monotonic())
        if left is not None:
            self.broadcast_here(room, left, member.socket)
        return True

    def quiet(self, room: str) -> bool:
        """As `Rooms.quiet`: the room's size is its members in this process."""
        return presence.quiet(len(self.registry.get(room, ())), self.announce_limit)

    def _changed(self, room: str) -> None:
        """The members of `room` changed: the answers that depend on them are made anew."""
        self._largest.changed()
        if room in self.registry:
            self.rosters.changed(room)
        else:
            self.rosters.forget(room)

    async def issue_token(self, member: Member) -> str:
        return self.tokens.issue(member)

    async def resume(self, member: Member, token: str) -> Resumption | None:
        found = self.tokens.take(token, time.monotonic())
        if found is None:
            return None
        if isinstance(found, tuple):  # ended lately: if the nick is still free
            room, nick = found
            if await self.alike_room(room) or await self.take(room, nick) is not None:
                return None
            member.room, member.nick = room, nick
            return Resumption(heard=True)
        member.room, member.nick = found.room, found.nick
        return Resumption(heard=False, replacing=found)

    def replace(self, old: Member, new: Member) -> None:
        self.registry[old.room][old.nick] = new.socket
        old.socket.drop(Ending.RESUMED)

    async def rename(self, member: Member, new: str) -> None:
        utils.change_nick(self.registry, member.room, member.nick, new)
        member.nick = new
        self.rosters.changed(member.room)

    async def move(self, member: Member, new: str) -> None:
        old = member.room
        utils.change_room(self.registry, old, new, member.nick)
        member.room = new
        self._changed(old)
        self._changed(new)

    async def broadcast(self, room: str, payload: bytes, exclude: ChatSocket | None = None) -> None:
        self.broadcast_here(room, payload, exclude)

    def chat(self, member: Member, text: str, stamp: str) -> Chat:
        """Keep a chat message in the room's history: kept at once."""
        id = self.history.append(member.room, member.nick, text, stamp)
        return Chat((protocol.encode(protocol.chat_broadcast(text, member.nick, id, stamp)), id))

    async def users(self, room: str) -> list[str]:
        return utils.list_users(self.registry, room)

    async def user_list(self, room: str, after: str | None) -> Message:
        return await self.rosters.answer(room, after)

    async def room_list(self) -> list[tuple[str, int]]:
        return await self._largest()

    async def _read_largest(self) -> list[tuple[str, int]]:
        return protocol.largest_rooms(utils.room_sizes(self.registry))

    async def read_history(
        self, room: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[Message], bool]:
        return self.history.read(room, after, limit, before)

    def broadcast_here(self, room: str, payload: bytes, exclude: ChatSocket | None = None) -> None:
        self.stats.deliveries += utils.broadcast(self.registry, room, payload, exclude)
