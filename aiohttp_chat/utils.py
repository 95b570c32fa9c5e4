"""Helpers the views call on the room registry: room -> nick -> socket.

The registry moves are plain functions on plain data (generic over the value, so they can be
tested with any object in place of a socket); each raises `ProtocolError` when a rule forbids
the move and then leaves the registry untouched.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Final, TypeVar

from . import protocol
from .protocol import ProtocolError
from .wire import ChatSocket

T = TypeVar("T")
Registry = defaultdict[str, dict[str, T]]

DEFAULT_NICK_ATTEMPTS: Final = 20


def new_registry() -> Registry[ChatSocket]:
    return defaultdict(dict)


def add_member(registry: Registry[T], room: str, nick: str, member: T) -> None:
    members = registry[room]
    if nick in members:
        raise ProtocolError(protocol.NICK_TAKEN_IN_ROOM)
    members[nick] = member


def remove_member(registry: Registry[T], room: str, nick: str, member: T) -> bool:
    """Remove `nick` from `room` if `member` holds it; forget the room once empty."""
    members = registry.get(room)
    if members is None or members.get(nick) is not member:
        return False
    del members[nick]
    if not members:
        del registry[room]
    return True


def change_nick(registry: Registry[T], room: str, old: str, new: str) -> None:
    members = registry[room]
    if new in members:
        raise ProtocolError(protocol.NICK_TAKEN)
    members[new] = members.pop(old)


def change_room(registry: Registry[T], old_room: str, new_room: str, nick: str) -> None:
    members = registry.get(new_room)
    if members is not None and nick in members:
        raise ProtocolError(protocol.NICK_TAKEN_IN_ROOM)
    member = registry[old_room][nick]
    remove_member(registry, old_room, nick, member)
    registry[new_room][nick] = member


def list_users(registry: Registry[T], room: str) -> list[str]:
    """The nicks in `room`; an unknown room is empty and is not created."""
    members = registry.get(room)
    return list(members) if members else []


def free_default_nick(
    registry: Registry[T],
    room: str,
    *,
    attempts: int = DEFAULT_NICK_ATTEMPTS,
    rng: random.Random | None = None,
) -> str | None:
    """A random `User<n>` nick free in `room`, or None if `attempts` draws all collided."""
    draw = (rng or random).randint
    members = registry.get(room, {})
    for _ in range(attempts):
        nick = f"User{draw(0, 999_999)}"
        if nick not in members:
            return nick
    return None
