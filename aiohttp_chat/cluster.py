"""Many server processes, one chat: the shared state in Redis, the broadcasts over pub/sub.

Each node keeps its own sockets in its local registry, as a single server does; Redis holds
what must be global:

- `chat:room:{room}`: a hash nick -> owning node id. Claims, renames and moves are Lua
  scripts, so exactly one of two racing clients gets a nick, whatever node each is on;
- `chat:node:{node}`: the node's lease, renewed every `RENEW_SECONDS`; `chat:nodes` and
  `chat:node:{node}:members` let any node reap a dead node's members once its lease expired,
  and tell their rooms they left (`shame: true`);
- `chat:history:{room}`: the room's history, a capped stream (see `history.py`); a chat
  message is added and published in one script, so every node has the same id for it;
- `chat:events`: one pub/sub channel carrying every broadcast, already serialized, with its
  origin node and room. Each node hands it to its local members of that room; the origin node
  delivers to its own members directly. One channel and one publishing node per sender keep
  each sender's messages in order for every receiver. Delivery across nodes is at most once,
  as Redis pub/sub is.

When Redis is away, requests that need it fail fast with `protocol.Unavailable` and nothing
is half-done: a chat message is published before it is delivered or acknowledged. When Redis is
back (even empty), the keeper re-registers every live member within `RENEW_SECONDS` and the
subscriber resubscribes. Nick conflicts that arose meanwhile are settled by one rule: the node
whose id sorts first keeps the nick; the other node renames its member to a fresh `User<n>`
and tells it and its room with a `nick_changed` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from . import history, protocol, utils
from .config import Settings
from .metrics import Stats
from .protocol import Message, ProtocolError, Unavailable
from .utils import Registry
from .wire import ChatSocket

logger = logging.getLogger(__name__)

CHANNEL: Final = "chat:events"
NODES: Final = "chat:nodes"
LEASE_SECONDS: Final = 10.0
RENEW_SECONDS: Final = 2.0  # also how often dead nodes are looked for
REQUEST_TIMEOUT: Final = 1.5  # seconds a request may wait for Redis
MAX_CONNECTIONS: Final = 32  # to Redis, per node; requests beyond wait their turn
_SEP: Final = b"\x00"  # never in a room name or nick (control characters are refused)

T = TypeVar("T")
Batched = tuple[Callable[[Pipeline], object], "asyncio.Future[Any]"]  # a command, its result


class Named(Protocol):
    nick: str


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _room_key(room: str) -> str:
    return f"chat:room:{room}"


def _event(kind: bytes, node: bytes, room: str, body: bytes) -> bytes:
    """A pub/sub event: E (a broadcast) or D (a displaced nick), for one node and room."""
    return kind + node + _SEP + room.encode() + _SEP + body


def _member(room: str, nick: str) -> str:
    return f"{room}\x00{nick}"


# KEYS[1] room hash, KEYS[2] node's member index; ARGV nick, node, member
_CLAIM: Final = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[3])
    return 1
end
return 0
"""
# A member goes from (room, nick) to (room', nick'): a rename, or a move to another room.
# KEYS[1] from room hash, KEYS[2] to room hash, KEYS[3] index;
# ARGV from nick, to nick, node, from member, to member. 0 if the target is taken.
_RELOCATE: Final = """
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[3] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
return 1
"""
# KEYS[1] room hash, KEYS[2] index; ARGV nick, node, member
_RELEASE: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[3])
return 1
"""
# Re-registration after an outage. KEYS[1] room hash, KEYS[2] index; ARGV nick, node, member.
# Returns '' when registered, the displaced node's id when it took the nick from it, or
# '-' when another node keeps it (the node id that sorts first wins).
_REGISTER: Final = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] and owner < ARGV[2] then return '-' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if owner and owner ~= ARGV[2] then return owner end
return ''
"""
# KEYS[1] nodes set; ARGV node. Removes a node whose lease expired; returns its members
# that it still owned (room, nick, room, nick, ...), or nil if alive or already reaped.
_REAP: Final = """
local node = ARGV[1]
if redis.call('EXISTS', 'chat:node:' .. node) == 1 then return nil end
if redis.call('SREM', KEYS[1], node) == 0 then return nil end
local index = 'chat:node:' .. node .. ':members'
local gone = {}
for _, member in ipairs(redis.call('SMEMBERS', index)) do
    local cut = string.find(member, '\\0', 1, true)
    local room, nick = string.sub(member, 1, cut - 1), string.sub(member, cut + 1)
    if redis.call('HGET', 'chat:room:' .. room, nick) == node then
        redis.call('HDEL', 'chat:room:' .. room, nick)
        table.insert(gone, room)
        table.insert(gone, nick)
    end
end
redis.call('DEL', index)
return gone
"""


class Cluster:
    """This node's view of the cluster: its Redis state, its subscription, its keeper."""

    def __init__(
        self,
        url: str,
        rooms: Registry[ChatSocket],
        settings: Settings | None = None,
        stats: Stats | None = None,
    ) -> None:
        settings = settings or Settings()
        self.stats = Stats() if stats is None else stats
        self.stats.redis_up = False  # until the keeper hears from it
        self.node = secrets.token_hex(8)
        self._history_length = settings.history
        self._history_ttl_ms = int(settings.history_ttl * 1000)
        self._epochs = 0  # how many new history epochs this node proposed
        self._node_id = self.node.encode()  # as events carry it
        self.rooms = rooms
        # Blocking: a burst of requests waits for a free connection instead of failing.
        self._pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=REQUEST_TIMEOUT,
            socket_timeout=REQUEST_TIMEOUT,
            socket_connect_timeout=REQUEST_TIMEOUT,
        )
        self.redis = redis.Redis(connection_pool=self._pool)
        self._lease = f"chat:node:{self.node}"
        self._index = f"chat:node:{self.node}:members"
        self._scripts = {
            name: self.redis.register_script(source)
            for name, source in (
                ("claim", _CLAIM),
                ("relocate", _RELOCATE),
                ("release", _RELEASE),
                ("register", _REGISTER),
                ("reap", _REAP),
                ("append", history.APPEND_SCRIPT),
                ("read", history.READ_SCRIPT),
            )
        }
        self._dirty = True  # Redis may not hold what this node holds: register everything
        self._loops: list[asyncio.Task[None]] = []  # the keeper and the subscriber
        self._pending: set[asyncio.Task[None]] = set()  # publications, releases, renames
        self.subscribed = asyncio.Event()
        self._batch: list[Batched] = []
        self.sessions: dict[ChatSocket, Named] = {}  # to rename a member on a conflict

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._keep(), name="cluster-keeper"),
            asyncio.create_task(self._subscribe(), name="cluster-subscriber"),
        ]
        logger.info("Cluster node %s started", self.node)

    async def stop(self) -> None:
        # What is under way (the leaves of the members just closed, above all) gets a short
        # grace to reach the other nodes; then everything stops.
        if self._pending:
            await asyncio.wait(self._pending, timeout=REQUEST_TIMEOUT)
        for task in (*self._loops, *self._pending):
            task.cancel()
        await asyncio.gather(*self._loops, *self._pending, return_exceptions=True)
        with contextlib.suppress(Unavailable):  # leave the cluster politely if we can
            await self._call(self._leave_cluster())
        await self.redis.aclose()
        await self._pool.aclose()

    async def _leave_cluster(self) -> None:
        for member in map(_text, await self.redis.smembers(self._index)):
            room, _, nick = member.partition("\x00")
            await self._scripts["release"](
                keys=[_room_key(room), self._index], args=[nick, self.node, member]
            )
        await self.redis.delete(self._lease, self._index)
        await self.redis.srem(NODES, self.node)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ------------------------------------------------------------------ requests

    async def _call(self, awaitable: Awaitable[T]) -> T:
        """Await a Redis operation, within `REQUEST_TIMEOUT`, as `Unavailable` if it fails."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                result = await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            self._dirty = True
            self.stats.redis_up = False
            logger.debug("Redis unavailable: %r", exc)
            raise Unavailable from None
        self.stats.redis_round_trips.observe(time.perf_counter() - started)
        return result

    async def claim(self, room: str, nick: str) -> bool:
        member = _member(room, nick)
        script = self._scripts["claim"]
        claimed = script(keys=[_room_key(room), self._index], args=[nick, self.node, member])
        return bool(await self._call(claimed))

    async def rename(self, room: str, old: str, new: str) -> None:
        if not await self._relocate(room, old, room, new):
            raise ProtocolError(protocol.NICK_TAKEN)

    async def move(self, nick: str, old: str, new: str) -> None:
        if not await self._relocate(old, nick, new, nick):
            raise ProtocolError(protocol.NICK_TAKEN_IN_ROOM)

    async def _relocate(self, room: str, nick: str, to_room: str, to_nick: str) -> bool:
        keys = [_room_key(room), _room_key(to_room), self._index]
        args = [nick, to_nick, self.node, _member(room, nick), _member(to_room, to_nick)]
        return bool(await self._call(self._scripts["relocate"](keys=keys, args=args)))

    async def release(self, room: str, nick: str) -> None:
        keys = [_room_key(room), self._index]
        await self._call(
            self._scripts["release"](keys=keys, args=[nick, self.node, _member(room, nick)])
        )

    async def users(self, room: str) -> list[str]:
        nicks = await self._call(self.redis.hkeys(_room_key(room)))
        return [_text(nick) for nick in nicks]

    async def publish(self, room: str, payload: bytes) -> None:
        """Send a serialized broadcast to the other nodes' members of `room`."""
        event = _event(b"E", self._node_id, room, payload)
        await self._in_batch(lambda pipe: pipe.publish(CHANNEL, event))

    async def publish_chat(
        self, room: str, user: str, message: str, stamp: str
    ) -> tuple[bytes, str]:
        """Add a chat message to the room's history and publish it; its broadcast and id.

        The broadcast is serialized once, around the id Redis gives it (see `history.py`).
        """
        prefix, suffix = protocol.chat_broadcast_parts(message, user, stamp)
        self._epochs += 1
        keys = [history.stream_key(room), history.epoch_key(room)]
        args: list[str | int | bytes] = [
            self._history_length,
            self._history_ttl_ms,
            f"{self.node[:8]}{self._epochs:x}",
            CHANNEL,
            _event(b"E", self._node_id, room, prefix),
            suffix,
            user,
            message,
            stamp,
        ]
        script = self._scripts["append"]

        def append(pipe: Pipeline) -> None:
            # Loaded before the pipeline runs, if Redis lacks it (redis-py types the set as
            # holding the synchronous Script, but its async pipeline loads these the same way).
            pipe.scripts.add(script)  # type: ignore[arg-type]
            pipe.evalsha(script.sha, len(keys), *keys, *args)

        id = _text(await self._in_batch(append))
        return prefix + id.encode() + suffix, id

    async def read_history(
        self, room: str, after: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        epoch, entry = history.split_stream_id(after)
        keys = [history.stream_key(room), history.epoch_key(room)]
        read = self._scripts["read"](keys=keys, args=[limit + 1, epoch, entry])
        return history.from_stream(await self._call(read), after, limit)

    async def _in_batch(self, add: Callable[[Pipeline], object]) -> Any:
        """Run `add`'s command in this loop step's pipeline; its result.

        Commands made during one event-loop step go to Redis in one pipeline: one round trip
        for all of them, as the Outbox does for sockets. Each sender awaits its own before
        it sends again, so its messages stay in order.
        """
        future = asyncio.get_running_loop().create_future()
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._send_batch_soon)
        self._batch.append((add, future))
        try:
            return await future  # no timeout of its own: the batch's bounds it (a timer each costs)
        except RedisError:
            self._dirty = True
            raise Unavailable from None

    def _send_batch_soon(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.create_task(self._send_batch(batch))
        self._track(task)

    async def _send_batch(self, batch: list[Batched]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for add, _ in batch:
                        add(pipe)
                    results = await pipe.execute()
            self.stats.redis_round_trips.observe(time.perf_counter() - started)
        except (RedisError, OSError, TimeoutError) as exc:
            self.stats.redis_up = False
            for _, future in batch:
                if not future.done():
                    future.set_exception(RedisError(repr(exc)))
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def forget(self, room: str, nick: str, left: bytes) -> None:
        """A member left: release its nick and tell the other nodes, in the background."""
        task = asyncio.create_task(self._forget(room, nick, left))
        self._track(task)

    async def _forget(self, room: str, nick: str, left: bytes) -> None:
        with contextlib.suppress(Unavailable):  # if Redis is away, the keeper catches up
            await self.release(room, nick)
            await self.publish(room, left)

    async def default_nick(self, room: str) -> str | None:
        """A `User<n>` nick free in `room` on every node; unchecked if Redis is away."""
        for _ in range(utils.DEFAULT_NICK_ATTEMPTS):
            nick = utils.free_default_nick(self.rooms, room, attempts=1)
            if nick is None:
                continue
            try:
                if await self.claim(room, nick):
                    return nick
            except Unavailable:
                return nick  # registered (and checked) once Redis is back
        return None

    # ------------------------------------------------------------------ delivery

    def _deliver(self, event: bytes) -> None:
        kind, rest = event[:1], event[1:]
        node, room, body = rest.split(_SEP, 2)
        if kind == b"E" and node != self._node_id:
            members = self.rooms.get(room.decode())
            if members:
                self.stats.deliveries += utils.broadcast(members.values(), body)
        elif kind == b"D" and node == self._node_id:
            self._displaced(room.decode(), body.decode())

    async def _subscribe(self) -> None:
        """Receive every node's broadcasts; resubscribe for as long as it takes."""
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self.subscribed.set()
                logger.info("Subscribed to %s", CHANNEL)
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=RENEW_SECONDS
                    )
                    if message is not None:
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set():
                    logger.warning("Lost the subscription to %s: %r", CHANNEL, exc)
                self.subscribed.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ keeping

    async def _keep(self) -> None:
        """Renew the lease; re-register everything when Redis lost it; reap dead nodes."""
        while True:
            with contextlib.suppress(Unavailable):
                renewed = await self._call(
                    self.redis.set(self._lease, "1", px=int(LEASE_SECONDS * 1000), xx=True)
                )
                self.stats.redis_up = True
                if not renewed or self._dirty:
                    await self._register_all()
                await self._reap()
            await asyncio.sleep(RENEW_SECONDS)

    async def _register_all(self) -> None:
        self._dirty = False
        await self._call(self.redis.set(self._lease, "1", px=int(LEASE_SECONDS * 1000)))
        await self._call(self.redis.sadd(NODES, self.node))
        live = [(room, nick) for room, members in self.rooms.items() for nick in members]
        for stale in map(_text, await self._call(self.redis.smembers(self._index))):
            room, _, nick = stale.partition("\x00")
            if nick not in self.rooms.get(room, {}):  # left while Redis was away
                await self.release(room, nick)
        for room, nick in live:
            if nick not in self.rooms.get(room, {}):  # moved on meanwhile: already registered
                continue
            member = _member(room, nick)
            keys = [_room_key(room), self._index]
            result = await self._call(
                self._scripts["register"](keys=keys, args=[nick, self.node, member])
            )
            outcome = result.decode() if isinstance(result, bytes) else str(result)
            if outcome == "-":
                self._displaced(room, nick)
            elif outcome:  # we took it from `outcome`: tell that node
                notice = _event(b"D", outcome.encode(), room, nick.encode())
                await self._call(self.redis.publish(CHANNEL, notice))
        logger.info("Registered %d member(s) in Redis", len(live))

    def _displaced(self, room: str, nick: str) -> None:
        """Another node keeps `nick` in `room`: rename our member, spawned (it needs Redis)."""
        socket = self.rooms.get(room, {}).get(nick)
        if socket is not None:
            task = asyncio.create_task(self._rename_displaced(socket, room, nick))
            self._track(task)

    async def _rename_displaced(self, socket: ChatSocket, room: str, nick: str) -> None:
        new = await self.default_nick(room)
        members = self.rooms.get(room)
        if new is None or members is None or members.get(nick) is not socket:
            return
        members[new] = members.pop(nick)
        session = self.sessions.get(socket)
        if session is not None:
            session.nick = new
        logger.info("Nick %s in %s kept by another node; renamed ours %s", nick, room, new)
        await self._announce(room, protocol.nick_changed(room, nick, new))  # to it too

    # ------------------------------------------------------------------ reaping

    async def _reap(self) -> None:
        for node in map(_text, await self._call(self.redis.smembers(NODES))):
            if node == self.node:
                continue
            gone: Any = await self._call(self._scripts["reap"](keys=[NODES], args=[node]))
            if not gone:
                continue
            logger.info("Node %s is gone: removing its %d member(s)", node, len(gone) // 2)
            for room, nick in zip(map(_text, gone[::2]), map(_text, gone[1::2]), strict=True):
                await self._announce(room, protocol.left(room, nick, shame=True))

    async def _announce(self, room: str, message: protocol.Message) -> None:
        """Tell every member of `room`, on this node and the others (when Redis lets us)."""
        payload = protocol.encode(message)
        members = self.rooms.get(room)
        if members:
            self.stats.deliveries += utils.broadcast(members.values(), payload)
        with contextlib.suppress(Unavailable):
            await self.publish(room, payload)
