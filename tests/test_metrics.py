"""What the server counts (`metrics.Stats`) and what Prometheus reads of it: the collector's
families and label values, in the text format, parsed by prometheus_client.

`test_probes.py` follows a session through /metrics on a real server; here is what the
collector shows for given counts, every series and label value of it.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from aiohttp_chat import metrics
from aiohttp_chat.metrics import DISCONNECTS, REDIS_BUCKETS, REFUSALS, Histogram, Readings, Stats

from .support.prometheus import Samples, parse, value

QUIET = Readings({"chat": 0, "echo": 0}, rooms=0)


def scraped(stats: Stats, readings: Readings = QUIET) -> Samples:
    """What /metrics shows of `stats` and `readings`, as Prometheus parses it."""
    return parse(generate_latest(metrics.registry(stats, lambda: readings)).decode())


def ours(samples: Samples) -> set[str]:
    """The names of this server's samples (not the library's process metrics)."""
    return {name for name, _ in samples if name.startswith(metrics.PREFIX)}


def label_values(samples: Samples, name: str, label: str) -> list[str]:
    """The values `label` takes in the samples of `name`, in the order shown."""
    return [dict(pairs)[label] for sample, pairs in samples if sample == metrics.PREFIX + name]


# ------------------------------------------------------------------------ Stats


@pytest.mark.parametrize("action", sorted(metrics.ACTIONS))
def test_a_request_is_counted_under_its_action_and_outcome(action: str) -> None:
    stats = Stats()
    for outcome in ("ok", "ok", "refused", "rate_limited"):
        stats.request(action, outcome)
    assert stats.requests == {
        (action, "ok"): 2,
        (action, "refused"): 1,
        (action, "rate_limited"): 1,
    }


@pytest.mark.parametrize("action", [None, "shout", "connecting", "", 5, ["set_nick"], {"a": 1}])
def test_any_other_action_is_counted_as_other(action: object) -> None:
    """Only known names become label values: what a client sends adds no series."""
    stats = Stats()
    stats.request(action, "refused")
    assert stats.requests == {("other", "refused"): 1}


def test_a_value_on_a_bound_falls_in_that_bounds_bucket() -> None:
    """Prometheus's buckets are `le`, at most the bound, and cumulative up to +Inf."""
    histogram = Histogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0):
        histogram.observe(seconds)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 4), ("+Inf", 5)]
    assert histogram.total == pytest.approx(4.65)


# ------------------------------------------------------------------------ the collector


def test_without_redis_every_series_is_shown_from_zero_and_none_of_redis() -> None:
    samples = scraped(Stats())
    assert ours(samples) == {
        metrics.PREFIX + name
        for name in (
            "connections",
            "rooms",
            "chat_messages_total",
            "deliveries_total",
            "disconnects_total",
            "handshakes_refused_total",
            "handshakes_timed_out_total",
            "bad_requests_total",
            "history_requests_total",
            "pings_refused_total",
        )
    }  # requests_total has a series per action and outcome seen: none yet
    assert {count for (name, _), count in samples.items() if name.startswith(metrics.PREFIX)} == {0}


def test_every_reason_is_a_series_from_the_start_and_only_those() -> None:
    stats = Stats()
    stats.disconnects["polite"] += 2
    stats.disconnects["not a reason"] += 1  # counted somewhere by mistake: never a series
    stats.handshakes_refused["origin"] += 3
    samples = scraped(stats)
    assert label_values(samples, "disconnects_total", "reason") == list(DISCONNECTS)
    assert label_values(samples, "handshakes_refused_total", "reason") == list(REFUSALS)
    for reason in DISCONNECTS:
        assert value(samples, "disconnects_total", reason=reason) == {"polite": 2}.get(reason, 0)
    for reason in REFUSALS:
        refused = value(samples, "handshakes_refused_total", reason=reason)
        assert refused == {"origin": 3}.get(reason, 0)


def test_each_counter_shows_its_own_count() -> None:
    stats = Stats()
    counters = {
        "chat_messages": "chat_messages_total",
        "deliveries": "deliveries_total",
        "history_requests": "history_requests_total",
        "pings_refused": "pings_refused_total",
        "handshakes_timed_out": "handshakes_timed_out_total",
        "bad_requests": "bad_requests_total",
        "redis_events": "redis_events_total",
        "redis_events_unserved": "redis_events_unserved_total",
        "redis_recovered": "redis_recovered_total",
        "redis_unrecoverable": "redis_unrecoverable_total",
    }
    for count, field in enumerate(counters, start=1):
        setattr(stats, field, count)
    stats.redis_up = True
    stats.request("chat_message", "ok")
    stats.request("join_room", "rate_limited")
    stats.request("dance", "refused")
    samples = scraped(stats)
    for count, name in enumerate(counters.values(), start=1):
        assert value(samples, name) == count, name
    requests = metrics.PREFIX + "requests_total"
    assert {pairs: count for (name, pairs), count in samples.items() if name == requests} == {
        (("action", "chat_message"), ("outcome", "ok")): 1,
        (("action", "join_room"), ("outcome", "rate_limited")): 1,
        (("action", "other"), ("outcome", "refused")): 1,
    }


def test_the_readings_are_gauges_and_the_history_shown_only_where_it_is_held() -> None:
    here = Readings({"chat": 3, "echo": 1}, rooms=2, history_bytes=1234, history_rooms=1)
    samples = scraped(Stats(), here)
    assert label_values(samples, "connections", "endpoint") == ["chat", "echo"]
    assert value(samples, "connections", endpoint="chat") == 3
    assert value(samples, "connections", endpoint="echo") == 1
    assert value(samples, "rooms") == 2
    assert (value(samples, "history_bytes"), value(samples, "history_rooms")) == (1234, 1)
    in_redis = scraped(Stats(), Readings({"chat": 3, "echo": 1}, rooms=2))
    assert not {"history_bytes", "history_rooms"} & {
        name.removeprefix(metrics.PREFIX) for name in ours(in_redis)
    }


@pytest.mark.parametrize("up", [False, True])
def test_with_redis_it_is_up_or_down_and_its_round_trips_a_histogram(up: bool) -> None:
    stats = Stats()
    stats.redis_up = up
    for seconds in (0.0004, 0.001, 0.3, 2.0):
        stats.redis_round_trips.observe(seconds)
    samples = scraped(stats)
    assert value(samples, "redis_up") == int(up)
    name = "redis_round_trip_seconds_bucket"
    assert label_values(samples, name, "le") == [*map(str, REDIS_BUCKETS), "+Inf"]
    assert value(samples, name, le="0.0005") == 1
    assert value(samples, name, le="0.001") == 2
    assert value(samples, name, le="0.25") == 2
    assert value(samples, name, le="1.0") == 3
    assert value(samples, name, le="+Inf") == 4
    assert value(samples, "redis_round_trip_seconds_count") == 4
    assert value(samples, "redis_round_trip_seconds_sum") == pytest.approx(2.3014)
