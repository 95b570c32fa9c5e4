"""Message history: the last chat messages of each room, kept so that nothing said is lost.

Every chat message gets an id and a time. Ids are opaque to clients; here they are
`EPOCH-N`. The epoch names one lifetime of the data the id points into, as Centrifugo's stream
epochs do: a new epoch is drawn whenever that data may have been lost, so an id is never
reused, and an `after` id from another epoch is known to be gone, not merely old.

- `MemoryHistory` (one server process): the epoch is drawn at start, N counts up across all
  rooms. Each room keeps its last `per_room` messages until `ttl` seconds after its last
  message; past `max_bytes` in all, the rooms idle longest are forgotten. The bytes counted
  are what the history really holds in memory (the strings as Python stores them, the tuples,
  the room's own objects and its place in the index), as tracemalloc measures it: a cap is
  only worth its name if a million tiny rooms cannot pass it.
- With Redis (`cluster/keys.py` holds the scripts): one capped stream per room
  (`chat:{r:ROOM}:log`), whose own entry ids `0-N` count up per room (an id is
  `EPOCH-0-N`), and the epoch is a key beside it, drawn anew when Redis no longer has it
  (the room expired, or Redis lost its data). A
  message is added and published in one script, so its id is fixed before any node delivers
  it, and every node, the reply included, carries the same one.
"""

from __future__ import annotations

import bisect
import secrets
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

from . import protocol
from .protocol import Message

DEFAULT_PER_ROOM: Final = 100
DEFAULT_TTL: Final = 3600.0
DEFAULT_MAX_BYTES: Final = 64 << 20
# What a kept message costs besides its nick and text (measured with tracemalloc, 64-bit
# CPython 3.11): its tuple (72), its number (28), its time (73, counted though the messages
# of one millisecond share it) and its slot in the room's list, with the list's spare room.
ENTRY_BYTES: Final = 72 + 28 + 73 + 12
# What a room costs besides its messages: its `_Room` (64) and list (56), its name and its
# skeleton, counted apart, its place in the rooms' ordered index (91 on average, measured at
# 100,000 and 200,000 rooms, more while the table has just grown) and in the index of the
# skeletons (94, measured likewise).
ROOM_BYTES: Final = 64 + 56 + 112 + 94
_N: Final = itemgetter(0)


def new_epoch() -> str:
    return secrets.token_hex(4)


def complete(
    after: str | None, after_kept: bool, before: str | None, before_kept: bool, cut: bool
) -> bool:
    """A history reply's `complete`: each bound given names a kept message, and the limit cut
    none of the messages between them."""
    return (after is None or after_kept) and (before is None or before_kept) and not cut


Kept = tuple[int, str, str, str]  # a message in memory: its N, time, user and text


def entry_bytes(user: str, message: str) -> int:
    """What keeping one message costs (see `ENTRY_BYTES`)."""
    return ENTRY_BYTES + sys.getsizeof(user) + sys.getsizeof(message)


class _Room:
    __slots__ = ("alike", "bytes", "entries", "last")

    def __init__(self, name: str) -> None:
        self.entries: list[Kept] = []  # oldest first; a list is 576 bytes smaller than a deque
        self.alike = protocol.skeleton(name)
        self.bytes = ROOM_BYTES + sys.getsizeof(name) + sys.getsizeof(self.alike)
        self.last = 0.0


class MemoryHistory:
    """The history of one server process, in its memory."""

    def __init__(
        self,
        per_room: int = DEFAULT_PER_ROOM,
        ttl: float = DEFAULT_TTL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_room, self.ttl, self.max_bytes = per_room, ttl, max_bytes
        self._clock = clock
        self.epoch = new_epoch()
        self._n = 0
        self._rooms: OrderedDict[str, _Room] = OrderedDict()  # idle longest first
        self._alike: dict[str, str] = {}  # skeleton -> the name of a room kept here
        self._expires_at = 0.0  # no room expires before this
        self.bytes = 0

    def append(self, room: str, user: str, message: str, stamp: str) -> str:
        """Keep one message; its new id."""
        self._n += 1
        id = f"{self.epoch}-{self._n}"
        if not self.per_room:
            return id
        now = self._clock()
        self._expire(now)
        kept = self._rooms.get(room)
        if kept is None:
            kept = self._rooms[room] = _Room(room)
            self._alike.setdefault(kept.alike, room)
            self.bytes += kept.bytes
        else:
            self._rooms.move_to_end(room)
        kept.last = now
        kept.entries.append((self._n, stamp, user, message))
        size = entry_bytes(user, message)
        kept.bytes += size
        self.bytes += size
        if len(kept.entries) > self.per_room:
            self._drop_oldest(kept)
        while self.bytes > self.max_bytes and self._rooms:
            oldest_room, oldest = next(iter(self._rooms.items()))
            if oldest is kept and len(kept.entries) > 1:  # the only room left: it loses
                self._drop_oldest(kept)  # its oldest messages
            else:  # (this very room, if even its newest message is more than the cap)
                self._forget(oldest_room)
        return id

    def read(
        self, room: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[Message], bool]:
        """The newest `limit` messages kept for `room` after `after` and before `before`
        (each None: no bound), and `complete`."""
        self._expire(self._clock())
        kept = self._rooms.get(room)
        entries = kept.entries if kept is not None else []
        found = self._find(entries, after)
        start = 0 if found is None else found + 1
        end, placed = len(entries), True
        if before is not None:
            if (n := self._number(before)) is None:  # of another epoch: nothing is placed
                return [], False
            end = bisect.bisect_left(entries, n, key=_N)
            placed = end < len(entries) and entries[end][0] == n
        newest = max(start, end - limit)
        epoch = self.epoch
        return [
            protocol.history_entry(f"{epoch}-{n}", stamp, user, message)
            for n, stamp, user, message in entries[newest:end]
        ], complete(after, found is not None, before, placed, cut=newest > start)

    def rooms(self) -> int:
        return len(self._rooms)

    def _find(self, entries: list[Kept], after: str | None) -> int | None:
        """The index of the entry `after` names, if it is kept."""
        if after is None or (n := self._number(after)) is None:
            return None
        i = bisect.bisect_left(entries, n, key=_N)
        return i if i < len(entries) and entries[i][0] == n else None

    def _number(self, id: str) -> int | None:
        """The number of an id of this epoch (kept or not), or None."""
        epoch, _, n = id.rpartition("-")
        return int(n) if epoch == self.epoch and _is_number(n) else None

    def _drop_oldest(self, kept: _Room) -> None:
        _, _, user, message = kept.entries.pop(0)
        size = entry_bytes(user, message)
        kept.bytes -= size
        self.bytes -= size

    def alike_room(self, room: str) -> str | None:
        """A room with history kept whose name is alike to `room` but not `room`; or None."""
        self._expire(self._clock())
        existing = self._alike.get(protocol.skeleton(room))
        return None if existing == room else existing

    def _forget(self, room: str) -> None:
        kept = self._rooms.pop(room)
        if self._alike.get(kept.alike) == room:
            del self._alike[kept.alike]
        self.bytes -= kept.bytes

    def _expire(self, now: float) -> None:
        if now < self._expires_at:  # nothing can have expired yet: checked once per message
            return
        while self._rooms:
            room, oldest = next(iter(self._rooms.items()))
            if oldest.last + self.ttl > now:
                self._expires_at = oldest.last + self.ttl  # the room idle longest goes first
                return
            self._forget(room)
        self._expires_at = now + self.ttl


# ------------------------------------------------------------------------ with Redis


ID_NUMBER_MAX: Final = 2**64 - 1  # a part of a Redis stream id; ours count up from 1


def _is_number(text: str) -> bool:
    """Whether `text` is a number as we write them: ASCII digits, no leading zero ('²' is a
    digit to `str.isdigit`, and `int` refuses it), at most 2**64 - 1 (Redis refuses a larger
    stream id, and `int` refuses more than 4,300 digits)."""
    return (
        text.isascii()
        and text.isdigit()
        and (text == "0" or not text.startswith("0"))
        and len(text) <= 20
        and int(text) <= ID_NUMBER_MAX
    )


def split_stream_id(after: str | None) -> tuple[str, str]:
    """The epoch and stream entry id of an id made by `keys.APPEND`, or ('', '')."""
    if after is None:
        return "", ""
    parts = after.split("-")
    if (
        len(parts) == 3
        and parts[0].isascii()
        and parts[0].isalnum()
        and all(map(_is_number, parts[1:]))
    ):
        return parts[0], f"{parts[1]}-{parts[2]}"
    return "", ""  # not one of ours: unknown, so complete is false


def text(value: bytes | str) -> str:
    """Text read from Redis (a lone surrogate in a chat message too, as it was written)."""
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def from_stream(
    reply: Any, after: str | None, limit: int, before: str | None = None
) -> tuple[list[Message], bool]:
    """The messages and `complete` from `keys.READ`'s reply (asked for `limit + 1`)."""
    epoch, found, placed, newest_first = reply
    messages = []
    for n, fields in reversed(newest_first[:limit]):
        values = dict(zip(map(text, fields[::2]), map(text, fields[1::2]), strict=True))
        id = f"{text(epoch)}-{text(n)}"
        messages.append(protocol.history_entry(id, values["t"], values["u"], values["m"]))
    return messages, complete(after, bool(found), before, bool(placed), len(newest_first) > limit)
