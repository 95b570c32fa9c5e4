"""The subscriber: this node hears the channels of the rooms it serves, and its own.

Lean on purpose: each Redis server it listens to is one `asyncio.Protocol` whose
`data_received` parses every message in the chunk with hiredis and hands it on. No task,
future or timer per message (redis-py's `get_message(timeout=...)` makes a timer for each).

Channels come and go with the rooms' members (`subscribe`, `unsubscribe`). A room's first
member waits for Redis to confirm the subscription before its join completes, so nothing
said after it joined can pass it by. On a Redis Cluster each channel is a shard channel
(`SSUBSCRIBE`) on the master that holds its slot; when the slot moves, Redis unsubscribes
the channel there (or refuses it, MOVED): `moved` tells the map of the slots so, and the
link is replaced. A link that dies (closed, or silent for `SILENCE` seconds: `check` pings
each link and listens for the answer) is replaced, and every channel it carried is
subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Final, cast

import hiredis

from ..tasks import Tasks

logger = logging.getLogger(__name__)

SILENCE: Final = 5.0  # seconds without a word (pings are answered) before a link counts as dead
CONNECT_TIMEOUT: Final = 1.5
Address = tuple[str, int]
Hear = Callable[[bytes, bytes], None]  # channel, payload
Resubscribed = Callable[[str], None]  # a channel heard again after its link was lost
Locate = Callable[[str], Awaitable[Address]]  # the server that carries a channel
# Where channels are may have changed: Redis refused a subscription (with this error reply:
# MOVED, most likely), or unsubscribed a channel unasked (None: its slot moved).
Moved = Callable[[Exception | None], None]


def command(*args: str | bytes | int) -> bytes:
    """One command in Redis's wire format (hiredis encodes it, in C)."""
    return hiredis.pack_command(args)  # type: ignore[arg-type,no-any-return]  # (stub)


class _Link(asyncio.Protocol):
    """One connection to one Redis server, in subscribed mode."""

    def __init__(self, owner: Subscriber, address: Address) -> None:
        self.owner = owner
        self.address = address
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.heard = time.monotonic()
        self.active: set[str] = set()  # subscribed, or asked to be
        self.waiting: dict[str, deque[list[asyncio.Future[None]]]] = {}  # per SUBSCRIBE sent
        self.unsubscribing: Counter[str] = Counter()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if isinstance(reply, list) and len(reply) == 3 and reply[0] in _MESSAGES:
                self.owner.hear(reply[1], reply[2])
            elif isinstance(reply, list) and reply and reply[0] in _CONFIRMATIONS:
                self._confirmed(reply[0], reply[1].decode())
            elif isinstance(reply, hiredis.ReplyError):
                logger.warning("Redis %s:%s refused a subscription command: %s", *self.address,
                               reply)  # fmt: skip
                self.owner.moved(reply)  # MOVED, most likely: the map is out of date
                self.close()
                return

    def _confirmed(self, kind: bytes, channel: str) -> None:
        if kind in (b"subscribe", b"ssubscribe"):
            groups = self.waiting.get(channel)
            if groups:
                for future in groups.popleft():
                    if not future.done():
                        future.set_result(None)
                if not groups:
                    del self.waiting[channel]
        elif self.unsubscribing[channel] > 0:
            self.unsubscribing[channel] -= 1
        elif channel in self.active:  # unasked: its slot moved to another shard
            logger.info("Redis moved %s elsewhere: subscribing again", channel)
            self.owner.moved(None)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        for groups in self.waiting.values():
            for group in groups:
                for future in group:
                    if not future.done():
                        future.set_result(None)  # the new link subscribes it again
        self.waiting.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        self.owner.link_lost(self)

    def send(self, *args: str | bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(command(*args))

    def subscribe(self, channel: str, verb: str) -> asyncio.Future[None]:
        """Subscribe (or join the subscription under way); done when Redis confirmed it."""
        future = asyncio.get_running_loop().create_future()
        groups = self.waiting.setdefault(channel, deque())
        if channel in self.active and groups:
            groups[-1].append(future)
        elif channel in self.active:
            future.set_result(None)
        else:
            self.active.add(channel)
            groups.append([future])
            self.send(verb, channel)
        return future

    def unsubscribe(self, channel: str, verb: str) -> None:
        if channel in self.active:
            self.active.discard(channel)
            self.unsubscribing[channel] += 1
            self.send(verb, channel)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


_MESSAGES: Final = frozenset({b"message", b"smessage"})
_CONFIRMATIONS: Final = frozenset({b"subscribe", b"ssubscribe", b"unsubscribe", b"sunsubscribe"})


class Subscriber:
    """The channels this node hears, over one link per Redis server that carries them."""

    def __init__(
        self,
        hear: Hear,
        locate: Locate,
        *,
        resubscribed: Resubscribed = lambda channel: None,
        moved: Moved = lambda error: None,
        sharded: bool,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.hear = hear
        self.locate = locate
        self.resubscribed = resubscribed
        self.moved = moved  # told before the link closes: `locate` knows it when relinking
        self.verbs = ("SSUBSCRIBE", "SUNSUBSCRIBE") if sharded else ("SUBSCRIBE", "UNSUBSCRIBE")
        self.username, self.password, self.tls = username, password, tls
        self.wanted: set[str] = set()
        self.links: dict[Address, _Link] = {}
        self._connecting: dict[Address, asyncio.Task[_Link]] = {}
        self.linked = asyncio.Event()  # set while every wanted channel has a live link
        self._relinking = Tasks()

    async def subscribe(self, channel: str) -> None:
        """Hear `channel` from now on; returns once Redis confirmed it (or could not)."""
        self.wanted.add(channel)
        try:
            link = await self._link_for(channel)
        except (OSError, TimeoutError) as exc:
            self.linked.clear()
            logger.debug("Cannot subscribe to %s now: %r", channel, exc)
            return  # `check` links it once Redis is back
        if channel in self.wanted:  # still: it may have been dropped meanwhile
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await link.subscribe(channel, self.verbs[0])

    def hears(self, channel: str) -> bool:
        """Whether Redis confirmed `channel` on a live link."""
        return any(channel in k.active and channel not in k.waiting for k in self.links.values())

    def unsubscribe(self, channel: str) -> None:
        self.wanted.discard(channel)
        for link in self.links.values():
            link.unsubscribe(channel, self.verbs[1])

    async def check(self) -> None:
        """Ping every link; replace the silent ones; link every wanted channel (the keeper
        calls this every few seconds)."""
        now = time.monotonic()
        for link in list(self.links.values()):
            if now - link.heard > SILENCE:
                logger.warning("No word from Redis %s:%s for %.0f s: reconnecting",
                               *link.address, now - link.heard)  # fmt: skip
                link.close()
            else:
                link.send("PING")
        missing = [c for c in self.wanted if not any(c in k.active for k in self.links.values())]
        for channel in missing:
            await self._subscribe_again(channel)
        if all(any(c in k.active for k in self.links.values()) for c in self.wanted):
            self.linked.set()

    def link_lost(self, link: _Link) -> None:
        if self.links.get(link.address) is link:
            del self.links[link.address]
        if link.active:
            self.linked.clear()
            logger.warning("Lost the subscription link to Redis %s:%s", *link.address)
            self._relinking.spawn(self._relink(link.active & self.wanted))

    async def _relink(self, channels: set[str]) -> None:
        for channel in channels:
            await self._subscribe_again(channel)
        if all(any(c in k.active for k in self.links.values()) for c in self.wanted):
            self.linked.set()

    async def _subscribe_again(self, channel: str) -> None:
        """Subscribe to a channel whose link was lost; say so once Redis confirmed it."""
        await self.subscribe(channel)
        if self.hears(channel):
            self.resubscribed(channel)

    async def _link_for(self, channel: str) -> _Link:
        address = await self.locate(channel)
        link = self.links.get(address)
        if link is not None:
            return link
        task = self._connecting.get(address)
        if task is None:
            task = asyncio.create_task(self._connect(address))
            self._connecting[address] = task
            task.add_done_callback(lambda _: self._connecting.pop(address, None))
        return await asyncio.shield(task)

    async def _connect(self, address: Address) -> _Link:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, link = await loop.create_connection(
                lambda: _Link(self, address), *address, ssl=self.tls
            )
        if self.password is not None:
            credentials = (self.username, self.password) if self.username else (self.password,)
            link.send("AUTH", *credentials)  # answered +OK before any subscription's answer
        self.links[address] = link
        logger.info("Subscription link to Redis %s:%s open", *address)
        return link

    async def close(self) -> None:
        self._relinking.cancel()
        links = list(self.links.values())
        self.links.clear()
        for link in links:
            link.active.clear()
            link.close()
        await asyncio.gather(*(link.lost for link in links), return_exceptions=True)
