"""Catching up: every acknowledged chat message reaches this node's members once, in order.

Redis pub/sub delivers at most once: what is published while a node's subscription is down
(Redis restarted, the link was killed, a slot moved) never arrives. But every chat message
is in its room's log before it is published, numbered without gaps within the log's epoch
(`keys.APPEND`), as Centrifugo numbers a channel's publications. So for each room it serves,
a node remembers the last number it saw (its own messages included: they come back on the
channel, and are skipped), and

- a message whose number is not the next one is a gap: the node reads what it missed from
  the log (`keys.RECOVER`), delivers that, then what it heard meanwhile, in order;
- a message it has already seen is dropped (at least once on the wire, exactly once here);
- when the subscription comes back, it reads what was said while it was away.

What the log no longer holds (trimmed to `--history`, or lost with Redis) cannot be
delivered: then the members who were there are told, by `complete: false` in their next
`history` reply for the room, to catch up rather than trust what they saw.

Where a node starts to follow a room matters: before subscribing to it, the node reads the
log's last number (`keys.TAIL`); the first message heard after that is taken as it comes,
for anything between was said before the member who brought the room here had joined.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .. import history, protocol
from ..metrics import Stats
from ..protocol import Unavailable

logger = logging.getLogger(__name__)

Event = tuple[bytes, bytes, bytes]  # origin, chat message id (b"" for other events), body
Fetch = Callable[[str, str, int], Awaitable[Any]]  # room, epoch seen, number seen -> RECOVER
BroadcastHere = Callable[[str, bytes], None]  # room, serialized broadcast
_NEXT, _SEEN, _GAP = 0, 1, 2


class _Room:
    """What this node saw of one room's messages: the last id, as its epoch's prefix
    (`EPOCH-0`, what comes before the number) and its number."""

    __slots__ = ("again", "fresh", "n", "prefix", "queue")

    def __init__(self) -> None:
        self.prefix: bytes | None = None  # unknown until the log or a message says; b"": the
        # log was empty (what it holds later was all said after this node followed the room)
        self.n = 0
        self.fresh = True  # the next message is taken as it comes (see the module's notes)
        self.queue: list[Event] | None = None  # while catching up: what is heard meanwhile
        self.again = False  # the subscription came back during a catch-up: one more

    @property
    def epoch(self) -> str:
        return "" if self.prefix is None else self.prefix.decode().rpartition("-")[0]


class Catchup:
    """The rooms this node follows, and the catching up when it missed some of them."""

    def __init__(
        self,
        origin: bytes,
        fetch: Fetch,
        broadcast_here: BroadcastHere,
        missed: Callable[[str], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        stats: Stats,
    ) -> None:
        """`spawn` runs a catching up in the background (the rooms end them when they stop)."""
        self.origin = origin
        self.fetch, self.broadcast_here, self.missed, self.stats = (
            fetch,
            broadcast_here,
            missed,
            stats,
        )
        self._spawn = spawn
        self.rooms: dict[str, _Room] = {}

    def follow(self, room: str) -> bool:
        """Start following `room`; False if it is followed already."""
        if room in self.rooms:
            return False
        self.rooms[room] = _Room()
        return True

    def start_at(self, room: str, tail: Any) -> None:
        """Where the log of a newly followed `room` ends (`keys.TAIL`'s reply)."""
        state = self.rooms.get(room)
        epoch, last = (history.text(part) for part in tail)
        if state is not None and state.prefix is None:  # no message heard yet
            state.prefix = _prefix(epoch) if epoch else b""
            state.n = int(last.rpartition("-")[2] or 0)

    def forget(self, room: str) -> None:
        self.rooms.pop(room, None)

    def heard(self, room: str, event: Event) -> None:
        """A broadcast heard on `room`'s channel: deliver it, drop it, or catch up first."""
        origin, id, body = event
        state = self.rooms.get(room)
        if state is not None:
            if state.queue is not None:
                state.queue.append(event)
                return
            if _numbered(id):
                placed = _place(state, id)
                if placed == _SEEN:
                    return
                if placed == _GAP:
                    state.queue = [event]
                    self._spawn(self._catch_up(room, state))
                    return
        if origin != self.origin:
            self.broadcast_here(room, body)

    def resubscribed(self, room: str) -> None:
        """The subscription to `room` is back: fetch what was said while it was down."""
        state = self.rooms.get(room)
        if state is None:
            return
        if state.queue is not None:  # its fetch may have missed the last of it
            state.again = True
            return
        state.queue = []
        self._spawn(self._catch_up(room, state))

    async def _catch_up(self, room: str, state: _Room) -> None:
        """Deliver what `room`'s log holds past what this node saw, then what was heard
        meanwhile; whatever happens, the room is heard directly again afterwards."""
        lost = True
        try:
            lost = await self._recover(room, state)
        except Exception:  # a bug, or a log this version cannot read: not the room's end
            logger.exception("Could not catch up on %s", room)
        finally:
            queue, state.queue = state.queue or [], None
        if self.rooms.get(room) is not state:
            return  # no longer served here
        for origin, id, body in queue:
            if _numbered(id) and (placed := _place(state, id)) != _NEXT:
                if placed == _SEEN:
                    continue
                lost = True  # still a gap: the log could not be read, or no longer holds it
                _restart_at(state, id)
            if origin != self.origin:
                self.broadcast_here(room, body)
        if lost:
            self._lost(room)
        if state.again:
            state.again = False
            self.resubscribed(room)

    async def _recover(self, room: str, state: _Room) -> bool:
        """Deliver what the log of `room` holds past what this node saw; whether some of it
        could not be."""
        known = state.prefix is not None  # else where to resume is unknown: maybe missed some
        try:
            log_epoch, entries = await self.fetch(room, state.epoch, state.n)
        except Unavailable:
            log_epoch, entries, known = b"", [], False
        if self.rooms.get(room) is not state:
            return False  # no longer served here
        lost, recovered, epoch = not known, 0, history.text(log_epoch)
        if entries and _prefix(epoch) != state.prefix:  # a new epoch: what the old one held
            lost = lost or not state.fresh  # after what this node saw is gone, unknowable
            state.prefix, state.n = _prefix(epoch), 0
        for entry_id, fields in entries:
            n = int(history.text(entry_id).rpartition("-")[2])
            if n <= state.n:
                continue
            lost = lost or n != state.n + 1  # trimmed from the log before it was read
            state.n, state.fresh = n, False
            values = dict(zip(map(history.text, fields[::2]), map(history.text, fields[1::2]),
                              strict=True))  # fmt: skip
            if known and values["o"].encode() != self.origin:  # (else: old, or unknown)
                message_id = f"{epoch}-{history.text(entry_id)}"
                broadcast = protocol.chat_broadcast(
                    values["m"], values["u"], message_id, values["t"]
                )
                self.broadcast_here(room, protocol.encode(broadcast))
                recovered += 1
        self.stats.redis_recovered += recovered
        if recovered:
            logger.info("Caught up on %d message(s) in %s from its log", recovered, room)
        return lost

    def _lost(self, room: str) -> None:
        self.stats.redis_unrecoverable += 1
        logger.warning("Some messages in %s could not be delivered here: its members "
                       "will be told to catch up", room)  # fmt: skip
        self.missed(room)


def _prefix(epoch: str) -> bytes:
    """What comes before the number in the ids of `epoch` (see `keys.APPEND`)."""
    return f"{epoch}-0".encode()


def _numbered(id: bytes) -> bool:
    """Whether `id` is a chat message's (b"" for other events); one that is not ours (a
    node of another version) is delivered as it comes."""
    return id.rpartition(b"-")[2].isdigit()


def _place(state: _Room, id: bytes) -> int:
    """Where a chat message with `id` (`EPOCH-0-N`) falls: next, seen already, or past a gap
    (then nothing changes). Taken as next when the room is fresh."""
    prefix, _, number = id.rpartition(b"-")
    n = int(number)
    if prefix == state.prefix and n <= state.n:
        return _SEEN
    if state.fresh or (prefix == state.prefix and n == state.n + 1):
        state.prefix, state.n, state.fresh = prefix, n, False
        return _NEXT
    return _GAP


def _restart_at(state: _Room, id: bytes) -> None:
    """Take `id` as the last seen, whatever came before it."""
    state.fresh = True
    _place(state, id)
