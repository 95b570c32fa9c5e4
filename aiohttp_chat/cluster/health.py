"""Whether Redis answers, as this node knows it: the one place that says so.

Every command that fails marks it down (the publisher calls `failed`); the keeper's lease
renewal marks it up again (`answered`). It writes what it knows to `Stats.redis_up`, which
/healthz and the `redis_up` metric read, and nothing else writes. Beside that, two facts the
keeper acts on: `lost`, that Redis may have lost what this node holds (a failure since the
keeper last registered it all), and `steady`, that nothing failed for a while.
"""

from __future__ import annotations

import time

from ..metrics import Stats


class Health:
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        stats.redis_up = False  # until the keeper hears from it
        self.lost = True  # a new node holds nothing in Redis yet
        self._failed_at = time.monotonic()  # the last failure (a new node counts as one)

    def failed(self) -> None:
        """A command failed: Redis is down, and may lose (or have lost) what it held."""
        self.lost, self._failed_at = True, time.monotonic()
        self.stats.redis_up = False

    def answered(self) -> None:
        """The keeper's lease renewal came back: Redis is up."""
        self.stats.redis_up = True

    def registering(self) -> None:
        """The keeper registers everything anew: only a failure from now on loses it again."""
        self.lost = False

    def steady(self, seconds: float) -> bool:
        """Whether no command failed for `seconds`."""
        return time.monotonic() - self._failed_at >= seconds
