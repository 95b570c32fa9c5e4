"""Helpers the views call on the room registry: room -> nick -> socket, and the broadcast.

The registry moves are plain functions on plain data (generic over the value, so they can be
tested with any object in place of a socket); each raises `ProtocolError` when a rule forbids
the move and then leaves the registry untouched. Beside the nicks, each room keeps their
skeletons, and the registry those of the rooms' names (protocol 1.2: names that cannot be
mistaken for one another), so that a look-alike is found in one look-up at entry and nothing
is done per message.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Final, TypeVar

from . import frames, protocol
from .frames import ChatSocket
from .protocol import Clash

T = TypeVar("T")

DEFAULT_NICK_ATTEMPTS: Final = 20


class Members(dict[str, T]):
    """The members of one room, nick -> T; beside them, `alike`: skeleton -> the nick that
    has it (`protocol.skeleton`), so that a nick alike to a member's costs one look-up."""

    __slots__ = ("alike",)

    def __init__(self) -> None:
        super().__init__()
        self.alike: dict[str, str] = {}


class Registry(defaultdict[str, Members[T]]):
    """room -> its `Members`, a room being there while it has members; beside them,
    `alike`: skeleton -> the name of the room with members that has it."""

    def __init__(self) -> None:
        super().__init__(Members)
        self.alike: dict[str, str] = {}

    def __missing__(self, room: str) -> Members[T]:
        members = self[room] = Members()
        self.alike.setdefault(protocol.skeleton(room), room)
        return members

    def __delitem__(self, room: str) -> None:
        super().__delitem__(room)
        key = protocol.skeleton(room)
        if self.alike.get(key) == room:
            del self.alike[key]


def new_registry() -> Registry[ChatSocket]:
    return Registry()


def clash(members: Members[T] | None, nick: str, own: str | None = None) -> Clash | None:
    """What keeps `nick` from a room with `members`: a member has it, or one alike to it
    (but `own`, the nick of the one asking, whose own look-alike it may take); else None."""
    if not members:
        return None
    if nick in members:
        return Clash.SAME
    holder = members.alike.get(protocol.skeleton(nick))
    return Clash.ALIKE if holder is not None and holder != own else None


def alike_room(registry: Registry[T], room: str) -> str | None:
    """The room with members whose name is alike to `room` but not `room`; else None."""
    existing = registry.alike.get(protocol.skeleton(room))
    return None if existing == room else existing


def _add(members: Members[T], nick: str, member: T) -> None:
    members[nick] = member
    members.alike[protocol.skeleton(nick)] = nick


def _remove(members: Members[T], nick: str) -> T:
    key = protocol.skeleton(nick)
    if members.alike.get(key) == nick:
        del members.alike[key]
    return members.pop(nick)


def add_member(registry: Registry[T], room: str, nick: str, member: T) -> None:
    members = registry[room]
    if (found := clash(members, nick)) is not None:
        raise found.refusal(protocol.JOIN_ROOM)
    _add(members, nick, member)


def remove_member(registry: Registry[T], room: str, nick: str, member: T) -> bool:
    """Remove `nick` from `room` if `member` holds it; forget the room once empty."""
    members = registry.get(room)
    if members is None or members.get(nick) is not member:
        return False
    _remove(members, nick)
    if not members:
        del registry[room]
    return True


def change_nick(registry: Registry[T], room: str, old: str, new: str) -> None:
    members = registry[room]
    if (found := clash(members, new, own=old)) is not None:
        raise found.refusal(protocol.SET_NICK)
    _add(members, new, _remove(members, old))


def change_room(registry: Registry[T], old_room: str, new_room: str, nick: str) -> None:
    if (found := clash(registry.get(new_room), nick)) is not None:
        raise found.refusal(protocol.JOIN_ROOM)
    member = registry[old_room][nick]
    remove_member(registry, old_room, nick, member)
    _add(registry[new_room], nick, member)


def list_users(registry: Registry[T], room: str) -> list[str]:
    """The nicks in `room`; an unknown room is empty and is not created."""
    members = registry.get(room)
    return list(members) if members else []


def room_sizes(registry: Registry[T]) -> Iterator[tuple[str, int]]:
    """Each room and how many members it has here."""
    return ((room, len(members)) for room, members in registry.items())


def broadcast(
    registry: Registry[ChatSocket], room: str, payload: bytes, exclude: ChatSocket | None = None
) -> int:
    """Queue a serialized message for every member of `room` but `exclude`; how many took
    it. Framed once, never awaited (`frames.queue`): the registry may change right after."""
    members = registry.get(room)
    return frames.queue(members.values(), payload, exclude) if members else 0


def free_default_nick(
    registry: Registry[T],
    room: str,
    *,
    attempts: int = DEFAULT_NICK_ATTEMPTS,
    rng: random.Random | None = None,
) -> str | None:
    """A random `User<n>` nick free in `room`, or None if `attempts` draws all collided."""
    draw = (rng or random).randint
    members = registry.get(room)
    for _ in range(attempts):
        nick = f"User{draw(0, 999_999)}"
        if clash(members, nick) is None:
            return nick
    return None
