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
        assert self.transport is not None
        self.transport.write(b"".join([hiredis.pack_command(words) for words, _ in batch]))
        now = time.monotonic()
        self.waiting.extend((now, future) for _, future in batch)
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
    (AUTH, SELECT), one opening at a time per server."""

    def __init__(self, opening: list[Command]) -> None:
        self.opening = opening
        self._open: dict[Address, Pipe] = {}
        self._connecting: dict[Address, asyncio.Task[Pipe]] = {}

    def get(self, address: Address) -> Pipe | None:
        """The open connection to `address`, if there is one."""
        pipe = self._open.get(address)
        return pipe if pipe is not None and pipe.usable else None

    async def connect(self, address: Address) -> Pipe:
        """The connection to `address`: the open one, or a new one."""
        if (pipe := self.get(address)) is not None:
            return pipe
        task = self._connecting.get(address)
        if task is None:
            task = self._connecting[address] = asyncio.create_task(self._connect(address))
            task.add_done_callback(lambda _: self._forget(address, task))
        return await asyncio.shield(task)

    def _forget(self, address: Address, task: asyncio.Task[Pipe]) -> None:
        if self._connecting.get(address) is task:
            del self._connecting[address]

    async def _connect(self, address: Address) -> Pipe:
        _, pipe = await asyncio.get_running_loop().create_connection(Pipe, *address)
        futures = [asyncio.get_running_loop().create_future() for _ in self.opening]
        pipe.send(list(zip(self.opening, futures, strict=True)))
        for reply in await asyncio.gather(*futures):
            if isinstance(reply, Exception):
                assert pipe.transport is not None
                pipe.transport.abort()
                raise RedisError(f"Redis refused the connection: {reply}")
        self._open[address] = pipe  # before any waiter resumes: they find it open
        return pipe

    async def ask(self, address: Address, words: Command) -> Any:
        """Run one command on `address` now; its reply (an error reply too, returned)."""
        async with asyncio.timeout(REQUEST_TIMEOUT):
            pipe = await self.connect(address)
            future = asyncio.get_running_loop().create_future()
            pipe.send([(words, future)])
            return await future

    def close(self) -> None:
        for pipe in self._open.values():
            pipe.close()
        self._open.clear()
        for task in self._connecting.values():
            task.cancel()
