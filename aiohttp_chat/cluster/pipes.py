"""Direct connections to Redis servers for the batch: one `Pipe` per server (`Pipes`).

A `Pipe` is an `asyncio.Protocol`: the commands are encoded by hiredis and written at once,
and the replies parsed by hiredis as they arrive, each resolving the future of its command
(an error reply too, as a `hiredis.ReplyError`: the caller decides), with one watchdog timer
per connection (not per command) that drops a link whose replies are overdue. Replies come
back in the order the commands were written, so the commands of one pipe run in that order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Final, cast

import hiredis
from redis.exceptions import ConnectionError, RedisClusterException, RedisError

from .subscriber import Address

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT: Final = 1.5  # seconds a request may wait for Redis
# What a failing Redis raises: redis-py's errors, the cluster client's own, the socket's.
FAILURES: Final = (RedisError, RedisClusterException, OSError, TimeoutError)

Command = tuple[Any, ...]  # a command's words: ("PUBLISH", channel, payload)
Batched = tuple[Command, "asyncio.Future[Any]"]


class Pipe(asyncio.Protocol):
    """A connection that sends batches of commands and hands each reply to its future."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, batch: list[Batched]) -> None:
        """Write `batch`; a command that cannot be sent is answered with an error reply at
        once (the connection is gone), or left out of the write (it cannot be encoded)."""
        if self.transport is None or self.transport.is_closing():
            for _, future in batch:
                if not future.done():
                    future.set_result(ConnectionError("the connection to Redis was lost"))
            return
        packed, now = [], time.monotonic()
        for words, future in batch:
            try:
                packed.append(_pack(words))
            except (UnicodeError, TypeError, ValueError) as exc:
                if not future.done():
                    future.set_result(RedisError(f"cannot be sent to Redis: {exc}"))
                continue
            self.waiting.append((now, future))
        self.transport.write(b"".join(packed))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, self._check)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            _, future = self.waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def _check(self) -> None:
        self._watchdog = None
        if not self.waiting:
            return
        overdue = time.monotonic() - self.waiting[0][0]
        if overdue >= REQUEST_TIMEOUT:
            logger.warning("Redis did not answer within %.1f s: reconnecting", overdue)
            assert self.transport is not None
            self.transport.abort()
        else:
            delay = REQUEST_TIMEOUT - overdue
            self._watchdog = asyncio.get_running_loop().call_later(delay, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self.waiting:
            _, future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("the connection to Redis was lost"))
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pipes:
    """One `Pipe` per Redis server, opened when first needed with the `opening` commands
    (AUTH, SELECT, SCRIPT LOAD), one opening at a time per server. What is sent to a server
    while its connection opens waits here, and is written, in order, in the step it opens:
    nothing sent later can pass it."""

    def __init__(self, opening: list[Command]) -> None:
        self.opening = opening
        self._open: dict[Address, Pipe] = {}
        self._waiting: dict[Address, list[Batched]] = {}  # for a connection being opened
        self._connecting: set[asyncio.Task[None]] = set()

    def send(self, address: Address, part: list[Batched]) -> None:
        """Write `part` to `address` now, or once its connection is open (each reply, an
        error too, resolves its command's future; so does a failure to connect)."""
        pipe = self._open.get(address)
        if pipe is not None and pipe.usable:
            pipe.send(part)
            return
        waiting = self._waiting.get(address)
        if waiting is None:
            waiting = self._waiting[address] = []
            task = asyncio.get_running_loop().create_task(self._connect(address))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
        waiting.extend(part)

    async def _connect(self, address: Address) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                pipe = await self._open_to(address)
        except BaseException as exc:  # cancelled too (closing): nothing may wait for good
            for _, future in self._waiting.pop(address, []):
                if not future.done():
                    future.set_result(RedisError(f"cannot connect to Redis: {exc!r}"))
            if not isinstance(exc, Exception):
                raise
            return
        self._open[address] = pipe
        pipe.send(self._waiting.pop(address, []))

    async def _open_to(self, address: Address) -> Pipe:
        _, pipe = await asyncio.get_running_loop().create_connection(Pipe, *address)
        futures = [asyncio.get_running_loop().create_future() for _ in self.opening]
        pipe.send(list(zip(self.opening, futures, strict=True)))
        for reply in await asyncio.gather(*futures):
            if isinstance(reply, Exception):
                pipe.close()
                raise RedisError(f"Redis refused the connection: {reply}")
        return pipe

    async def ask(self, address: Address, words: Command) -> Any:
        """Run one command on `address` now; its reply (an error reply too, returned)."""
        future = asyncio.get_running_loop().create_future()
        self.send(address, [(words, future)])
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await future

    def close(self) -> None:
        for pipe in self._open.values():
            pipe.close()
        self._open.clear()
        for task in tuple(self._connecting):
            task.cancel()


def _pack(words: Command) -> bytes:
    """A command in Redis's protocol. Text is UTF-8; a chat message may hold a lone
    surrogate (JSON allows `\\ud800`), kept as such (`history.text` reads it back)."""
    try:
        return bytes(hiredis.pack_command(words))
    except UnicodeError:
        return bytes(hiredis.pack_command(tuple(_bytes(word) for word in words)))


def _bytes(word: Any) -> Any:
    return word.encode("utf-8", "surrogatepass") if isinstance(word, str) else word
