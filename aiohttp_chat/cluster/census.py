"""The census: how many members each room has on all the nodes, kept in Redis for `room_list`.

`keys.ROOMS` is a sorted set of room -> minus its member count, so that the largest rooms are
read in one round trip, without a scan of keys, in the order `room_list` gives them: Redis
orders the members of one score by their bytes, which for UTF-8 is the order of the names'
code points, Python's. A room's count is the length of its nicks hash, which the scripts that
claim and release nicks keep exact. Those scripts run on the room's own shard and the set
lives on one shard for all the rooms, so no script can change both: the count is written
after the change, by the node that made it.

Counts are written whole, never as increments, so no failure leaves a drift that outlives
it. Whenever this node changes a room's members (a claim, a release, a resumption, a
re-registration, a reaping) it counts the room and writes the count at once, and once more
`SETTLE_SECONDS` later: two nodes that change one room together may write their counts in
the wrong order, and the later count puts it right. A count that failed (Redis away, or too
slow to answer) is made again at the keeper's next round (`recount`). Whatever else leaves a
count wrong (a node that died between its change and its count, in a room no later change
visits) lasts at most `CHECK_SECONDS`: every node counts the rooms listed again that often
(`check`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from .. import protocol
from ..history import text
from ..memo import Memo
from ..protocol import Unavailable
from ..tasks import Tasks
from . import keys
from .publisher import Publisher

SETTLE_SECONDS: Final = 2.0
CHECK_SECONDS: Final = 30.0
LARGEST_FOR_SECONDS: Final = 1.0  # a `room_list` answer is that old at most (`memo.py`)


class Census:
    def __init__(
        self,
        publisher: Publisher,
        settle: float = SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher, self.settle, self._clock = publisher, settle, clock
        self._following: dict[str, bool] = {}  # rooms being counted -> changed since
        self._tasks = Tasks()
        self.unsettled: set[str] = set()  # rooms whose count failed
        self._closed = False
        self.check_every, self._checked = CHECK_SECONDS, clock()
        # This node's changes are told; the others' show within a second.
        self.largest = Memo(self._read_largest, LARGEST_FOR_SECONDS, clock=clock)

    def changed(self, room: str) -> None:
        """This node changed the members of `room`: count it, now and once settled."""
        if self._closed:
            self.unsettled.add(room)
        elif room in self._following:
            self._following[room] = True
        else:
            self._following[room] = False
            self._tasks.spawn(self._follow(room))

    async def _read_largest(self) -> list[tuple[str, int]]:
        """The rooms with members on any node, as `room_list` answers them."""
        redis = self._publisher.redis
        top = protocol.ROOM_LIST_MAX - 1
        counts = await self._publisher.call(redis.zrange(keys.ROOMS, 0, top, withscores=True))
        return protocol.largest_rooms((text(room), -int(score)) for room, score in counts)

    async def count(self, room: str) -> None:
        """Write the member count of `room` as the nicks it holds say."""
        call, redis = self._publisher.call, self._publisher.redis
        if n := await call(redis.hlen(keys.nicks(room))):
            await call(redis.zadd(keys.ROOMS, {room: -n}))
        else:
            await call(redis.zrem(keys.ROOMS, room))
        self.largest.changed()

    async def recount(self) -> None:
        """Count the rooms whose count failed (the keeper, each round Redis answers)."""
        while self.unsettled:
            room = self.unsettled.pop()
            try:
                await self.count(room)
            except Unavailable:
                self.unsettled.add(room)
                raise

    async def check(self) -> None:
        """Count the rooms listed again, if that was last done `check_every` seconds ago."""
        if self._clock() - self._checked < self.check_every:
            return
        self._checked = self._clock()
        for room, _ in await self._read_largest():
            await self.count(room)

    async def close(self) -> None:
        """From now on, a change is only noted, for a last `recount` (the node is stopping);
        what was being followed is noted so too."""
        self._closed = True
        await self._tasks.aclose()

    async def _follow(self, room: str) -> None:
        try:
            while True:
                self._following[room] = False
                await self.count(room)
                await asyncio.sleep(self.settle)
                if self._following[room]:  # changed again meanwhile: count, then settle
                    continue
                await self.count(room)
                if not self._following[room]:
                    return
        except Unavailable:
            self.unsettled.add(room)
        except asyncio.CancelledError:  # the node is stopping: counted once more (`close`)
            self.unsettled.add(room)
            raise
        finally:
            self._following.pop(room, None)
