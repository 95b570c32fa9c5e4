"""The keeper: this node's lease, its members' registration, and the reaping of dead nodes.

Every `RENEW_SECONDS` it renews the node's lease, re-registers every live member when Redis
lost them (it restarted, even empty), removes the members of nodes whose lease expired
(telling their rooms they left, `shame: true`), and checks the subscriber's links.

A node reaps another only once it has itself reached Redis without a failure for a whole
lease: when Redis stalls, every lease runs out at once, and a node that judged the others
by that would report as gone people who never left. A node that was reaped (its lease
really ran out while it could not reach Redis) finds the mark its reaper left, and tells the
rooms again that its members are there (`joined`). A room that is quiet (`presence.quiet`,
its size as the script that released or registered the member answered it) hears neither
the reaped `left` nor the `joined` again. Broadcasts it could not publish while
Redis was away (joins, leaves, nick changes) are published once it is back, in order.

Nick conflicts that arose while Redis was away are settled by one rule: the node whose id
sorts first keeps the nick; the other renames its member to a fresh `User<n>` and tells it
and its room with `nick_changed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final

from .. import history, presence, protocol
from ..protocol import Unavailable
from . import keys
from .health import Health
from .publisher import Publisher

if TYPE_CHECKING:
    from . import ClusterRooms

logger = logging.getLogger(__name__)

LEASE_SECONDS: Final = 10.0
RENEW_SECONDS: Final = 2.0  # also how often dead nodes are looked for
UNREACHABLE_SAID_EVERY: Final = 60.0  # seconds between warnings while Redis stays away
REAPED_MARK_SECONDS: Final = 7 * 24 * 3600  # a node cut off for longer is not coming back


class Keeper:
    """Keeps `rooms` (this node's) registered through `publisher`, and tells `health` when
    Redis answers."""

    def __init__(self, rooms: ClusterRooms, publisher: Publisher, health: Health) -> None:
        self.rooms, self.publisher, self.health = rooms, publisher, health
        self.node = rooms.node
        self.redis = publisher.redis
        self.call = publisher.call
        self._said_unreachable: float | None = None  # when, while it stays away

    async def run(self) -> None:
        me = asyncio.current_task()
        while True:
            # The links first: a node hears its own channel before it registers anything, so
            # that a node taking one of its nicks afterwards can tell it.
            try:
                await self.rooms.check_links()
                await self.keep()
            except Unavailable:
                self._unreachable()  # again in a moment
            except Exception:  # a bug: say so, and keep the node alive
                logger.exception("The keeper's round failed")
            else:
                if self._said_unreachable is not None:
                    self._said_unreachable = None
                    logger.warning("Redis at %s answers again", self.rooms.url_shown)
            if me is not None and me.cancelling():  # a cancel a Redis client took for a failure
                raise asyncio.CancelledError
            await asyncio.sleep(RENEW_SECONDS)

    def _unreachable(self) -> None:
        """Say that Redis is away: at once, then once a minute while it stays away (the
        requests that fail meanwhile are answered, not logged)."""
        now = time.monotonic()
        said = self._said_unreachable
        if said is None or now - said >= UNREACHABLE_SAID_EVERY:
            self._said_unreachable = now
            logger.warning("Redis at %s is unreachable: requests that need it are refused "
                           "until it answers", self.rooms.url_shown)  # fmt: skip

    async def keep(self) -> None:
        lease = keys.lease(self.node)
        renewed = await self.call(self.redis.set(lease, "1", px=int(LEASE_SECONDS * 1000), xx=True))
        self.health.answered()
        if not renewed or self.health.lost:
            if not self.rooms.hears_itself():
                return  # next time
            await self.register_all()
        await self.rooms.census.recount()  # what a failure kept from being counted
        await self.rooms.resize()  # a quiet room that shrank elsewhere is heard again
        if self.health.steady(LEASE_SECONDS):
            await self.reap()  # only on the strength of a lease of our own without a failure
            await self.rooms.census.check()

    # ------------------------------------------------------------------ registering

    async def register_all(self) -> None:
        self.health.registering()
        await self.call(self.redis.set(keys.lease(self.node), "1", px=int(LEASE_SECONDS * 1000)))
        await self.call(self.redis.sadd(keys.NODES, self.node))
        reaped = bool(await self.call(self.redis.get(keys.reaped(self.node))))
        await self.rooms.publish_unsent(superseded=reaped)  # first: it happened before
        index = keys.members(self.node)
        for stale in map(history.text, await self.call(self.redis.smembers(index))):
            room, nick = keys.split_member(stale)
            if not self.rooms.holds(room, nick):  # left while Redis was away
                await self.rooms.release(room, nick)
        live = self.rooms.live_members()
        for room, nick in live:
            if not self.rooms.holds(room, nick):  # moved on meanwhile: already registered
                continue
            await self.call(self.redis.sadd(index, keys.member(room, nick)))
            args = [nick, self.node, protocol.skeleton(nick), room]
            answer = await self.publisher.script("register", keys.names(room), args)
            outcome, size = history.text(self.rooms.sized(room, answer)), self.rooms.sizes[room]
            if outcome == "-":
                self.rooms.displaced(room, nick)
                continue
            self.rooms.census.changed(room)
            if outcome:  # we took it from node `outcome`: tell that node
                notice = keys.member(room, nick).encode()
                channel = keys.node_channel(outcome)
                await self.publisher.publish_now(channel, notice)
            # The other nodes' members heard it leave, unless the room was quiet: it is
            # announced by the same rule, its size as Redis has it (this node's members
            # are not all registered yet).
            if reaped and not presence.quiet(size, self.rooms.announce_limit):
                joined = protocol.encode(protocol.joined(room, nick))
                await self.rooms.broadcast_elsewhere(room, joined)
        if reaped:  # all told: the mark goes (kept if Redis failed before, to tell them all)
            await self.call(self.redis.delete(keys.reaped(self.node)))
            logger.warning("This node was reaped while it could not reach Redis: told the "
                           "rooms again that its %d member(s) are here", len(live))  # fmt: skip
        logger.info("Registered %d member(s) in Redis", len(live))

    # ------------------------------------------------------------------ reaping

    async def reap(self) -> None:
        for node in map(history.text, await self.call(self.redis.smembers(keys.NODES))):
            if node == self.node or await self.call(self.redis.exists(keys.lease(node))):
                continue
            if not await self.call(self.redis.srem(keys.NODES, node)):
                continue  # another node reaps it
            # Marked first: if this node fails before the end, that one still announces all.
            await self.call(self.redis.set(keys.reaped(node), "1", ex=REAPED_MARK_SECONDS))
            index = keys.members(node)
            gone: list[tuple[str, str]] = []
            heard: list[tuple[str, str]] = []  # those whose room was not quiet (`presence`)
            for entry in map(history.text, await self.call(self.redis.smembers(index))):
                room, nick = keys.split_member(entry)
                if (size := await self.rooms.release(room, nick, node)) is not None:
                    gone.append((room, nick))
                    if not presence.quiet(size, self.rooms.announce_limit):
                        heard.append((room, nick))
            await self.call(self.redis.delete(index))
            logger.info("Node %s is gone: removing its %d member(s)", node, len(gone))
            for room, nick in heard:
                await self.rooms.broadcast(
                    room, protocol.encode(protocol.left(room, nick, shame=True))
                )

    async def leave_cluster(self) -> None:
        """Release every member of this node and its lease (the node is stopping)."""
        index = keys.members(self.node)
        for entry in map(history.text, await self.call(self.redis.smembers(index))):
            await self.rooms.release(*keys.split_member(entry))
        await self.call(self.redis.delete(keys.lease(self.node)))
        await self.call(self.redis.delete(index))
        await self.call(self.redis.srem(keys.NODES, self.node))
