"""The `scale` scenario: what a delivery costs the server as a room grows, and as rooms multiply.

Two sweeps of `fanout` points, each on a fresh server (and, for the Redis line, a fresh
`redis-server`): one room of each size in `sizes`, and each count of rooms in `room_counts`
at a fixed size. Every point has the same senders per room and window, so what changes is
only the room's size or the number of rooms. A point's clients must fit in the server's one
process (`MOST_CONNECTIONS`); below the server's `--announce-limit` each newcomer is
announced to all before it, so the clients are let in a bounded number at a time, with no
hurry (`OPEN_TIMEOUT`), and the measuring starts once the server has gone quiet after that.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Final

from . import runner
from .load import PROBES
from .runner import Figures, Setup

SIZES: Final = (10, 100, 1_000, 10_000)
ROOM_COUNTS: Final = (1, 4, 16, 64)
MODES: Final = ("alone", "redis")
# The machine allows a process 20,000 open files: the server holds every client of a point
# (and its listening socket, its logs...), and so does a generator with a room that big.
MOST_CONNECTIONS: Final = 18_000
OPEN_TIMEOUT: Final = 3600.0  # 10,000 entering a room announced to all: 50 million `joined`
# What each point reports of its `fanout` figures.
FIGURES: Final = (
    "deliveries_per_s",
    "server_cpu_s",
    "deliveries_per_server_cpu_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "messages_lost",
    "out_of_order",
    "server_rss_mib",
    "redis_cpu_us_per_delivery",
)

Value = float | int | str | None


@dataclass(frozen=True)
class Point:
    mode: str  # "alone", or "redis": the server on a Redis of its own
    sweep: str  # "members": one room of a size in `sizes`; "rooms": a count of rooms
    rooms: int
    members: int  # per room

    @property
    def connections(self) -> int:
        return self.rooms * self.members


def grid(
    sizes: tuple[int, ...], room_counts: tuple[int, ...], members: int, redis: bool
) -> list[Point]:
    """The points to measure: alone, and with `redis` on Redis too."""
    points = []
    for mode in MODES[: 2 if redis else 1]:
        points += [Point(mode, "members", 1, size) for size in sizes]
        points += [Point(mode, "rooms", count, members) for count in room_counts]
    return points


def too_big(points: list[Point]) -> str | None:
    """Why this grid cannot be measured on one server process, if it cannot."""
    for point in points:
        if point.members < 2:
            return "a room needs at least 2 members"
        if point.connections > MOST_CONNECTIONS:
            return (
                f"{point.rooms} x {point.members} is {point.connections:,} connections; "
                f"one server process holds at most {MOST_CONNECTIONS:,}"
            )
    return None


def senders(setup: Setup, members: int) -> int:
    """`setup.senders`, but leaving room for the members that measure latency."""
    return max(1, min(setup.senders, members - PROBES))


def measure(setup: Setup, point: Point, server_args: list[str], runs: int) -> dict[str, Value]:
    """One point: `fanout` on a fresh server `runs` times; the medians."""
    shape = replace(
        setup,
        rooms=point.rooms,
        members=point.members,
        senders=senders(setup, point.members),
        open_timeout=OPEN_TIMEOUT,
    )
    measured = []
    for _ in range(runs):
        with ExitStack() as stack:
            args = list(server_args)
            if point.mode == "redis":
                redis_url, redis_pids = stack.enter_context(runner.redis_process())
                args += ["--redis-url", redis_url]
                shape = replace(shape, redis_pids=redis_pids)
            url, pid = stack.enter_context(runner.server_process(args))
            measured.append(runner.fanout(replace(shape, urls=[url], server_pid=pid), settle=True))
    figures = runner.median_of(measured).values
    share = figures.get("server_cpu_share")
    figures["server_cpu_s"] = share * setup.duration if isinstance(share, float) else None
    described: dict[str, Value] = {
        "mode": point.mode,
        "sweep": point.sweep,
        "rooms": point.rooms,
        "members": point.members,
        "connections": point.connections,
        "senders_per_room": shape.senders,
    }
    return described | {key: figures.get(key) for key in FIGURES}


def sweep(setup: Setup, points: list[Point], server_args: list[str], runs: int) -> Figures:
    """Every point of the grid, in turn; its figures in `Figures.points`."""
    figures = Figures()
    for number, point in enumerate(points, 1):
        print(
            f"scale: point {number} of {len(points)}: {point.mode}, {point.rooms} room(s) "
            f"of {point.members:,}...",
            file=sys.stderr,
            flush=True,
        )
        figures.points.append(measure(setup, point, server_args, runs))
    lost = [p["messages_lost"] for p in figures.points]
    disordered = [p["out_of_order"] for p in figures.points]
    figures.values = {
        "points": len(figures.points),
        "messages_lost": sum(n for n in lost if isinstance(n, int | float)),
        "out_of_order": sum(n for n in disordered if isinstance(n, int | float)),
    }
    return figures
