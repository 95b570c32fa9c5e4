"""What the server counts, and how Prometheus reads it.

Nothing on the hot path touches `prometheus-client`: the work counts with plain integers in
one `Stats` object (one addition per broadcast, never per delivery), and a custom collector
turns those numbers into metric families when `/metrics` is scraped. The library adds the
process metrics (CPU, memory, file descriptors) of its own.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from . import protocol
from .endings import Ending

PREFIX: Final = "aiohttp_chat_"
ACTIONS: Final = frozenset(protocol.ACTIONS)
# Why connections ended, and why handshakes were refused: the label values, all of them.
DISCONNECTS: Final = tuple(ending.value for ending in Ending)
REFUSALS: Final = (
    *("origin", "per_address", "full", "room_changes"),
    *("pending_per_address", "pending_full"),  # before the request is read (handshakes.py)
)


class Readings(NamedTuple):
    """What the server can tell at scrape time."""

    connections: dict[str, int]  # open, by endpoint
    rooms: int  # with members here
    history_bytes: int | None = None  # the history in this process (None: it is in Redis)
    history_rooms: int | None = None


Gauges = Callable[[], Readings]
REDIS_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Histogram:
    """Observations counted into buckets with plain numbers; read at scrape time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets


class Stats:
    """The server's counters, kept where the work happens."""

    __slots__ = (
        "bad_requests",
        "chat_messages",
        "deliveries",
        "disconnects",
        "handshakes_refused",
        "handshakes_timed_out",
        "history_requests",
        "pings_refused",
        "redis_events",
        "redis_events_unserved",
        "redis_recovered",
        "redis_round_trips",
        "redis_unrecoverable",
        "redis_up",
        "requests",
    )

    def __init__(self) -> None:
        self.chat_messages = 0
        self.deliveries = 0
        self.history_requests = 0
        self.pings_refused = 0  # over the ping rate: not answered
        self.requests: Counter[tuple[str, str]] = Counter()  # (action, outcome)
        self.disconnects: Counter[str] = Counter()
        self.handshakes_refused: Counter[str] = Counter()
        self.handshakes_timed_out = 0  # no answered request within --handshake-timeout
        self.bad_requests = 0  # malformed HTTP, answered 400 by aiohttp
        self.redis_up: bool | None = None  # None: this server has no Redis
        self.redis_round_trips = Histogram(REDIS_BUCKETS)
        self.redis_events = 0  # broadcasts heard from other nodes
        self.redis_events_unserved = 0  # ... of rooms without a member here
        self.redis_recovered = 0  # chat messages missed on the subscription, read from the log
        self.redis_unrecoverable = 0  # gaps the log could not fill: members told to catch up

    def request(self, action: object, outcome: str) -> None:
        """One request answered `ok`, `refused` or `rate_limited`; unknown actions as `other`."""
        name = action if isinstance(action, str) and action in ACTIONS else "other"
        self.requests[name, outcome] += 1


class StatsCollector(Collector):
    """Reads `Stats` and the gauges the server can tell, at scrape time."""

    def __init__(self, stats: Stats, gauges: Gauges) -> None:
        self.stats = stats
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        readings = self.gauges()
        connections = GaugeMetricFamily(
            PREFIX + "connections", "Open WebSocket connections.", labels=["endpoint"]
        )
        for endpoint, count in readings.connections.items():
            connections.add_metric([endpoint], count)
        yield connections
        yield GaugeMetricFamily(PREFIX + "rooms", "Rooms with members here.", value=readings.rooms)
        if readings.history_bytes is not None:
            yield GaugeMetricFamily(
                PREFIX + "history_bytes",
                "Memory the history holds, as counted against --history-max-bytes.",
                value=readings.history_bytes,
            )
        if readings.history_rooms is not None:
            yield GaugeMetricFamily(
                PREFIX + "history_rooms",
                "Rooms whose history is kept.",
                value=readings.history_rooms,
            )
        yield CounterMetricFamily(
            PREFIX + "chat_messages", "Chat messages accepted.", value=stats.chat_messages
        )
        yield CounterMetricFamily(
            PREFIX + "deliveries", "Frames queued to recipients.", value=stats.deliveries
        )
        requests = CounterMetricFamily(
            PREFIX + "requests", "Requests answered, by action and outcome.",
            labels=["action", "outcome"],
        )  # fmt: skip
        for (action, outcome), count in sorted(stats.requests.items()):
            requests.add_metric([action, outcome], count)
        yield requests
        yield _by_reason(
            "disconnects", "Connections ended, by reason.", stats.disconnects, DISCONNECTS
        )
        yield _by_reason(
            "handshakes_refused",
            "WebSocket handshakes refused before the upgrade, by reason.",
            stats.handshakes_refused,
            REFUSALS,
        )
        yield CounterMetricFamily(
            PREFIX + "handshakes_timed_out",
            "Connections cut for not completing a request in time (or past their lifetime).",
            value=stats.handshakes_timed_out,
        )
        yield CounterMetricFamily(
            PREFIX + "bad_requests",
            "Malformed HTTP requests (answered 400).",
            value=stats.bad_requests,
        )
        yield CounterMetricFamily(
            PREFIX + "history_requests", "History requests answered.", value=stats.history_requests
        )
        yield CounterMetricFamily(
            PREFIX + "pings_refused",
            "Pings over the ping rate, left unanswered.",
            value=stats.pings_refused,
        )
        if stats.redis_up is not None:
            yield GaugeMetricFamily(
                PREFIX + "redis_up",
                "Whether Redis answers (1) or not (0).",
                value=int(stats.redis_up),
            )
            yield CounterMetricFamily(
                PREFIX + "redis_events",
                "Broadcasts heard from other nodes through Redis.",
                value=stats.redis_events,
            )
            yield CounterMetricFamily(
                PREFIX + "redis_events_unserved",
                "Broadcasts heard from other nodes for rooms without a member here.",
                value=stats.redis_events_unserved,
            )
            yield CounterMetricFamily(
                PREFIX + "redis_recovered",
                "Chat messages missed on the subscription and fetched from the room's log.",
                value=stats.redis_recovered,
            )
            yield CounterMetricFamily(
                PREFIX + "redis_unrecoverable",
                "Gaps in a room's messages the log could not fill (members told to catch up).",
                value=stats.redis_unrecoverable,
            )
            trips = stats.redis_round_trips
            yield HistogramMetricFamily(
                PREFIX + "redis_round_trip_seconds",
                "Round trips to Redis: the keeper's and each loop step's pipeline.",
                buckets=trips.cumulative(),
                sum_value=trips.total,
            )


def _by_reason(
    name: str, help: str, counts: Counter[str], reasons: tuple[str, ...]
) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, help, labels=["reason"])
    for reason in reasons:  # every reason, also at 0: a rate needs the series to exist
        family.add_metric([reason], counts[reason])
    return family


def registry(stats: Stats, gauges: Gauges) -> CollectorRegistry:
    """A registry of this server's metrics and the process metrics the library gives."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats, gauges))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
