"""`python -m aiohttp_chat.bench`: measure the chat server with real WebSocket clients.

Starts its own server process on a free port (or targets `--url`), drives it from separate
generator processes, and prints a table (or JSON) of the medians over `--runs` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from typing import Any

from . import attacks, plot, reconnect, runner, scale
from .runner import Figures, Setup

# The load comes from one address and as fast as it can: the server's limits are turned off
# the documented way. The `limits` scenario turns each one on instead, set too high to be hit,
# to show what checking them costs.
LIMITS_OFF = (
    *("--rate-limit", "0", "--max-connections", "0", "--max-connections-per-ip", "0"),
    *("--room-changes", "0", "--max-pending-per-ip", "0"),
)
LIMITS_OUT_OF_REACH = (
    *("--rate-limit", "1000000", "--rate-burst", "1000000"),
    *("--max-connections", "1000000", "--max-connections-per-ip", "1000000"),
    *("--room-changes", "100000000", "--max-pending-per-ip", "1000000"),
    *("--allowed-origin", "https://bench.invalid"),
)

DEFAULT_SCENARIOS = ("fanout", "latency", "slow", "limits", "scraped", "idle")  # idle grows it
# One attacker beside polite clients, on a server with its default limits (see attacks.py);
# history-rooms alone, on servers that let it write, with their history capped or off.
ATTACKS = tuple(name for name in attacks.ATTACKS if name != "history-rooms")
HISTORY_CAP = 5_000_000
HISTORY_ATTACKED = ("--rate-limit", "0", "--room-changes", "0")
SCENARIOS = (*DEFAULT_SCENARIOS, "rooms", *ATTACKS, "history-rooms", "scale", "reconnect")
IDLE_CONNECTIONS, RECONNECT_CONNECTIONS = 15_000, 2_000  # --connections, by scenario
SIMPLE: dict[str, Callable[[Setup], Figures]] = {
    "fanout": runner.fanout,
    "limits": runner.fanout,  # the same load, on a server with every limit on (see below)
    "scraped": partial(runner.fanout, scrape=True),  # the same, /metrics read every second
    "idle": runner.idle,
    "slow": runner.slow,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiohttp_chat.bench",
        description="Benchmark the chat server: fan-out throughput and CPU cost, latency at a "
        "fixed rate, a stuck client, fan-out with every limit checked (but out of reach), "
        "fan-out while /metrics is scraped every second, and idle connections; on request, "
        "the cost as rooms grow and multiply (scale, drawn in a PNG) and members coming "
        "back after a restart (reconnect).",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"{', '.join(SCENARIOS)} (default: {', '.join(DEFAULT_SCENARIOS)}); "
        f"{', '.join(ATTACKS)} run polite clients alone, then beside that attacker",
    )
    add = parser.add_argument
    add("--url", action="append", help="target this server (repeat to spread clients)")
    add("--server-pid", type=int, help="pid of the --url server, to read its CPU and memory")
    add("--compare", metavar="URL", help="run each scenario against this server too; print ratios")
    add("--compare-pid", type=int, help="pid of the --compare server, to read its CPU and memory")
    add("--server-arg", action="append", default=[], help="extra option for the started server")
    add("--redis", action="store_true",
        help="start a Redis too and run the server on it (scale: also, beside alone)")  # fmt: skip
    add("--redis-cluster", action="store_true", help="rooms: the nodes share a Redis Cluster")
    add("--workers", type=int, default=1, help="server processes (with a Redis; default: 1)")
    add("--rooms", type=int, default=4, help="fanout: rooms (default: 4)")
    add("--members", type=int, default=50, help="fanout: members per room (default: 50)")
    add("--senders", type=int, default=5, help="fanout: senders per room (default: 5)")
    add("--window", type=int, default=8, help="fanout: unacknowledged sends each (default: 8)")
    add("--duration", type=float, default=10.0, help="seconds measured (default: 10)")
    add("--warmup", type=float, default=2.0, help="seconds before measuring (default: 2)")
    add("--rate", type=float, help="latency: messages/s (default: half of fanout's rate)")
    add("--idle-seconds", type=float, default=65.0,
        help="idle: seconds all sit idle while the server's CPU is read (default: 65, "
        "one heartbeat and more)")  # fmt: skip
    add("--connections", type=_positive, help="idle, reconnect: connections (default: 15000, 2000)")
    add(
        "--room-size", type=_positive, default=100, help="idle, reconnect: room size (default: 100)"
    )
    add("--sizes", type=_counts, default=scale.SIZES, metavar="N,N,...",
        help="scale: members of the one room, in turn (default: 10,100,1000,10000)")  # fmt: skip
    add("--room-counts", type=_counts, default=scale.ROOM_COUNTS, metavar="N,N,...",
        help="scale: rooms of --members each, in turn (default: 1,4,16,64)")  # fmt: skip
    add("--plot", default="scale.png", metavar="PATH",
        help="scale: draw the points in this PNG ('' for none; default: scale.png)")  # fmt: skip
    add("--processes", type=int, default=1, help="generator processes (default: 1)")
    add("--runs", type=int, default=1, help="repeat each scenario; report medians (default: 1)")
    add("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _positive(text: str) -> int:
    """A whole number above 0."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _counts(text: str) -> tuple[int, ...]:
    """`10,100,1000`: positive whole numbers, comma-separated."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"not a list of positive numbers: {text!r}")
    return counts


def run(args: argparse.Namespace, setup: Setup) -> dict[str, Figures]:
    """Each scenario `--runs` times; a fresh server for each run unless `--url` names one.

    With `--compare`, each run is also made against that server, alternating which goes
    first, and the ratios of the medians (this / compare) are added."""
    results: dict[str, Figures] = {}
    other = replace(setup, urls=[args.compare or ""], server_pid=args.compare_pid)
    for name in args.scenarios or DEFAULT_SCENARIOS:
        runs, compared = [], []
        repeats = 1 if name in REPEATS_ITSELF else args.runs
        for index in range(repeats):
            print(f"{name}: run {index + 1} of {repeats}...", file=sys.stderr, flush=True)
            if name in OWN_SERVERS:
                runs.append(OWN_SERVERS[name](args, setup))
                continue
            if args.compare and index % 2 == 0:
                compared.append(_scenario(name, args, other, results)())
            runs.append(_one_run(name, args, setup, results))
            if args.compare and index % 2 == 1:
                compared.append(_scenario(name, args, other, results)())
        results[name] = runner.median_of(runs)
        if compared:
            results[f"{name} on {args.compare}"] = runner.median_of(compared)
            results[f"{name}: ratio, this / {args.compare}"] = runner.ratios(
                results[name], results[f"{name} on {args.compare}"]
            )
    return results


def _one_run(
    name: str, args: argparse.Namespace, setup: Setup, results: dict[str, Figures]
) -> Figures:
    """One run of scenario `name`, on a fresh server unless `--url` names one."""
    with ExitStack() as stack:
        log = None
        if not args.url:
            server_args = [*_limits(name), *args.server_arg]
            if args.redis or args.workers > 1:
                redis_url, redis_pids = stack.enter_context(runner.redis_process())
                server_args += ["--redis-url", redis_url, "--workers", str(args.workers)]
                setup = replace(setup, redis_pids=redis_pids)
            if name in ATTACKS:  # how much it makes the server write
                log = stack.enter_context(tempfile.TemporaryFile())
            url, pid = stack.enter_context(runner.server_process(server_args, log))
            setup = replace(setup, urls=[url], server_pid=pid)
        return _scenario(name, args, setup, results, log)()


def _limits(name: str) -> tuple[str, ...]:
    """The server's limits for scenario `name` (see LIMITS_OFF)."""
    if name == "limits":
        return LIMITS_OUT_OF_REACH
    return () if name in ATTACKS else LIMITS_OFF  # an attacker meets them as deployed


def rooms(args: argparse.Namespace, setup: Setup) -> Figures:
    """Many rooms over two nodes sharing a Redis (started here), against one lone server.

    8x the rooms of `fanout`, half its members each. `affinity`: each room's members on one
    node, as a load balancer with room affinity places them; `mixed`: every room's members
    split over both nodes. Figures per delivery count every node's CPU."""
    setup = replace(setup, rooms=setup.rooms * 8, members=max(2, setup.members // 2))
    cluster = ["--redis-cluster"] if args.redis_cluster else []
    figures = Figures()
    with runner.server_process([*LIMITS_OFF, *args.server_arg]) as (url, pid):
        lone = runner.fanout(replace(setup, urls=[url], server_pid=pid))
    cost = lone.values["deliveries_per_server_cpu_s"]
    figures.values["lone_deliveries_per_server_cpu_s"] = cost
    for placement in ("affinity", "mixed"):
        with ExitStack() as stack:
            redis_url, redis_pids = stack.enter_context(runner.redis_process(args.redis_cluster))
            node_args = [*LIMITS_OFF, *args.server_arg, "--redis-url", redis_url, *cluster]
            nodes = [stack.enter_context(runner.server_process(node_args)) for _ in range(2)]
            urls = [url for url, _ in nodes]
            two = runner.fanout(
                replace(
                    setup,
                    urls=urls,
                    server_pid=nodes[0][1],
                    more_server_pids=(nodes[1][1],),
                    redis_pids=redis_pids,
                    affinity=placement == "affinity",
                )
            )
            unserved = sum(runner.unserved_events(url) for url in urls)
        per_cpu = two.values["deliveries_per_server_cpu_s"]
        figures.values |= {
            f"{placement}_deliveries_per_s": two.values["deliveries_per_s"],
            f"{placement}_deliveries_per_server_cpu_s": per_cpu,
            f"{placement}_cpu_per_delivery_vs_lone": (
                cost / per_cpu if isinstance(cost, float) and isinstance(per_cpu, float) else None
            ),
            f"{placement}_redis_cpu_us_per_delivery": two.values.get("redis_cpu_us_per_delivery"),
            f"{placement}_unserved_events": unserved,
            f"{placement}_messages_lost": two.values["messages_lost"],
            f"{placement}_out_of_order": two.values["out_of_order"],
        }
    # A lone server at the message rate each node carried with affinity: on this machine a
    # server's cost per delivery grows as its load falls (fewer frames share a send()), so
    # this tells what Redis costs from what a half-loaded process costs.
    node_rate = figures.values["affinity_deliveries_per_s"]
    if isinstance(node_rate, float) and isinstance(cost, float):
        rate = node_rate / 2 / (setup.members - 1)
        with runner.server_process([*LIMITS_OFF, *args.server_arg]) as (url, pid):
            half = runner.fanout(replace(setup, urls=[url], server_pid=pid), rate=rate)
        half_cost = half.values["deliveries_per_server_cpu_s"]
        per_cpu = figures.values["affinity_deliveries_per_server_cpu_s"]
        figures.values["lone_at_node_rate_deliveries_per_server_cpu_s"] = half_cost
        if isinstance(half_cost, float) and isinstance(per_cpu, float):
            figures.values["affinity_cpu_per_delivery_vs_lone_at_node_rate"] = half_cost / per_cpu
    return figures


def history_rooms(args: argparse.Namespace, setup: Setup) -> Figures:
    """One message in each of 200,000 rooms, against a server whose history is capped at
    5 MB and against one that keeps none (or only against `--url`): what the history cost
    the process, against its cap. The control takes out what serving 400,000 requests at
    full speed costs once (about 5 MB here, however many rooms), which is not history."""
    if args.url:
        return runner.history_attack(setup)
    grown: dict[str, Figures] = {}
    for kind, history in (("capped", ["--history-max-bytes", str(HISTORY_CAP)]),
                          ("control", ["--history", "0"])):  # fmt: skip
        with runner.server_process([*HISTORY_ATTACKED, *history, *args.server_arg]) as (url, pid):
            grown[kind] = runner.history_attack(replace(setup, urls=[url], server_pid=pid))
    capped, control = (grown[kind].values["server_growth"] for kind in ("capped", "control"))
    figures = Figures(values={"rooms_written": grown["capped"].values["rooms_written"]})
    figures.values["history_max_bytes"] = HISTORY_CAP
    if isinstance(capped, int) and isinstance(control, int):
        figures.values |= {
            "server_growth_mib": capped / 2**20,
            "control_growth_mib": control / 2**20,
            "growth_vs_cap": capped / HISTORY_CAP,
            "history_growth_vs_cap": (capped - control) / HISTORY_CAP,
        }
    return figures


def scale_sweep(args: argparse.Namespace, setup: Setup) -> Figures:
    """`scale.py`'s grid, each point `--runs` times on a fresh server, drawn in `--plot`."""
    points = scale.grid(args.sizes, args.room_counts, args.members, args.redis)
    figures = scale.sweep(setup, points, [*LIMITS_OFF, *args.server_arg], args.runs)
    if args.plot:
        plot.draw(figures.points, args.plot)
        figures.plot = args.plot
    return figures


def reconnect_after_restart(args: argparse.Namespace, setup: Setup) -> Figures:
    """`reconnect.py`: `--connections` members (2,000 unless told) back after a restart."""
    members = replace(setup, connections=args.connections or RECONNECT_CONNECTIONS)
    return reconnect.reconnect(members, [*LIMITS_OFF, *args.server_arg], args.redis)


OWN_SERVERS: dict[str, Callable[[argparse.Namespace, Setup], Figures]] = {
    "rooms": rooms,  # starts a Redis and servers of its own
    "history-rooms": history_rooms,
    "scale": scale_sweep,  # a server for each point
    "reconnect": reconnect_after_restart,  # restarts its server
}
REPEATS_ITSELF = {"scale"}  # each point `--runs` times, not the whole sweep


def _scenario(
    name: str, args: argparse.Namespace, setup: Setup, results: dict[str, Figures], log: Any = None
) -> Callable[[], Figures]:
    if name in ATTACKS:
        return partial(runner.attack, setup, name, log)
    if name != "latency":
        return partial(SIMPLE[name], setup)
    rate = args.rate
    if rate is None:  # half the saturated message rate, measured here and now
        saturated = results.get("fanout") or runner.fanout(setup)
        per_second = saturated.values["deliveries_per_s"]
        assert isinstance(per_second, float)
        rate = per_second / (setup.members - 1) / 2
    return partial(_latency, setup, rate)


def _latency(setup: Setup, rate: float) -> Figures:
    figures = runner.fanout(setup, rate=rate)
    figures.values = {"offered_messages_per_s": rate, **figures.values}
    return figures


def table(results: dict[str, Figures]) -> str:
    lines = []
    for name, figures in results.items():
        lines.append(f"{name}")
        for key, value in figures.values.items():
            lines.append(f"  {key:<32} {_shown(value):>14}")
        for key, series in figures.series.items():
            lines.append(f"  {key + ' over time':<32} {' '.join(f'{v:.0f}' for v in series)}")
        lines += [f"  {_point(point)}" for point in figures.points]
        if figures.plot:
            lines.append(f"  plot: {figures.plot}")
    return "\n".join(lines)


def _shown(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _point(point: dict[str, float | int | str | None]) -> str:
    """One point of a sweep on one line."""

    def shown(key: str) -> str:
        value = point[key]
        return value if isinstance(value, str) else _shown(value)

    where = f"{shown('mode'):<5} {shown('rooms')} x {shown('members')}"
    return (
        f"{where:<18} {shown('deliveries_per_s')} deliveries/s, "
        f"{shown('deliveries_per_server_cpu_s')} per server CPU-s, "
        f"p50 {shown('latency_p50_ms')} ms, p99 {shown('latency_p99_ms')} ms, "
        f"lost {shown('messages_lost')}, out of order {shown('out_of_order')}, "
        f"server {shown('server_rss_mib')} MiB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(
            f"unknown scenario {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}"
        )
    setup = Setup(
        urls=args.url or [],
        server_pid=args.server_pid,
        rooms=args.rooms,
        members=args.members,
        senders=args.senders,
        window=args.window,
        warmup=args.warmup,
        duration=args.duration,
        processes=args.processes,
        connections=args.connections or IDLE_CONNECTIONS,
        room_size=args.room_size,
        idle_seconds=args.idle_seconds,
    )
    if args.url and (own := {"scale", "reconnect"} & set(args.scenarios)):
        parser.error(f"{' and '.join(sorted(own))}: start their own servers, not for --url")
    if "scale" in args.scenarios:
        if why := scale.too_big(scale.grid(args.sizes, args.room_counts, args.members, False)):
            parser.error(f"scale: {why}")
        try:
            if args.plot:
                plot.require_matplotlib()
        except runner.BenchError as exc:
            parser.error(str(exc))
    if "reconnect" in args.scenarios and (args.connections or 0) > scale.MOST_CONNECTIONS:
        parser.error(f"reconnect: one server process holds at most {scale.MOST_CONNECTIONS:,}")
    try:
        results = run(args, setup)
    except runner.BenchError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.json:
        print(json.dumps({name: figures.shown() for name, figures in results.items()}, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
