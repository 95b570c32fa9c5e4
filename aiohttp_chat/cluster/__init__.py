"""Many server processes, one chat: the rooms over Redis (one server, or a Redis Cluster).

Each node keeps its own sockets in its local registry, as a single server does; Redis holds
what must be global (`keys.py` names every key): the nicks of each room and which node owns
each, each node's lease and members, the rooms' histories. Broadcasts travel on one channel
per room, and a node subscribes only to the rooms in which it has members, so a message
reaches only the nodes that need it (`subscriber.py`). The origin node delivers to its own
members directly, once Redis has kept them. Every member hears each sender's messages in
the order they were sent, and the other nodes' messages in the order of the room's log: one
script adds a message to the log and publishes it, atomically, on the one Redis server (or
shard: a room's keys and channel share a hash tag) that holds the room, and a room's
commands go to it down one connection, in the order they were submitted (`pipes.py`). A
chat message missed on the way (the subscription was
down, Redis restarted) is fetched from the room's log (`catchup.py`): every acknowledged
message reaches every member once, in order, or the member is told to catch up. Commands go
out batched per loop step (`publisher.py`; on a cluster, to each shard's primary, following
a slot that moves: `shards.py`); the lease, the re-registration after an outage
and the reaping of dead nodes are the keeper's (`keeper.py`).

When Redis is away, requests that need it fail fast with `protocol.Unavailable` and nothing
is half-done: a chat message is published before it is delivered or acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import ssl
from collections import deque
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster

from .. import history, presence, protocol, resume, utils
from ..config import Settings
from ..endings import Ending
from ..frames import ChatSocket
from ..metrics import Stats
from ..protocol import Clash, Message, Unavailable
from ..rooms import Chat, LocalRooms, Member, Resumption
from ..tasks import Tasks
from ..utils import Registry
from . import keys
from .catchup import Catchup
from .census import Census
from .health import Health
from .keeper import Keeper
from .pipes import FAILURES, REQUEST_TIMEOUT
from .publisher import MAX_CONNECTIONS, Publisher
from .shards import redirection
from .subscriber import Address, Subscriber

logger = logging.getLogger(__name__)

STOP_SECONDS: Final = 5.0  # at most, to release this node's members when it stops
UNSENT_MAX: Final = 1000  # broadcasts kept for Redis to come back (joins, leaves, renames)
SCRIPTS: Final = {
    "rename": keys.RENAME,
    "release": keys.RELEASE,
    "register": keys.REGISTER,
    "append": keys.APPEND,
    "read": keys.READ,
    "tail": keys.TAIL,
    "recover": keys.RECOVER,
    "take": keys.TAKE,
    "claim": keys.CLAIM,
    "name": keys.NAME,
}
NAMED_PENDING_MS: Final = 60_000  # a room's name, kept for a claim that did not come
CLASHES: Final = {1: Clash.SAME, 2: Clash.ALIKE}  # what CLAIM and RENAME answer
HELD_SECONDS: Final = 86_400  # a token's record while its connection is open (then KEEP)
ROSTER_SECONDS: Final = 1.0  # a big room's names, as other nodes changed them (`presence.py`)


class ClusterRooms:
    """The rooms of every node sharing one Redis (or Redis Cluster, with `redis_cluster`),
    a `rooms.Rooms`: this node's members are kept in a `LocalRooms`."""

    def __init__(
        self,
        url: str,
        registry: Registry[ChatSocket] | None = None,
        settings: Settings | None = None,
        stats: Stats | None = None,
        rng: random.Random | None = None,
    ) -> None:
        settings = settings or Settings()
        self.local = LocalRooms(registry, None, stats, rng, settings.announce_limit)
        self.registry, self.stats = self.local.registry, self.local.stats
        self.announce_limit = settings.announce_limit
        self.sizes: dict[str, int] = {}  # room -> its members on all the nodes (`quiet`)
        self.rosters = presence.Rosters(self.users, ROSTER_SECONDS)
        self.sharded = settings.redis_cluster
        self.health = Health(self.stats)
        self._tasks = Tasks()  # releases, leaves, catching up
        self.node = secrets.token_hex(8)
        self._origin = self.node.encode()
        self._history = (settings.history, int(settings.history_ttl * 1000))
        self._epochs = 0  # how many new history epochs this node proposed
        options: dict[str, Any] = {
            "socket_timeout": REQUEST_TIMEOUT,
            "socket_connect_timeout": REQUEST_TIMEOUT,
            "encoding_errors": "surrogatepass",  # a chat message's lone surrogate, as the pipes
        }
        client: Any
        if self.sharded:
            # Beyond `call`'s turns, batches and the keeper need connections of their own.
            client = RedisCluster.from_url(url, max_connections=4 * MAX_CONNECTIONS, **options)
        else:  # blocking: a burst of requests waits for a free connection instead of failing
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=MAX_CONNECTIONS, timeout=REQUEST_TIMEOUT, **options
            )
            client = redis.Redis(connection_pool=pool)
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        self.url_shown = (  # for the log: never its password
            parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()
            if parts.password
            else url
        )
        self._address: Address = (parts.hostname or "localhost", parts.port or 6379)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        tls = ssl.create_default_context() if parts.scheme == "rediss" else None
        opening: list[tuple[Any, ...]] = []  # what a new connection says first
        if password is not None:
            opening.append(("AUTH", *([username] if username else []), password))
        if (db := parts.path.strip("/")) not in ("", "0") and not self.sharded:
            opening.append(("SELECT", db))  # a cluster has only database 0
        direct = None if tls else (self._address, opening)
        self.publisher = Publisher(
            client, self.stats, self.health, SCRIPTS, direct, sharded=self.sharded
        )
        self.call = self.publisher.call
        self.subscriber = Subscriber(
            self._heard,
            self._locate,
            resubscribed=self._resubscribed,
            moved=self._moved,
            sharded=self.sharded,
            username=username,
            password=password,
            tls=tls,
        )
        self._node_channel = keys.node_channel(self.node)
        self.catchup = Catchup(
            self._origin,
            self._fetch_missed,
            self.local.broadcast_here,
            self._missed,
            self._tasks.spawn,
            self.stats,
        )
        self.keeper = Keeper(self, self.publisher, self.health)
        self.census = Census(self.publisher)
        self.members: dict[ChatSocket, Member] = {}  # to rename one that lost its nick
        self.subscribed = asyncio.Event()  # set once this node hears its own channel
        self._unsent: deque[tuple[str, bytes]] = deque(maxlen=UNSENT_MAX)
        self._keeping = Tasks()  # the keeper's rounds

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.sharded:
            with contextlib.suppress(*FAILURES):  # if Redis is away, the keeper retries
                await self.publisher.redis.initialize()
                if self.publisher.shards is not None:
                    await self.publisher.shards.refresh()
        await self.subscriber.subscribe(self._node_channel)
        self.subscribed.set()
        self._keeping.spawn(self.keeper.run(), name="cluster-keeper")
        logger.info("Cluster node %s started", self.node)

    async def stop(self) -> None:
        # What is under way (the leaves of the members just closed, above all) gets a short
        # grace to reach the other nodes; then everything stops.
        await self._keeping.aclose()
        await self.census.close()  # what it had still to count is counted last, below
        await self._tasks.aclose(grace=REQUEST_TIMEOUT)
        await self.publisher.drain()
        # Leave the cluster politely if Redis lets us soon; else the lease runs out (and the
        # node that reaps this one counts the rooms it empties).
        with contextlib.suppress(Unavailable, TimeoutError):
            async with asyncio.timeout(STOP_SECONDS):
                await self.keeper.leave_cluster()
        with contextlib.suppress(Unavailable, TimeoutError):
            async with asyncio.timeout(STOP_SECONDS):
                await self.census.recount()
        for closing in (self.subscriber.close(), self.publisher.aclose()):
            with contextlib.suppress(*FAILURES):  # a connection that will not close: let go
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    await closing

    # ------------------------------------------------------------------ the rooms

    async def default_nick(self, room: str) -> str | None:
        """A `User<n>` nick free in `room` on every node; unchecked if Redis is away."""
        for _ in range(utils.DEFAULT_NICK_ATTEMPTS):
            nick = utils.free_default_nick(self.registry, room, attempts=1, rng=self.local.rng)
            if nick is None:
                continue
            try:
                if await self.claim(room, nick) is None:
                    return nick
            except Unavailable:
                return nick  # registered (and checked) once Redis is back
        return None

    async def enter(self, member: Member) -> None:
        await self.local.enter(member)
        self.members[member.socket] = member
        await self._serve(member.room)

    async def take(self, room: str, nick: str) -> Clash | None:
        """What keeps `nick` from `room` on any node; None if it was free (then it is this
        node's). Taken unchecked if Redis is away, as a default nick is."""
        if (clash := utils.clash(self.registry.get(room), nick)) is not None:
            return clash
        try:
            return await self.claim(room, nick)
        except Unavailable:
            return None  # registered (and checked) once Redis is back

    async def alike_room(self, room: str) -> str | None:
        """As `Rooms.alike_room`, on every node: the name of a room with members or history
        anywhere. Unchecked beyond this node if Redis is away (then a move fails anyway)."""
        if (existing := await self.local.alike_room(room)) is not None:
            return existing
        try:
            named = await self.publisher.script("name", [keys.name(room)], [room, NAMED_PENDING_MS])
        except Unavailable:
            return None
        return None if (existing := history.text(named)) == room else existing

    def leave(self, member: Member, left: bytes | None) -> bool:
        """As `Rooms.leave`: the room hears it on every node, or (None: `quiet`) on none."""
        room, nick, token = member.room, member.nick, member.token
        if not self.local.leave(member, left):
            self._unsized(room)
            return False
        self.members.pop(member.socket, None)
        self._unserve(room)
        self._tasks.spawn(self._forget(room, nick, left, token))
        return True

    def quiet(self, room: str) -> bool:
        """As `Rooms.quiet`, on all the nodes: the room's size is the length of its nicks hash
        as the last script of this node that claimed or released a nick there answered it
        (`keys.CLAIM`, `TAKE`, `REGISTER`, `RELEASE`: no round trip of its own), or this
        node's members there if more. Exact for this node's own arrivals (its claim comes
        first) and behind by what other nodes changed since this node's last change there,
        for at most a round of the keeper in a room this node finds quiet (`resize`)."""
        size = max(self.sizes.get(room, 0), len(self.registry.get(room, ())))
        return presence.quiet(size, self.announce_limit)

    async def resize(self) -> None:
        """Read again the size of each room this node finds quiet (the keeper, each round):
        the other nodes' departures there were unheard, so a room that shrank below the
        limit is announced again within a round (`quiet`). Only rooms that large are read."""
        limit = self.announce_limit
        rooms = [room for room, size in self.sizes.items() if presence.quiet(size, limit)]
        if not rooms:
            return
        batch = self.publisher.batch
        sizes = await asyncio.gather(*(batch(("HLEN", keys.nicks(room))) for room in rooms))
        for room, size in zip(rooms, sizes, strict=True):
            if room in self.sizes:
                self.sizes[room] = int(size)

    def _unsized(self, room: str) -> None:
        """`room`'s size is no longer kept if this node has no members there."""
        if room not in self.registry:
            self.sizes.pop(room, None)

    def sized(self, room: str, answer: Any) -> Any:
        """The outcome of a script that claimed or released a nick in `room`; the room's size
        it answered is kept for `quiet` (while this node has members there, or is entering)."""
        outcome, size = answer
        self.sizes[room] = int(size)
        self.rosters.changed(room)
        return outcome

    # ------------------------------------------------------------------ resuming

    async def issue_token(self, member: Member) -> str:
        """A new token, kept in Redis so that any node can honour it (`keys.py`)."""
        old, token = member.token, resume.new_token()
        member.token = token
        self._tasks.spawn(self._hold(member.room, member.nick, token, old))
        return token

    async def _hold(self, room: str, nick: str, token: str, old: str | None) -> None:
        redis_ = self.publisher.redis
        with contextlib.suppress(Unavailable):  # then it is not honoured: it enters anew
            if old is not None:
                await self.call(redis_.delete(keys.resume(old)))
            await self.call(redis_.hset(keys.holders(room), nick, token))
            record = keys.held(self.node, room, nick)
            await self.call(redis_.set(keys.resume(token), record, ex=HELD_SECONDS))

    async def resume(self, member: Member, token: str) -> Resumption | None:
        try:
            record = await self.call(self.publisher.redis.getdel(keys.resume(token)))
            if record is None:
                return None
            node, room, nick = keys.split_held(history.text(record))
            if node == self.node and nick in self.registry.get(room, ()):  # held here
                socket = self.registry[room][nick]
                if (old := self.members.get(socket)) is None or old.token != token:
                    return None
                member.room, member.nick = room, nick
                return Resumption(heard=False, replacing=old)
            index, entry = keys.members(self.node), keys.member(room, nick)
            await self.call(self.publisher.redis.sadd(index, entry))  # first: never unindexed
            args = [nick, token, self.node, protocol.skeleton(nick), room]
            taken = await self.publisher.script("take", keys.names(room), args)
            owner = history.text(self.sized(room, taken))
        except Unavailable:
            return None  # then it enters as it asked, without the token
        if owner == "-":  # someone else has the nick now
            self._unsized(room)
            with contextlib.suppress(Unavailable):
                await self.call(self.publisher.redis.srem(index, entry))
            return None
        member.room, member.nick = room, nick
        self.census.changed(room)
        if not owner:  # its connection had ended: the room hears it come back
            return Resumption(heard=True)
        if owner != self.node:  # that node closes its connection, unheard
            channel = keys.node_channel(owner)
            with contextlib.suppress(Unavailable):
                await self.publisher.publish_now(channel, keys.resumed_note(room, nick))
        return Resumption(heard=False)

    def replace(self, old: Member, new: Member) -> None:
        self.members.pop(old.socket, None)
        self.local.replace(old, new)
        self.members[new.socket] = new

    def _resumed_elsewhere(self, room: str, nick: str) -> None:
        """Another node took over our member `nick` in `room` with its token: close ours,
        unheard (the nick is that node's already)."""
        members = self.registry.get(room)
        socket = members.get(nick) if members is not None else None
        if socket is None:
            return
        member = self.members.pop(socket, None)
        utils.remove_member(self.registry, room, nick, socket)
        self._unserve(room)
        if member is not None:
            member.token = None
        socket.drop(Ending.RESUMED)

    async def rename(self, member: Member, new: str) -> None:
        room, old = member.room, member.nick
        if (clash := utils.clash(self.registry.get(room), new, own=old)) is not None:
            raise clash.refusal(protocol.SET_NICK)
        index = keys.members(self.node)
        await self.call(self.publisher.redis.sadd(index, keys.member(room, new)))
        args = [new, old, self.node, protocol.skeleton(new), protocol.skeleton(old), room]
        if clash := CLASHES.get(await self.publisher.script("rename", keys.names(room), args)):
            await self.call(self.publisher.redis.srem(index, keys.member(room, new)))
            raise clash.refusal(protocol.SET_NICK)
        self.rosters.changed(room)
        with contextlib.suppress(Unavailable):  # a stale index entry is harmless
            await self.call(self.publisher.redis.srem(index, keys.member(room, old)))
        await self.local.rename(member, new)

    async def move(self, member: Member, new: str) -> None:
        old, nick = member.room, member.nick
        clash = utils.clash(self.registry.get(new), nick) or await self.claim(new, nick)
        if clash is not None:
            raise clash.refusal(protocol.JOIN_ROOM)
        with contextlib.suppress(Unavailable):  # the keeper settles it once Redis is back
            await self.release(old, nick)
        await self.local.move(member, new)
        await self._serve(new)
        self._unserve(old)

    async def broadcast(self, room: str, payload: bytes, exclude: ChatSocket | None = None) -> None:
        await self.broadcast_elsewhere(room, payload)
        self.local.broadcast_here(room, payload, exclude)

    def broadcast_here(self, room: str, payload: bytes, exclude: ChatSocket | None = None) -> None:
        self.local.broadcast_here(room, payload, exclude)

    def chat(self, member: Member, text: str, stamp: str) -> Chat:
        """Add a chat message to the room's history and publish it: kept once Redis answers.

        The broadcast is serialized once, around the id Redis gives it (see `history.py`).
        """
        room, user = member.room, member.nick
        prefix, suffix = protocol.chat_broadcast_parts(text, user, stamp)
        self._epochs += 1
        length, ttl_ms = self._history
        args = [
            length, ttl_ms, f"{self.node[:8]}{self._epochs:x}", keys.room_channel(room),
            self._origin, prefix, suffix, user, text, stamp, self.publisher.publish_verb,
        ]  # fmt: skip
        command = self.publisher.evalsha("append", [keys.history(room), keys.epoch(room)], args)

        def finish(future: asyncio.Future[Any]) -> tuple[bytes, str]:
            id = history.text(self.publisher.outcome(future))
            return prefix + id.encode() + suffix, id

        # The sender's next message may follow before this one is kept only down the pipes
        # (a room's commands in order), and while Redis answers: in an outage each waits
        # its turn (and many are kept late, once Redis is back, rather than all refused).
        in_order = self.publisher.in_order and bool(self.stats.redis_up)
        return Chat(future=self.publisher.submit(command), finish=finish, in_order=in_order)

    async def users(self, room: str) -> list[str]:
        nicks = await self.call(self.publisher.redis.hkeys(keys.nicks(room)))
        return [history.text(nick) for nick in nicks]

    async def user_list(self, room: str, after: str | None) -> Message:
        """As `Rooms.user_list`: a big room's names as this node last changed them, or as
        the other nodes had them at most `ROSTER_SECONDS` ago."""
        return await self.rosters.answer(room, after)

    async def room_list(self) -> list[tuple[str, int]]:
        return await self.census.largest()

    async def read_history(
        self, room: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[Message], bool]:
        epoch, entry = history.split_stream_id(after)
        before_epoch, before_entry = history.split_stream_id(before)
        if before is not None and not before_entry:  # not one of ours: nothing is placed
            return [], False
        reply = await self.publisher.script(
            "read",
            [keys.history(room), keys.epoch(room)],
            [limit + 1, epoch, entry, before_epoch, before_entry],
        )
        return history.from_stream(reply, after, limit, before)

    # ------------------------------------------------------------------ Redis's part

    async def claim(self, room: str, nick: str) -> Clash | None:
        """Take `nick` in `room` for this node, unless another connection has it or one
        alike to it (what is answered then)."""
        index, entry = keys.members(self.node), keys.member(room, nick)
        await self.call(self.publisher.redis.sadd(index, entry))  # first: never unindexed
        args = [nick, protocol.skeleton(nick), self.node, room]
        answer = await self.publisher.script("claim", keys.names(room), args)
        clash = CLASHES.get(self.sized(room, answer))
        if clash is not None:
            self._unsized(room)
            with contextlib.suppress(Unavailable):
                await self.call(self.publisher.redis.srem(index, entry))
        else:
            self.census.changed(room)
        return clash

    async def release(self, room: str, nick: str, node: str | None = None) -> int | None:
        """Let go of `nick` in `room` if `node` (this one) holds it; if it did, the room's
        size at that departure (on all the nodes, counting the one gone), else None."""
        node = node or self.node
        args = [nick, node, protocol.skeleton(nick), room]
        answer = await self.publisher.script("release", keys.names(room), args)
        released, size = bool(self.sized(room, answer)), self.sizes[room] + 1
        self._unsized(room)
        self.census.changed(room)  # also if not: a node that died here may not have counted
        await self.call(self.publisher.redis.srem(keys.members(node), keys.member(room, nick)))
        return size if released else None

    async def _forget(self, room: str, nick: str, left: bytes | None, token: str | None) -> None:
        """Release a member that left, and tell the other nodes `left` (None: quiet)."""
        try:
            await self.release(room, nick)
        except Unavailable:  # the keeper releases it once Redis is back, then tells them
            if left is not None:
                self._unsent.append((room, left))
            return
        if left is not None:
            await self.broadcast_elsewhere(room, left)
        if token is not None:  # good for a while after the end (`resume.py`)
            record = keys.held(self.node, room, nick)
            with contextlib.suppress(Unavailable):
                ttl = int(resume.KEEP_SECONDS)
                await self.call(self.publisher.redis.set(keys.resume(token), record, ex=ttl))

    async def broadcast_elsewhere(self, room: str, payload: bytes) -> None:
        """Send `payload` to the other nodes' members of `room`: now, or once Redis is back
        (`publish_unsent`); after those Redis was away for, whatever happens, so that they
        reach the other nodes in order."""
        if self._unsent:
            self._unsent.append((room, payload))
            return
        try:
            await self._publish(room, payload)
        except Unavailable:
            self._unsent.append((room, payload))

    async def publish_unsent(self, *, superseded: bool) -> None:
        """Publish, in order, the broadcasts Redis was away for (the keeper, once it is
        back); drop them if `superseded` (this node's members were announced anew)."""
        while self._unsent and not superseded:
            room, payload = self._unsent[0]
            await self._publish(room, payload)
            self._unsent.popleft()
        self._unsent.clear()

    async def _publish(self, room: str, payload: bytes) -> None:
        """Send a serialized broadcast to the other nodes' members of `room`."""
        event = keys.event(self._origin, payload)
        await self.publisher.batch(self.publisher.publish(keys.room_channel(room), event))

    # ------------------------------------------------------------------ for the keeper

    async def check_links(self) -> None:
        """Check the subscriber's links to Redis (`Subscriber.check`)."""
        await self.subscriber.check()

    def hears_itself(self) -> bool:
        """Whether this node hears its own channel (first, before it registers anything)."""
        return self.subscriber.hears(self._node_channel)

    def holds(self, room: str, nick: str) -> bool:
        """Whether a member of this node is `nick` in `room`."""
        return nick in self.registry.get(room, ())

    def live_members(self) -> list[tuple[str, str]]:
        """(room, nick) of every member of this node."""
        return [(room, nick) for room, members in self.registry.items() for nick in members]

    # ------------------------------------------------------------------ hearing

    async def _serve(self, room: str) -> None:
        """Hear `room`'s channel while this node has members there; from where its log
        ends, read first (see `catchup.py`)."""
        if room not in self.registry:
            return
        if self.catchup.follow(room):
            log = [keys.history(room), keys.epoch(room)]
            with contextlib.suppress(Unavailable):  # then from the first message heard
                self.catchup.start_at(room, await self.publisher.script("tail", log, []))
            if room not in self.registry:  # its last member left meanwhile (`_unserve`)
                self.catchup.forget(room)
                return
        await self.subscriber.subscribe(keys.room_channel(room))

    def _unserve(self, room: str) -> None:
        if room not in self.registry:
            self.subscriber.unsubscribe(keys.room_channel(room))
            self.catchup.forget(room)
            self.sizes.pop(room, None)

    def _resubscribed(self, channel: str) -> None:
        room = keys.room_of_channel(channel.encode())
        if room is not None and room in self.registry:
            self.catchup.resubscribed(room)

    async def _fetch_missed(self, room: str, epoch: str, n: int) -> Any:
        log, most = [keys.history(room), keys.epoch(room)], max(self._history[0], 1)
        return await self.publisher.script("recover", log, [epoch, n, most])

    def _missed(self, room: str) -> None:
        """Messages of `room` could not be delivered here: its members are to catch up."""
        for socket in self.registry.get(room, {}).values():
            if (member := self.members.get(socket)) is not None:
                member.missed = room

    async def _locate(self, channel: str) -> Address:
        if not self.sharded:
            return self._address
        if (shards := self.publisher.shards) is not None:  # the batch's map of the shards
            try:
                return await shards.locate(channel)
            except FAILURES as exc:
                raise OSError(f"no Redis Cluster node for {channel}: {exc}") from None
        client = self.publisher.redis
        try:
            node = client.get_node_from_key(channel)
        except FAILURES:
            node = None
        if node is None:  # the client does not know the cluster's shards (yet, or any more)
            try:
                await client.initialize()
                node = client.get_node_from_key(channel)
            except FAILURES as exc:
                raise OSError(f"no Redis Cluster node for {channel}: {exc}") from None
        return node.host, node.port

    def _moved(self, error: Exception | None) -> None:
        """The subscriber found a channel elsewhere than the map says (`Subscriber.moved`)."""
        if (shards := self.publisher.shards) is None:
            return  # redis-py's map (over TLS) learns it by itself
        redirected = redirection(error) if error is not None else None
        if redirected is not None and redirected.address is not None:
            shards.moved(redirected.slot, redirected.address)
        else:
            shards.stale()

    def _heard(self, channel: bytes, data: bytes) -> None:
        room = keys.room_of_channel(channel)
        if room is None:  # our own channel: another node kept or resumed one of our members
            note = data.decode()
            if note.startswith(keys.SEP):
                self._resumed_elsewhere(*keys.split_member(note[1:]))
            else:
                self.displaced(*keys.split_member(note))
            return
        event = keys.split_event(data)
        if event[0] != self._origin:  # ours were delivered here when sent; they still count
            self.stats.redis_events += 1  # for the order (see `catchup.py`)
            if room not in self.registry:
                self.stats.redis_events_unserved += 1
                return
        self.catchup.heard(room, event)

    # ------------------------------------------------------------------ lost nicks

    def displaced(self, room: str, nick: str) -> None:
        """Another node keeps `nick` in `room`: rename our member, spawned (it needs Redis)."""
        members = self.registry.get(room)
        socket = members.get(nick) if members is not None else None
        if socket is not None:
            self._tasks.spawn(self._rename_displaced(socket, room, nick))

    async def _rename_displaced(self, socket: ChatSocket, room: str, nick: str) -> None:
        new = await self.default_nick(room)
        member = self.members.get(socket)
        if new is None or member is None or (member.room, member.nick) != (room, nick):
            return
        await self.local.rename(member, new)  # Redis has it already (default_nick claimed it)
        logger.info("Nick %s in %s kept by another node; renamed ours %s", nick, room, new)
        payload = protocol.encode(protocol.nick_changed(room, nick, new))
        member.socket.reply(payload)  # to it too
        await self.broadcast(room, payload, member.socket)
