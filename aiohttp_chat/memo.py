"""An answer worth giving to many askers: fetched at most once per `seconds`, and shared.

`room_list` walks every room (or asks Redis); a crowd asking at once, or one client asking
ten times a second from each of its connections, gets the answer of the last second instead,
and those who ask while it is being fetched wait for that one fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self.seconds, self._clock = fetch, seconds, clock
        self._value: tuple[float, T] | None = None  # when fetched, and what
        self._fetching: asyncio.Task[T] | None = None

    async def __call__(self) -> T:
        if self._value is not None and self._clock() - self._value[0] < self.seconds:
            return self._value[1]
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch_now())
        # Shielded: an asker that gives up does not cancel the fetch the others wait for.
        return await asyncio.shield(self._fetching)

    async def _fetch_now(self) -> T:
        try:
            fetched = self._clock(), await self._fetch()
        finally:
            self._fetching = None
        self._value = fetched
        return fetched[1]
