"""An answer worth giving to many askers: fetched again only when it may have changed, at
most once per `floor`, and shared.

`room_list` walks every room (or asks Redis). A crowd asking at once, or one client asking ten
times a second from each of its connections, gets the answer already fetched while nothing
changed (`changed` says when something did; `seconds` bounds how old an answer may be when
not every change is told, as those of other nodes); and those who ask while it is being fetched
wait for that one fetch. After a change an answer is never stale: it waits at most `floor`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        seconds: float = math.inf,
        floor: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self.seconds, self.floor, self._clock = fetch, seconds, floor, clock
        self._value: tuple[float, T] | None = None  # when fetched, and what
        self._changed = False  # since it was fetched
        self._fetching: asyncio.Task[T] | None = None

    def changed(self) -> None:
        """What the answer depends on changed: the next asker gets it fetched anew."""
        self._changed = True

    async def __call__(self) -> T:
        value = self._value
        if value is not None and not self._changed and self._clock() - value[0] < self.seconds:
            return value[1]
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch_now())
        # Shielded: an asker that gives up does not cancel the fetch the others wait for.
        return await asyncio.shield(self._fetching)

    async def _fetch_now(self) -> T:
        try:
            if (
                self._value is not None
                and (wait := self._value[0] + self.floor - self._clock()) > 0
            ):
                await asyncio.sleep(wait)
            self._changed = False  # a change from here on is after this fetch
            fetched = self._clock(), await self._fetch()
        finally:
            self._fetching = None
        self._value = fetched
        return fetched[1]
