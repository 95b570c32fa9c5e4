"""Commands to Redis: one helper that maps any failure to `Unavailable`, and the batch.

Commands made while the loop is busy go to Redis together (`Publisher.submit`, and
`batch` to await one): one write and one round trip per server for all of them, sent once a
loop step added none, as the Outbox does for sockets. Commands of one room go down one
connection, in the order they were submitted, and a redirection keeps that order
(`_answered`), so a sender's chat messages need not wait for each other (`rooms.Chat`).

The batch goes down connections of its own (`pipes.Pipe`, one per Redis server): the
commands are encoded here and the replies parsed by hiredis as they arrive, each resolving
the future of its command. On a single Redis that is one connection. On a Redis Cluster it
is one per shard primary: each command goes to the primary of its first key's slot
(`shards.py`), each server's part of the batch in one write, and a command the cluster
redirects (MOVED, ASK, TRYAGAIN: a slot moving between shards) is sent again where it says,
a few times at most. Over TLS the batch is redis-py's pipeline (its cluster pipeline on a
cluster). Everything else (nicks, user lists, history reads, the keeper) uses redis-py,
through `call`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable
from functools import partial
from typing import Any, Final, TypeVar

from redis.exceptions import NoScriptError, RedisError

from ..frames import WhenQuiet
from ..metrics import Stats
from ..protocol import Unavailable
from ..tasks import Tasks
from .health import Health
from .pipes import FAILURES, REQUEST_TIMEOUT, Batched, Command, Pipes
from .shards import Shards, redirection
from .subscriber import Address

logger = logging.getLogger(__name__)

MAX_CONNECTIONS: Final = 32  # to Redis (to each shard), per node; requests beyond wait
MAX_REDIRECTS: Final = 5  # times the cluster may send one command elsewhere (then Unavailable)
TRYAGAIN_DELAY: Final = 0.05  # seconds before a command split by a migration is sent again

T = TypeVar("T")


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
        """`pipe_to`: the address of the Redis (on a cluster: of a node to learn the others
        from) and the commands that open a connection to it (AUTH, SELECT); without it
        (TLS), batches go through redis-py. `sharded`: a Redis Cluster, on which batches
        are routed per shard and published with SPUBLISH (shard channels), else PUBLISH."""
        self.redis = redis
        self.publish_verb = "SPUBLISH" if sharded else "PUBLISH"
        self.stats = stats
        # The cluster client fails when its connections run out: requests queue here instead.
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)
        self._address: Address | None = None  # the single Redis
        self._pipes: Pipes | None = None
        self.shards: Shards | None = None
        scripts_loaded = [("SCRIPT", "LOAD", source) for source in scripts.values()]
        if pipe_to is not None:
            self._address, opening = pipe_to
            # The scripts first: a Redis that restarted, or a new shard, lacks them, and a
            # submitted command that fails for want of one is not tried again (`outcome`).
            self._pipes = Pipes([*opening, *scripts_loaded])
            if sharded:
                self.shards = Shards(self._address, self._pipes.ask)
        self.scripts = {name: redis.register_script(source) for name, source in scripts.items()}
        self.health = health
        self._batch: list[Batched] = []
        # Sent once a loop step has passed that added no command to it, or after a few: while
        # chat messages keep coming, they share each write to Redis (a write per step cost a
        # quarter of a busy node's CPU).
        self._quiet = WhenQuiet(lambda: len(self._batch), self._send_soon)
        self._sending = Tasks()  # batches waiting for a connection, or sent through redis-py
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
        """Whether submitted commands of one room run in the order they were submitted,
        whichever batch they are in (down the pipes); through redis-py (TLS) only those of
        one batch do."""
        return self._pipes is not None

    def submit(self, words: Command) -> asyncio.Future[Any]:
        """Put one command in the batch; the future of its reply, to be read with `outcome`.
        On a cluster, a redirection is followed where it says (`_answered`)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._batch:
            self._quiet.start()
        if self.shards is None:
            self._batch.append((words, future))
            return future
        answered = loop.create_future()
        future.add_done_callback(partial(self._answered, words, answered, 0))
        self._batch.append((words, future))
        return answered

    def _answered(
        self, words: Command, answered: asyncio.Future[Any], redirects: int, reply: Any
    ) -> None:
        """A submitted command's reply came: `answered` has it, unless the cluster sent the
        command elsewhere (MOVED: the slot's new owner, in the map from now on; ASK: its
        target, after ASKING), at most `MAX_REDIRECTS` times. Then it is sent there now, as
        its reply is read, which keeps a room's order: the old owner ran the room's commands
        only while it had the room's keys (they leave it in one step, MIGRATE), so the later
        commands of the room sent there are answered after this one and sent on after it;
        those the map sends on are written after it too (`Pipes` keeps the order of what
        waits for one connection). One race is left: the map read anew for another slot
        may send the room's next command to the new owner while the old owner's answer to
        an earlier one is still unread; written before the keys left, it is read first
        unless both sockets are read in one step of the loop. TRYAGAIN (keys half moved)
        is answered as is: `batch` tries again, `outcome` refuses it."""
        if reply.cancelled():  # (never sent: the node is stopping)
            result: Any = ConnectionError("the command was cancelled")
        else:
            result = reply.exception() or reply.result()
        to = redirection(result) if isinstance(result, Exception) else None
        if to is None or to.address is None or redirects >= MAX_REDIRECTS:
            if not answered.done():
                answered.set_result(result)
            return
        if to.kind == "MOVED":
            assert self.shards is not None
            self.shards.moved(to.slot, to.address)
        again = asyncio.get_running_loop().create_future()
        again.add_done_callback(partial(self._answered, words, answered, redirects + 1))
        part: list[Batched] = [(words, again)]
        if to.kind == "ASK":  # its answer (+OK) matters to no one
            part.insert(0, (("ASKING",), asyncio.get_running_loop().create_future()))
        self._send_part(to.address, part)

    def outcome(self, future: asyncio.Future[Any]) -> Any:
        """The reply of a command `submit`ted, once done; `Unavailable` if it failed. Not
        tried again: a later command may already have run. A script Redis lost (`SCRIPT
        FLUSH`: a new connection loads them first) is loaded again for the next ones."""
        if future.cancelled():  # (never sent: the node is stopping)
            raise self._unavailable(ConnectionError("the command was cancelled"))
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
        """Submit one command and await its result (`submit`: a redirection is followed).
        Awaited, it may be tried again, which a submitted one may not (a later one may have
        run meanwhile): a script Redis lacks is loaded and the command sent once more, and
        one split by a slot's migration (TRYAGAIN) is sent again a moment later, at most
        `MAX_REDIRECTS` times; any other failure is `Unavailable`."""
        loaded, tries = False, 0
        while True:
            try:
                result = await self.submit(words)
            except FAILURES as exc:
                raise self._unavailable(exc) from None
            if not isinstance(result, Exception):
                return result
            if not loaded and _no_script(result):
                loaded = True
                await self.call(self._load_scripts())
                continue
            split = redirection(result) if self.shards is not None else None
            if split is not None and split.address is None and tries < MAX_REDIRECTS:
                tries += 1
                await asyncio.sleep(TRYAGAIN_DELAY)
                continue
            raise self._unavailable(result)

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
        if self._pipes is None:
            self._sending.spawn(self._send(batch))
        elif self.shards is None:
            assert self._address is not None
            self._send_part(self._address, batch)
        else:
            for address, part in self._parts(batch).items():
                if address is None:  # the map does not say (yet): read it, then send
                    self._sending.spawn(self._send_unplaced(part))
                else:
                    self._send_part(address, part)

    def _parts(self, batch: list[Batched]) -> dict[Address | None, list[Batched]]:
        """`batch` split by the shard primary of each command (None: the map does not say)."""
        assert self.shards is not None
        owner, parts = self.shards.owner, dict[Address | None, list[Batched]]()
        for batched in batch:
            parts.setdefault(owner(batched[0]), []).append(batched)
        return parts

    def _send_part(self, address: Address, part: list[Batched]) -> None:
        assert self._pipes is not None
        self._pipes.send(address, part)  # no task: answered as the replies arrive

    async def _send_unplaced(self, batch: list[Batched]) -> None:
        """Send commands whose slots the map did not say, once it was read again."""
        assert self.shards is not None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await self.shards.refresh()
        except BaseException as exc:  # (cancelled too: none may wait on)
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for address, part in self._parts(batch).items():
            if address is None:
                _fail(part, RedisError("no Redis Cluster primary holds the slot"))
            else:
                self._send_part(address, part)

    async def _send(self, batch: list[Batched]) -> None:
        """Send `batch` through redis-py (over TLS)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
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
        except BaseException as exc:  # whatever it was (cancelled too): none may wait on
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)  # an error too, as the Pipe hands it: `batch` decides

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
        if self.shards is not None:
            self.shards.close()
        if self._pipes is not None:
            self._pipes.close()
        await self.redis.aclose()
        pool = getattr(self.redis, "connection_pool", None)  # given, so not closed with it
        if pool is not None:
            await pool.aclose()


def _fail(batch: list[Batched], exc: BaseException) -> None:
    """Each command of `batch` failed with `exc` (as an error reply: `batch` decides)."""
    for _, future in batch:
        if not future.done():
            future.set_result(RedisError(repr(exc)))


def _lacks_script(result: object) -> bool:
    return isinstance(result, Exception) and _no_script(result)


def _no_script(error: Exception) -> bool:
    """Whether `error` says Redis lacks a script (as hiredis or redis-py words it)."""
    return isinstance(error, NoScriptError) or str(error).startswith("NOSCRIPT")
