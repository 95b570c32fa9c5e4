"""Commands to Redis: one helper that maps any failure to `Unavailable`, and the batch.

Commands made during one event-loop step go to Redis in one pipeline (`Publisher.batch`): one
round trip for all of them, as the Outbox does for sockets. A sender awaits its own before it
sends again, so its messages stay in order. The batch waits without a timer of its own: the
pipeline's timeout bounds every command in it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from redis.exceptions import NoScriptError, RedisError

from ..metrics import Stats
from ..protocol import Unavailable

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT: Final = 1.5  # seconds a request may wait for Redis

T = TypeVar("T")
Command = Callable[[Any], object]  # adds one command to a pipeline
Batched = tuple[Command, "asyncio.Future[Any]"]


class Publisher:
    """Runs this node's commands on `redis` (a `Redis` or a `RedisCluster` client)."""

    def __init__(self, redis: Any, stats: Stats, scripts: dict[str, str]) -> None:
        self.redis = redis
        self.stats = stats
        self.scripts = {name: redis.register_script(source) for name, source in scripts.items()}
        self.failed = True  # Redis may have lost what this node holds: the keeper checks
        self._batch: list[Batched] = []
        self._pending: set[asyncio.Task[None]] = set()

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await one Redis operation within `REQUEST_TIMEOUT`; `Unavailable` if it fails."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                result = await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from None
        self.stats.redis_round_trips.observe(time.perf_counter() - started)
        return result

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self.call(self.scripts[name](keys=keys, args=args))

    def _unavailable(self, exc: BaseException) -> Unavailable:
        self.failed = True
        self.stats.redis_up = False
        logger.debug("Redis unavailable: %r", exc)
        return Unavailable()

    # ------------------------------------------------------------------ the batch

    async def batch(self, add: Command) -> Any:
        """Run `add`'s command in this loop step's pipeline; its result."""
        future = asyncio.get_running_loop().create_future()
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._send_soon)
        self._batch.append((add, future))
        try:
            return await future
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from None

    def evalsha(self, name: str, keys: list[str], args: list[Any]) -> Command:
        """A pipeline command running script `name` (loaded first if Redis lacks it)."""
        sha = self.scripts[name].sha
        return lambda pipe: pipe.evalsha(sha, len(keys), *keys, *args)

    def publish(self, channel: str, payload: bytes, *, sharded: bool) -> Command:
        if sharded:
            return lambda pipe: pipe.spublish(channel, payload)
        return lambda pipe: pipe.publish(channel, payload)

    def _send_soon(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.create_task(self._send(batch))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, batch: list[Batched]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                results = await self._execute(batch)
                if any(isinstance(r, NoScriptError) for r in results):  # Redis restarted
                    for script in self.scripts.values():
                        await self.redis.script_load(script.script)
                    results = await self._execute(batch)
            self.stats.redis_round_trips.observe(time.perf_counter() - started)
        except (RedisError, OSError, TimeoutError) as exc:
            results = [RedisError(repr(exc))] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch: list[Batched]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for add, _ in batch:
                add(pipe)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results

    async def drain(self) -> None:
        """Give what is under way a short grace, then cancel it (the node is stopping)."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=REQUEST_TIMEOUT)
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        await self.redis.aclose()
        pool = getattr(self.redis, "connection_pool", None)  # given, so not closed with it
        if pool is not None:
            await pool.aclose()
