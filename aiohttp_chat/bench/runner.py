"""Run the scenarios: a server process, generator processes, and the figures they yield."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, Final

from .. import handshakes
from . import attacks
from .load import Plan, Tally, raise_fd_limit, work

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = 1024


@dataclass
class Setup:
    urls: list[str]
    server_pid: int | None
    redis_pids: tuple[int, ...] = ()  # the Redis server(s), whose CPU is reported
    more_server_pids: tuple[int, ...] = ()  # other nodes, whose CPU counts as the server's
    affinity: bool = False  # each room's members on one server (else spread over `urls`)
    rooms: int = 4
    members: int = 50
    senders: int = 5
    window: int = 8
    warmup: float = 2.0
    duration: float = 10.0
    processes: int = 1
    connections: int = 15_000
    room_size: int = 100
    sources: tuple[str, ...] = ()  # the clients' local addresses, in turn (else any)
    concurrency: int = 200  # connections being opened at once, per generator
    idle_seconds: float = 65.0  # idle: how long all sit idle while the server's CPU is read
    open_timeout: float = 300.0  # seconds the generators may take to have every client in


@dataclass
class Figures:
    values: dict[str, float | int | None] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    points: list[dict[str, float | int | str | None]] = field(default_factory=list)  # a sweep's
    plot: str | None = None  # the file the points were drawn in

    def shown(self) -> dict[str, Any]:
        """As JSON shows it: `values` and `series`, and a sweep's `points` and `plot`."""
        extra = {"points": self.points, "plot": self.plot} if self.points else {}
        return {"values": self.values, "series": self.series, **extra}


# ---------------------------------------------------------------------------- server process


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (a `--workers` server is a supervisor and its workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            kids = [int(child) for child in children.read().split()]
    except OSError:
        kids = []
    return [pid, *(descendant for kid in kids for descendant in _tree(kid))]


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # it just exited
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * PAGE
    except OSError:
        pass
    return 0


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by the process `pid` and its descendants."""
    return None if pid is None else sum(map(_cpu_of, _tree(pid)))


def server_rss(pid: int | None) -> int | None:
    """Resident memory in bytes of the process `pid` and its descendants."""
    return None if pid is None else sum(map(_rss_of, _tree(pid)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def redis_process(cluster: bool = False) -> Iterator[tuple[str, tuple[int, ...]]]:
    """A private `redis-server` on a free port, or with `cluster` a three-master Redis
    Cluster; yields its URL and the servers' pids."""
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = [free_port() for _ in range(3 if cluster else 1)]
        for port in ports:
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            command += ["--appendonly", "no", "--dir", workdir]
            if cluster:
                command += ["--cluster-enabled", "yes", "--cluster-port", str(free_port())]
                command += ["--cluster-config-file", f"nodes-{port}.conf"]
            procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        for port, proc in zip(ports, procs, strict=True):
            _wait_listening(port, proc, "redis-server")
        if cluster:
            create = ["redis-cli", "--cluster", "create", "--cluster-yes"]
            subprocess.run([*create, *(f"127.0.0.1:{p}" for p in ports)], check=True,
                           stdout=subprocess.DEVNULL, timeout=30)  # fmt: skip
            _wait_cluster_ok(ports)
        yield f"redis://127.0.0.1:{ports[0]}/0", tuple(proc.pid for proc in procs)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_cluster_ok(ports: list[int]) -> None:
    deadline = time.monotonic() + 30
    for port in ports:
        info = ""
        while "cluster_state:ok" not in info:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster is not ok: {info}")
            time.sleep(0.1)
            info = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"],
                                  capture_output=True, text=True, check=False).stdout  # fmt: skip


def start_server(args: list[str], port: int, log: Any = None) -> subprocess.Popen[bytes]:
    """`python -m aiohttp_chat.server` on `port`, once it listens there. Its log goes to
    `log` (a file) if given, else where the benchmark's goes."""
    command = [sys.executable, "-m", "aiohttp_chat.server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "WARNING", *args]
    proc = subprocess.Popen(command, preexec_fn=raise_fd_limit, stderr=log)
    try:
        _wait_listening(port, proc, "the server")
    except BaseException:
        proc.kill()
        proc.wait(15)
        raise
    return proc


@contextmanager
def server_process(args: list[str], log: Any = None) -> Iterator[tuple[str, int]]:
    """The server (`start_server`) on a free port; yields its /chat URL and its pid."""
    port = free_port()
    proc = start_server(args, port, log)
    try:
        time.sleep(0.5 if "--redis-url" in args else 0)  # workers up and subscribed
        yield chat_url(port), proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


def chat_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/chat"


# ---------------------------------------------------------------------------- generators


class BenchError(Exception):
    """The run cannot go on; the text says why, in one line."""


class Generators:
    """Generator processes, each with its share of the rooms: each runs `target(plan, pipe)`
    (load.py's `work` unless told otherwise) with its plan."""

    def __init__(
        self, plans: Sequence[object], target: Callable[[Any, Connection], None] = work
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for plan in plans:
            ours, theirs = context.Pipe()
            process = context.Process(target=target, args=(plan, theirs), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def gather(self, expected: str, timeout: float = 300) -> list[Any]:
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError(f"a generator did not answer {expected!r}")
            answer = pipe.recv()
            if answer[0] == "failed":
                raise BenchError(answer[1])
            assert answer[0] == expected, answer
            answers.append(answer[1:])
        return answers

    def tell(self, command: object) -> None:
        for pipe in self.pipes:
            pipe.send(command)

    def finish(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # (one that failed has gone already)
                pipe.send("close")
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


def split_rooms(setup: Setup, rooms: int, members: int, **plan: Any) -> list[Plan]:
    """Rooms dealt round-robin to the generator processes; a room stays in one process."""
    names = [f"bench-{index}" for index in range(rooms)]
    shares = [names[i :: setup.processes] for i in range(setup.processes)]
    plans, first_sender = [], 0
    for share in filter(None, shares):
        plans.append(
            Plan(urls=setup.urls, rooms=share, members=members, first_sender=first_sender, **plan)
        )
        first_sender += len(share) * plan.get("senders", 0)
    return plans


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(fraction * len(values)))]


# ---------------------------------------------------------------------------- scenarios


def fanout(
    setup: Setup,
    *,
    rate: float | None = None,
    stuck: bool = False,
    scrape: bool = False,
    settle: bool = False,
) -> Figures:
    """R rooms x K members, S senders per room; closed loop, or open loop at `rate` msg/s.

    With `scrape`, `/metrics` is read every second meanwhile, as Prometheus would. With
    `settle`, the warm-up starts only once the server is quiet after everyone entered (in a
    big room, the announcements of the last newcomers may still be on their way)."""
    plans = split_rooms(
        setup,
        setup.rooms,
        setup.members,
        scenario="fanout",
        senders=setup.senders,
        window=setup.window,
        stuck=stuck,
        affinity=setup.affinity,
        sources=setup.sources,
        concurrency=setup.concurrency,
    )
    if rate is not None:
        senders = sum(len(p.rooms) * p.senders for p in plans)
        plans = [replace(p, rate=rate * len(p.rooms) * p.senders / senders) for p in plans]
    generators = Generators(plans)
    try:
        generators.gather("ready", setup.open_timeout)
        if settle:
            wait_quiet(setup)
        start = time.monotonic() + setup.warmup
        end = start + setup.duration
        generators.tell((start, end, end))
        memory: list[float] = []
        time.sleep(max(0.0, start - time.monotonic()))
        cpu_before = _servers_cpu(setup)
        redis_before = _redis_cpu(setup)
        scrapes, next_scrape = 0, time.monotonic()
        while (now := time.monotonic()) < end:
            if scrape and now >= next_scrape:
                scrapes += _scrape(setup.urls[0])
                next_scrape += 1.0
            rss = server_rss(setup.server_pid)
            if rss is not None:
                memory.append(rss / 2**20)
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        cpu_after = _servers_cpu(setup)
        redis_after = _redis_cpu(setup)
        stats: list[Tally] = [answer[0] for answer in generators.gather("done")]
    finally:
        generators.finish()
    latencies = sorted(value for s in stats for value in s.latencies)
    deliveries = sum(s.in_window for s in stats)
    server_seconds = None
    if cpu_before is not None and cpu_after is not None:
        server_seconds = cpu_after - cpu_before
    figures = Figures(series={"server_rss_mib": memory})
    figures.values = {
        "deliveries_per_s": deliveries / setup.duration,
        "deliveries_per_server_cpu_s": deliveries / server_seconds if server_seconds else None,
        "server_cpu_share": server_seconds / setup.duration if server_seconds else None,
        "latency_p50_ms": _ms(percentile(latencies, 0.50)),
        "latency_p99_ms": _ms(percentile(latencies, 0.99)),
        "latency_max_ms": _ms(latencies[-1] if latencies else None),
        "messages_sent": sum(s.sent for s in stats),
        "messages_lost": sum(max(0, s.expected - s.received) for s in stats),
        "out_of_order": sum(s.out_of_order for s in stats),
        "server_rss_mib": memory[-1] if memory else None,
        "generator_cpu_share": sum(s.cpu_seconds for s in stats) / setup.duration,
    }
    if redis_before is not None and redis_after is not None:
        redis_seconds = redis_after - redis_before
        figures.values["redis_cpu_share"] = redis_seconds / setup.duration
        figures.values["redis_cpu_us_per_delivery"] = (
            redis_seconds / deliveries * 1e6 if deliveries else None
        )
    if stuck:
        figures.values["stuck_member_dropped"] = int(any(s.stuck_dropped for s in stats))
    if scrape:
        figures.values["metrics_scrapes"] = scrapes
    return figures


QUIET_SHARE: Final = 0.1  # of a core: a server using less is done with what it was doing


def wait_quiet(setup: Setup, most: float = 600.0) -> None:
    """Return once the server (and its Redis) used under `QUIET_SHARE` of a core for half a
    second, or after `most` seconds."""
    deadline = time.monotonic() + most
    before = (_servers_cpu(setup) or 0.0) + (_redis_cpu(setup) or 0.0)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = (_servers_cpu(setup) or 0.0) + (_redis_cpu(setup) or 0.0)
        if now - before < QUIET_SHARE * 0.5:
            return
        before = now


def _redis_cpu(setup: Setup) -> float | None:
    if not setup.redis_pids:
        return None
    return sum(server_cpu(pid) or 0.0 for pid in setup.redis_pids)


def _servers_cpu(setup: Setup) -> float | None:
    seconds = [server_cpu(pid) for pid in (setup.server_pid, *setup.more_server_pids)]
    return None if seconds[0] is None else sum(s for s in seconds if s is not None)


def _http_url(chat_url: str, path: str = "/metrics") -> str:
    """The URL of `path` on the server whose chat WebSocket is at `chat_url`."""
    return chat_url.replace("ws://", "http://", 1).rsplit("/", 1)[0] + path


def unserved_events(chat_url: str) -> float:
    """How many broadcasts the server at `chat_url` heard for rooms it has no member in."""
    url = _http_url(chat_url)
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("aiohttp_chat_redis_events_unserved_total "):
                return float(line.split()[1])
    return 0.0


def _scrape(chat_url: str) -> int:
    """Read the server's /metrics once; 1 if it answered with metrics."""
    url = _http_url(chat_url)
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(b"aiohttp_chat_deliveries_total" in response.read())


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# Connections one generator process opens (under this machine's 20,000 open files), and
# the loopback addresses they come from, in turn: one address reaches one server port from
# about 28,000 ephemeral ports only.
PER_GENERATOR: Final = 15_000
IDLE_SOURCES: Final = tuple(f"127.0.0.{n}" for n in range(2, 10))


def most_connections(files: int) -> int:
    """The WebSockets one server process can hold with `files` open files: what it keeps
    for itself and for connections still handshaking taken out (`handshakes.capacity`)."""
    return handshakes.capacity(files, 0, handshakes.DEFAULT_MAX_PENDING)[0]


def idle(setup: Setup) -> Figures:
    """N idle members spread over rooms: per connection, the server's memory and the
    kernel's socket memory; the connect rate; the server's CPU while all sit idle for
    `idle_seconds` (the default heartbeat pings each once a minute); /healthz's latency
    throughout; and one broadcast to a room, with when its median and last member had it."""
    rooms = max(1, setup.connections // setup.room_size)
    processes = max(setup.processes, -(-setup.connections // PER_GENERATOR))
    per_process = replace(setup, processes=processes, sources=setup.sources or IDLE_SOURCES)
    plans = split_rooms(
        per_process, rooms, setup.room_size, scenario="idle", sources=per_process.sources
    )
    rss_before, sockets_before = server_rss(setup.server_pid), socket_memory()
    health = HealthProbe(setup.urls[0])
    generators = Generators(plans)
    try:
        ready = generators.gather("ready", timeout=3600)
        time.sleep(1.0)  # let the server settle before reading its memory
        rss_after, sockets_after = server_rss(setup.server_pid), socket_memory()
        cpu_before = _servers_cpu(setup)
        time.sleep(setup.idle_seconds)
        cpu_after = _servers_cpu(setup)
        generators.tell("broadcast")
        stats: list[Tally] = [answer[0] for answer in generators.gather("done")]
    finally:
        generators.finish()
        health.stop()
    connections = sum(count for count, _ in ready)
    per_connection = idle_cpu = None
    if rss_before is not None and rss_after is not None:
        per_connection = (rss_after - rss_before) / connections / 1024
    if cpu_before is not None and cpu_after is not None:
        idle_cpu = 100 * (cpu_after - cpu_before) / setup.idle_seconds
    reached = sorted(latency for tally in stats for latency in tally.latencies)
    checks = sorted(health.latencies)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return Figures(
        values={
            "connections": connections,
            "connects_per_s": connections / max(seconds for _, seconds in ready),
            "server_kib_per_connection": per_connection,
            "server_rss_mib": rss_after / 2**20 if rss_after else None,
            # Both ends are on this machine: half the sockets' memory is the server's.
            "kernel_kib_per_connection": (sockets_after - sockets_before) / 2 / connections / 1024,
            "server_idle_cpu_percent": idle_cpu,
            "idle_seconds": setup.idle_seconds,
            "healthz_p50_ms": _ms(percentile(checks, 0.5)),
            "healthz_p99_ms": _ms(percentile(checks, 0.99)),
            "healthz_max_ms": _ms(checks[-1] if checks else None),
            "healthz_failed": health.failed,
            "broadcast_reached": sum(s.broadcast_reached for s in stats),
            "broadcast_expected": sum(setup.room_size - 1 for _ in stats),
            "broadcast_median_ms": _ms(percentile(reached, 0.5)),
            "broadcast_last_ms": _ms(reached[-1] if reached else None),
            "open_files_hard_limit": hard,
            "most_connections_per_process": most_connections(hard),
        }
    )


# The kernel's objects for one open TCP socket: the socket, its inode, file, dentry and
# epoll entry (`/proc/slabinfo`; each some hundred bytes to 2.3 KiB here).
SOCKET_SLABS: Final = ("TCP", "TCPv6", "sock_inode_cache", "filp", "dentry", "eventpoll_epi")


def socket_memory() -> int:
    """Bytes the kernel holds for TCP sockets, machine-wide: their buffers
    (`/proc/net/sockstat`) and their objects (`SOCKET_SLABS`, if `/proc/slabinfo` can be
    read: it takes root)."""
    total = 0
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                fields = line.split()
                total += int(fields[fields.index("mem") + 1]) * resource.getpagesize()
    try:
        with open("/proc/slabinfo") as slabinfo:
            for line in slabinfo:
                name, active, _, size, *_ = line.split()
                if name in SOCKET_SLABS:
                    total += int(active) * int(size)
    except (OSError, ValueError):
        pass
    return total


class HealthProbe:
    """Reads the server's /healthz every 0.2 s from a thread of its own, until `stop`."""

    def __init__(self, chat_url: str) -> None:
        self.url = _http_url(chat_url, "/healthz")
        self.latencies: list[float] = []
        self.failed = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(0.2):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
            except OSError:
                self.failed += 1
            else:
                self.latencies.append(time.monotonic() - started)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)


def slow(setup: Setup) -> Figures:
    """`fanout` with one member that stops reading, against the same run without it."""
    baseline = fanout(setup)
    stuck = fanout(setup, stuck=True)
    rate, base_rate = stuck.values["deliveries_per_s"], baseline.values["deliveries_per_s"]
    assert isinstance(rate, float) and isinstance(base_rate, float)
    figures = Figures(series=stuck.series)
    memory = stuck.series["server_rss_mib"]
    figures.values = {
        "deliveries_per_s_without_stuck": base_rate,
        "deliveries_per_s_with_stuck": rate,
        "relative_rate_percent": 100 * rate / base_rate if base_rate else None,
        "messages_lost": stuck.values["messages_lost"],
        "stuck_member_dropped": stuck.values["stuck_member_dropped"],
        "server_rss_growth_mib": max(memory) - memory[0] if memory else None,
    }
    return figures


# Polite clients beside an attacker: each connection within its request rate (20 senders at
# 7.5 messages a second), two clients to a loopback address so that each address stays within
# its room-change budget, run after run; the attacker comes from one of its own
# (`attacks.SOURCE`).
POLITE_RATE: Final = 150.0
POLITE_SOURCES: Final = tuple(f"127.0.0.{n}" for n in range(10, 110))


def attack(setup: Setup, kind: str, log: Any = None) -> Figures:
    """The polite load alone, then beside one attacker (`attacks.py`): their latency and
    deliveries side by side, nothing lost, and what the server's memory did meanwhile.
    `log`, the server's log file if known, tells how much the attack made it write."""
    polite = replace(setup, sources=POLITE_SOURCES, concurrency=20)  # people, not a herd
    quiet = fanout(polite, rate=POLITE_RATE)
    log_before = _size(log)
    rss_before = server_rss(setup.server_pid)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    seconds = setup.warmup + setup.duration + 8  # past the polite clients' connecting
    attacker = context.Process(target=attacks.work, args=(kind, setup.urls[0], seconds, theirs))
    attacker.start()
    try:
        time.sleep(2.0)  # the attack under way before the polite clients connect
        attacked = fanout(polite, rate=POLITE_RATE)
        counts = ours.recv() if ours.poll(seconds + 30) else {}
    finally:
        attacker.join(10)
        if attacker.is_alive():
            attacker.kill()
    memory = attacked.series["server_rss_mib"]
    figures = Figures(series={"server_rss_mib": memory})
    shown = ("latency_p50_ms", "latency_p99_ms", "deliveries_per_s", "server_cpu_share")
    figures.values = {f"quiet_{key}": quiet.values[key] for key in shown}
    for key in (*shown, "messages_lost"):
        figures.values[f"attacked_{key}"] = attacked.values[key]
    figures.values["attacked_out_of_order"] = attacked.values["out_of_order"]
    figures.values |= _ratio("p99_vs_quiet", attacked, quiet, "latency_p99_ms")
    figures.values |= _ratio("deliveries_vs_quiet", attacked, quiet, "deliveries_per_s")
    if rss_before is not None and memory:
        figures.values["server_rss_growth_mib"] = max(memory) - rss_before / 2**20
    if log is not None:
        figures.values["server_log_bytes"] = _size(log) - log_before
    figures.values |= {f"attacker_{key}": value for key, value in sorted(counts.items())}
    return figures


def history_attack(setup: Setup) -> Figures:
    """One message in each of 200,000 rooms: how much the server grew (`attacks.py`)."""
    rss_before = server_rss(setup.server_pid)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    attacker = context.Process(
        target=attacks.work, args=("history-rooms", setup.urls[0], 600.0, theirs)
    )
    attacker.start()
    counts = ours.recv() if ours.poll(660) else {}
    attacker.join(10)
    time.sleep(1.0)  # what the server still had to read, read
    rss_after = server_rss(setup.server_pid)
    growth = None if rss_before is None or rss_after is None else rss_after - rss_before
    return Figures(values={"rooms_written": counts.get("rooms", 0), "server_growth": growth})


def _ratio(name: str, these: Figures, those: Figures, key: str) -> dict[str, float | None]:
    value, other = these.values.get(key), those.values.get(key)
    if isinstance(value, int | float) and isinstance(other, int | float) and other:
        return {name: value / other}
    return {name: None}


def _size(log: Any) -> int:
    if log is None:
        return 0
    log.flush()
    return os.fstat(log.fileno()).st_size


def ratios(these: Figures, those: Figures) -> Figures:
    """Each figure of `these` divided by the same figure of `those`, where both are numbers."""
    values: dict[str, float | int | None] = {}
    for key, value in these.values.items():
        other = those.values.get(key)
        if isinstance(value, int | float) and isinstance(other, int | float) and other:
            values[key] = value / other
    return Figures(values=values)


def median_of(runs: list[Figures]) -> Figures:
    """The median of each figure over `runs`; of a ratio measured within each run (`_vs_`),
    also the lowest and the highest, which tell how much the machine moved meanwhile."""
    merged = Figures(series=runs[-1].series, points=runs[-1].points, plot=runs[-1].plot)
    for key in runs[0].values:
        numbers = [r.values[key] for r in runs if isinstance(r.values[key], int | float)]
        merged.values[key] = statistics.median(numbers) if numbers else None  # type: ignore[type-var]
        if "_vs_" in key and len(numbers) > 1:
            merged.values[f"{key}_lowest"] = min(numbers)  # type: ignore[type-var]
            merged.values[f"{key}_highest"] = max(numbers)  # type: ignore[type-var]
    return merged
