"""Commands to Redis: one helper that maps any failure to `Unavailable`, and the batch.

Commands made during one event-loop step go to Redis together (`Publisher.batch`): one
write and one round trip for all of them, as the Outbox does for sockets. A sender awaits
its own before it sends again, so its messages stay in order.

On a single Redis the batch goes down a connection of its own (`Pipe`): the commands are
encoded here and the replies parsed by hiredis as they arrive, each resolving the future of
its command, with one watchdog timer per connection (not per command) that drops a link
whose replies are overdue. On a Redis Cluster the batch is redis-py's cluster pipeline,
which routes each command to its shard. Everything else (nicks, user lists, history reads,
the keeper) uses redis-py, through `call`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any, Final, TypeVar, cast

import hiredis
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    RedisError,
)

from ..frames import MAX_DEFERRED_STEPS
from ..metrics import Stats
from ..protocol import Unavailable
from ..tasks import Tasks
from .health import Health
from .subscriber import Address

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT: Final = 1.5  # seconds a request may wait for Redis
MAX_CONNECTIONS: Final = 32  # to Redis (to each shard), per node; requests beyond wait
# What a failing Redis raises: redis-py's errors, the cluster client's own, the socket's.
FAILURES: Final = (RedisError, RedisClusterException, OSError, TimeoutError)

T = TypeVar("T")
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


class Publisher:
    """Runs this node's commands on `redis` (a `Redis` or a `RedisCluster` client)."""

    def __init__(
        self,
        redis: Any,
        stats: Stats,
        health: Health,
        scripts: dict[str, str],
        pipe_to: tuple[Address, list[Command]] | None = None,
        *,
        sharded: bool = False,
    ) -> None:
        """`pipe_to`: a single Redis's address and the commands that open a connection to it
        (AUTH, SELECT); without it (a Redis Cluster), batches go through redis-py.
        `sharded`: publish with SPUBLISH (a Redis Cluster's shard channels), else PUBLISH."""
        self.redis = redis
        self.publish_verb = "SPUBLISH" if sharded else "PUBLISH"
        self.stats = stats
        self._pipe_to = pipe_to
        # The cluster client fails when its connections run out: requests queue here instead.
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)
        self._pipe: Pipe | None = None
        self._connecting: asyncio.Task[None] | None = None
        self.scripts = {name: redis.register_script(source) for name, source in scripts.items()}
        self.health = health
        self._batch: list[Batched] = []
        self._batched_then = self._deferred = 0  # (`_send_when_quiet`)
        self._sending = Tasks()  # batches sent through redis-py
        self._reloading = False  # the scripts are being loaded again (`outcome`)

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await one Redis operation within `REQUEST_TIMEOUT`; `Unavailable` if it fails."""
        try:
            async with self._turns:  # waiting for a turn is not Redis being slow
                started = time.perf_counter()
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    result = await awaitable
        except FAILURES as exc:
            raise self._unavailable(exc) from None
        finally:  # cancelled before its turn: the command was never sent, nor will be
            created = inspect.iscoroutine(awaitable) and inspect.getcoroutinestate(awaitable)
            if created == inspect.CORO_CREATED:
                awaitable.close()  # type: ignore[attr-defined]
        self.stats.redis_round_trips.observe(time.perf_counter() - started)
        return result

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self.call(self.scripts[name](keys=keys, args=args))

    def _unavailable(self, exc: BaseException) -> Unavailable:
        self.health.failed()
        logger.debug("Redis unavailable: %r", exc)
        return Unavailable()

    # ------------------------------------------------------------------ the batch

    @property
    def in_order(self) -> bool:
        """Whether commands run in the order they are submitted, whichever batch they are
        in (down the `Pipe`); through redis-py, only those of one batch do."""
        return self._pipe_to is not None

    def submit(self, words: Command) -> asyncio.Future[Any]:
        """Put one command in this loop step's batch; the future of its reply, to be read
        with `outcome`. Commands go to Redis in the order they were submitted."""
        future = asyncio.get_running_loop().create_future()
        if not self._batch:
            self._deferred = 0
            self._batched_then = 0
            asyncio.get_running_loop().call_soon(self._send_when_quiet)
        self._batch.append((words, future))
        return future

    def _send_when_quiet(self) -> None:
        """Send the batch once a loop step has passed that added no command to it, or
        after a few (`MAX_DEFERRED_STEPS`, as the `Outbox` does): while chat messages keep
        coming, they share each write to Redis (a write per step cost a quarter of a busy
        node's CPU)."""
        if len(self._batch) != self._batched_then and self._deferred < MAX_DEFERRED_STEPS:
            self._deferred += 1
            self._batched_then = len(self._batch)
            asyncio.get_running_loop().call_soon(self._send_when_quiet)
        else:
            self._send_soon()

    def outcome(self, future: asyncio.Future[Any]) -> Any:
        """The reply of a command `submit`ted, once done; `Unavailable` if it failed. Not
        tried again: a later command may already have run. A script Redis lost (`SCRIPT
        FLUSH`: a new connection loads them first) is loaded again for the next ones."""
        try:
            result = future.result()
        except FAILURES as exc:
            raise self._unavailable(exc) from None
        if isinstance(result, Exception):
            if _no_script(result) and not self._reloading:
                self._reloading = True
                self._sending.spawn(self._reload_scripts(), name="redis-scripts")
            raise self._unavailable(result)
        return result

    async def _reload_scripts(self) -> None:
        try:
            await self.call(self._load_scripts())
        except Unavailable:
            pass  # the next command's failure tries again
        finally:
            self._reloading = False

    async def batch(self, words: Command) -> Any:
        """Run one command in this loop step's batch; its result (a script Redis lacks is
        loaded, and the command tried once more)."""
        for attempt in (1, 2):
            future = self.submit(words)
            try:
                result = await future
            except FAILURES as exc:
                raise self._unavailable(exc) from None
            if not isinstance(result, Exception):
                return result
            if attempt == 1 and _no_script(result):  # Redis restarted, or a new shard
                await self.call(self._load_scripts())
                continue
            raise self._unavailable(result)
        raise AssertionError("unreachable")

    def evalsha(self, name: str, keys: list[str], args: list[Any]) -> Command:
        """A batch command running script `name`."""
        return ("EVALSHA", self.scripts[name].sha, len(keys), *keys, *args)

    def publish(self, channel: str, payload: bytes) -> Command:
        """A batch command publishing `payload` on `channel`."""
        return (self.publish_verb, channel, payload)

    async def publish_now(self, channel: str, payload: bytes) -> None:
        """Publish `payload` on `channel` now, outside the batch."""
        await self.call(self.redis.execute_command(self.publish_verb, channel, payload))

    async def _load_scripts(self) -> None:
        for script in self.scripts.values():
            await self.redis.script_load(script.script)

    def _send_soon(self) -> None:
        batch, self._batch = self._batch, []
        if self._pipe is not None and self._pipe.usable:
            self._pipe.send(batch)  # no task: written now, answered as the replies arrive
            return
        self._sending.spawn(self._send(batch))

    async def _send(self, batch: list[Batched]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if self._pipe_to is not None:
                    pipe = await self._open_pipe()
                    pipe.send(batch)
                    return
                results = await self._execute(batch)
                # Redis restarted, or a new shard: the scripts, then the commands that lacked
                # them, once more. (Batches here may run in any order: see `in_order`.)
                missing = [i for i, result in enumerate(results) if _lacks_script(result)]
                if missing:
                    await self._load_scripts()
                    again = await self._execute([batch[i] for i in missing])
                    for index, result in zip(missing, again, strict=True):
                        results[index] = result
            self.stats.redis_round_trips.observe(time.perf_counter() - started)
        except FAILURES as exc:
            results = [RedisError(repr(exc))] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)  # an error too, as the Pipe hands it: `batch` decides

    async def _open_pipe(self) -> Pipe:
        """The connection to the single Redis: the open one, or a new one (one at a time)."""
        if self._pipe is not None and self._pipe.usable:
            return self._pipe
        task = self._connecting
        if task is None:
            task = self._connecting = asyncio.create_task(self._connect_pipe())
        try:
            await asyncio.shield(task)
        finally:
            if self._connecting is task and task.done():
                self._connecting = None
        assert self._pipe is not None
        return self._pipe

    async def _connect_pipe(self) -> None:
        assert self._pipe_to is not None
        address, opening = self._pipe_to
        # The scripts first: a Redis that restarted has lost them, and a command that
        # fails for want of one is not tried again (`outcome`).
        opening = [*opening, *(("SCRIPT", "LOAD", s.script) for s in self.scripts.values())]
        _, pipe = await asyncio.get_running_loop().create_connection(Pipe, *address)
        futures = [asyncio.get_running_loop().create_future() for _ in opening]
        pipe.send(list(zip(opening, futures, strict=True)))
        for reply in await asyncio.gather(*futures):
            if isinstance(reply, Exception):
                assert pipe.transport is not None
                pipe.transport.abort()
                raise RedisError(f"Redis refused the connection: {reply}")
        self._pipe = pipe

    async def _execute(self, batch: list[Batched]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for words, _ in batch:
                pipe.execute_command(*words)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results

    async def drain(self) -> None:
        """Give the batches under way a short grace to be answered (the node is stopping)."""
        await self._sending.aclose(grace=REQUEST_TIMEOUT)

    async def aclose(self) -> None:
        if self._pipe is not None and self._pipe.transport is not None:
            self._pipe.transport.close()
        await self.redis.aclose()
        pool = getattr(self.redis, "connection_pool", None)  # given, so not closed with it
        if pool is not None:
            await pool.aclose()


def _lacks_script(result: object) -> bool:
    return isinstance(result, Exception) and _no_script(result)


def _no_script(error: Exception) -> bool:
    """Whether `error` says Redis lacks a script (as hiredis or redis-py words it)."""
    return isinstance(error, NoScriptError) or str(error).startswith("NOSCRIPT")
