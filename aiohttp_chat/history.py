"""Message history: the last chat messages of each room, kept so that nothing said is lost.

Every chat message gets an id and a time. Ids are opaque to clients; here they are
`EPOCH-N`. The epoch names one lifetime of the data the id points into, as Centrifugo's stream
epochs do: a new epoch is drawn whenever that data may have been lost, so an id is never
reused, and an `after` id from another epoch is known to be gone, not merely old.

- `MemoryHistory` (one server process): the epoch is drawn at start, N counts up across all
  rooms. Each room keeps its last `per_room` messages until `ttl` seconds after its last
  message; past `max_bytes` of message data in all, the rooms idle longest are forgotten.
- With Redis (`cluster/keys.py` holds the scripts): one capped stream per room
  (`chat:{r:ROOM}:history`), N is the stream's own entry id, and the epoch is a key beside it,
  drawn anew when Redis no longer has it (the room expired, or Redis lost its data). A
  message is added and published in one script, so its id is fixed before any node delivers
  it, and every node, the reply included, carries the same one.
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any, Final, NamedTuple

from . import protocol
from .protocol import Message

DEFAULT_PER_ROOM: Final = 100
DEFAULT_TTL: Final = 3600.0
DEFAULT_MAX_BYTES: Final = 64 << 20
ENTRY_OVERHEAD: Final = 48  # bytes an entry costs beyond its text (id, time), roughly


def new_epoch() -> str:
    return secrets.token_hex(4)


class Entry(NamedTuple):
    n: int
    id: str
    time: str
    user: str
    message: str


def select(
    entries: Iterable[Entry], found: int | None, after: str | None, limit: int
) -> tuple[list[Message], bool]:
    """The reply's messages and `complete`, given the kept `entries` (oldest first) and the
    index of the `after` entry among them (None: `after` is not kept, or was not given)."""
    kept = list(entries)
    if found is not None:
        kept = kept[found + 1 :]
    newest = kept[-limit:]
    complete = (after is None or found is not None) and len(newest) == len(kept)
    return [protocol.history_entry(e.id, e.time, e.user, e.message) for e in newest], complete


class _Room:
    __slots__ = ("bytes", "entries", "last")

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()
        self.bytes = 0
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
            kept = self._rooms[room] = _Room()
        else:
            self._rooms.move_to_end(room)
        kept.last = now
        kept.entries.append(Entry(self._n, id, stamp, user, message))
        size = len(user) + len(message) + ENTRY_OVERHEAD
        kept.bytes += size
        self.bytes += size
        if len(kept.entries) > self.per_room:
            self._drop_oldest(kept)
        while self.bytes > self.max_bytes:
            oldest_room, oldest = next(iter(self._rooms.items()))
            if oldest is kept:  # the only room left: it loses its oldest messages
                self._drop_oldest(kept)
            else:
                self._forget(oldest_room)
        return id

    def read(self, room: str, after: str | None, limit: int) -> tuple[list[Message], bool]:
        """The newest `limit` messages kept for `room` (after `after`), and `complete`."""
        self._expire(self._clock())
        kept = self._rooms.get(room)
        entries = kept.entries if kept is not None else deque()
        return select(entries, self._find(entries, after), after, limit)

    def rooms(self) -> int:
        return len(self._rooms)

    def _find(self, entries: deque[Entry], after: str | None) -> int | None:
        if after is None:
            return None
        epoch, _, n = after.rpartition("-")
        if epoch != self.epoch or not n.isdigit():
            return None
        i = bisect.bisect_left(entries, int(n), key=attrgetter("n"))
        return i if i < len(entries) and entries[i].id == after else None

    def _drop_oldest(self, kept: _Room) -> None:
        entry = kept.entries.popleft()
        size = len(entry.user) + len(entry.message) + ENTRY_OVERHEAD
        kept.bytes -= size
        self.bytes -= size

    def _forget(self, room: str) -> None:
        self.bytes -= self._rooms.pop(room).bytes

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


def split_stream_id(after: str | None) -> tuple[str, str]:
    """The epoch and stream entry id of an id made by `keys.APPEND`, or ('', '')."""
    if after is None:
        return "", ""
    parts = after.split("-")
    if len(parts) == 3 and parts[0].isalnum() and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], f"{parts[1]}-{parts[2]}"
    return "", ""  # not one of ours: unknown, so complete is false


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def from_stream(reply: Any, after: str | None, limit: int) -> tuple[list[Message], bool]:
    """The messages and `complete` from `keys.READ`'s reply (asked for `limit + 1`)."""
    epoch, found, newest_first = reply
    entries = []
    for n, fields in reversed(newest_first):
        values = dict(zip(map(text, fields[::2]), map(text, fields[1::2]), strict=True))
        entries.append(Entry(0, f"{text(epoch)}-{text(n)}", values["t"], values["u"], values["m"]))
    return select(entries, -1 if found else None, after, limit)  # -1: all are after it
