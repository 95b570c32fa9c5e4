"""The `reconnect` scenario: the server restarts under N members; how soon are they all back?

Each member enters its room under its own nick in one step (protocol 1.2's `?nick=&room=`)
and keeps the resume token its `connecting` names. The benchmark then stops the server
(SIGTERM: it closes every WebSocket with 1001) and starts it again on the same port. Every
member notices its close by itself and reconnects as the project's client does: with its
token, nick and room in the query, retrying after `client.backoff` (doubling, with jitter)
while it is refused. A member is back when a `connecting` names its room and nick again; one
that a `connecting` names otherwise has lost them. Without Redis the new process knows no
token, but its rooms are empty, so the nick is free; with Redis the tokens outlive it.

Generator processes (`work`) each hold a share of the members; the benchmark's process
restarts the server and gathers what they saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from array import array
from asyncio import FIRST_COMPLETED
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, Final
from urllib.parse import urlencode

from ..client import backoff
from . import runner
from .load import PROGRESS_SECONDS, run_generator
from .runner import BenchError, Figures, Generators, Setup
from .wsclient import BenchSocket, HandshakeRefused, connect

GREETING_SECONDS: Final = 30.0  # for `connecting` once the handshake is done
BACK_SECONDS: Final = 300.0  # for every member to be back after the restart
STOP_SECONDS: Final = 60.0  # for the server to exit after SIGTERM


@dataclass
class Plan:
    url: str  # the server's /chat
    members: list[tuple[str, str]]  # (nick, room) of each of this process's members
    concurrency: int = 200  # connections being opened at once at the start
    sources: tuple[str, ...] = ()  # local addresses to connect from, in turn (else any)


@dataclass
class Tally:
    members: int = 0
    back: int = 0  # in their rooms under their nicks again
    nicks_lost: int = 0  # a `connecting` named another nick
    rooms_lost: int = 0  # ... or another room
    attempts: int = 0  # connections tried after the close, the one that worked included
    refused: dict[str, int] = field(default_factory=dict)  # failed attempts, by why
    returned: array[float] = field(default_factory=lambda: array("d"))  # when each got in
    took: array[float] = field(default_factory=lambda: array("d"))  # from its close, each


class Member:
    """One chat member: its nick, room and latest resume token, and its connection."""

    def __init__(self, nick: str, room: str, source: str | None) -> None:
        self.nick, self.room, self.source = nick, room, source
        self.token: str | None = None
        self.socket: BenchSocket | None = None
        self.greeting: asyncio.Future[dict[str, Any]] | None = None

    def on_text(self, payload: bytes) -> None:
        if self.greeting is not None and not self.greeting.done():
            self.greeting.set_result(json.loads(payload))  # the first frame: `connecting`

    async def enter(self, url: str) -> dict[str, Any]:
        """Connect with nick, room (and token, once known); `connecting`'s fields."""
        query = {"nick": self.nick, "room": self.room}
        if self.token is not None:
            query["resume"] = self.token
        self.greeting = asyncio.get_running_loop().create_future()
        self.socket = await connect(f"{url}?{urlencode(query)}", self.on_text, source=self.source)
        closed = self.socket.closed
        done, _ = await asyncio.wait(
            (self.greeting, closed), timeout=GREETING_SECONDS, return_when=FIRST_COMPLETED
        )
        if self.greeting not in done:
            self.socket.abort()
            raise ConnectionError("closed before connecting" if done else "no connecting")
        greeting = self.greeting.result()
        if isinstance(token := greeting.get("resume"), str):
            self.token = token
        return greeting

    def is_self(self, greeting: dict[str, Any]) -> bool:
        return greeting.get("user") == self.nick and greeting.get("room") == self.room


class Run:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stats = Tally(members=len(plan.members))
        sources = plan.sources
        self.members = [
            Member(nick, room, sources[i % len(sources)] if sources else None)
            for i, (nick, room) in enumerate(plan.members)
        ]

    async def open(self) -> None:
        """Every member in its room under its nick, `concurrency` at a time."""
        gate = asyncio.Semaphore(self.plan.concurrency)

        async def open_one(member: Member) -> None:
            async with gate:
                greeting = await member.enter(self.plan.url)
            if not member.is_self(greeting):
                raise RuntimeError(f"{member.nick} in {member.room} entered as {greeting}")

        await asyncio.gather(*(open_one(member) for member in self.members))

    async def come_back(self, member: Member, deadline: float) -> None:
        """Wait for the close, then reconnect with backoff until in, or until `deadline`."""
        assert member.socket is not None
        await member.socket.closed
        stats, failures, noticed = self.stats, 0, time.monotonic()
        while time.monotonic() < deadline:
            stats.attempts += 1
            try:
                greeting = await member.enter(self.plan.url)
            except OSError as exc:  # refused, reset, or closed before `connecting`
                why = _why(exc)
                stats.refused[why] = stats.refused.get(why, 0) + 1
                failures += 1
                await asyncio.sleep(min(backoff(failures), max(0.0, deadline - time.monotonic())))
                continue
            now = time.monotonic()
            stats.returned.append(now)
            stats.took.append(now - noticed)
            stats.back += member.is_self(greeting)
            stats.nicks_lost += greeting.get("user") != member.nick
            stats.rooms_lost += greeting.get("room") != member.room
            return

    async def wait_back(self) -> None:
        deadline = time.monotonic() + BACK_SECONDS
        waits = [asyncio.create_task(self.come_back(m, deadline)) for m in self.members]
        progress = asyncio.create_task(self._progress())
        try:
            await asyncio.gather(*waits)
        finally:
            progress.cancel()

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            print(
                f"generator {os.getpid()}: {self.stats.back:,} of {self.stats.members:,} "
                "members back",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        for member in self.members:
            if member.socket is not None:
                member.socket.close()


def _why(error: OSError) -> str:
    """A failed attempt's kind, as counted: `connection_refused` (nothing listens), the HTTP
    status of a refused handshake (`http_429`, `http_503`), or `other` (a reset, a close
    before `connecting`...)."""
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(error, HandshakeRefused):
        return f"http_{error.status}"
    return "other"


async def _work(plan: Plan, parent: Connection) -> None:
    loop = asyncio.get_running_loop()
    run = Run(plan)
    try:
        await run.open()
    except (OSError, RuntimeError) as exc:
        parent.send(("failed", f"cannot enter on {plan.url}: {exc}"))
        run.close()
        return
    back = asyncio.create_task(run.wait_back())  # from now on, a close is the restart
    parent.send(("ready", len(run.members)))
    await back
    parent.send(("back", run.stats))
    await loop.run_in_executor(None, parent.recv)  # closing time: the parent has read us
    run.close()
    await asyncio.sleep(0.2)


def work(plan: Plan, parent: Connection) -> None:
    """The body of one generator process."""
    run_generator(_work(plan, parent))


# ---------------------------------------------------------------------------- the benchmark


def plans(setup: Setup, url: str) -> list[Plan]:
    """`setup.connections` members, `setup.room_size` to a room, a room in one process."""
    size = max(1, setup.room_size)
    rooms = -(-setup.connections // size)
    processes = max(setup.processes, -(-setup.connections // 15_000))  # fds per process
    shares: list[list[tuple[str, str]]] = [[] for _ in range(processes)]
    for index in range(setup.connections):
        room = index // size
        shares[room % processes].append((f"bench{index}", f"bench-{room}"))
    return [
        Plan(url, share, setup.concurrency, setup.sources)
        for share in shares[: min(processes, rooms)]
    ]


def reconnect(setup: Setup, server_args: list[str], redis: bool) -> Figures:
    """Members in, the server restarted, the members back: how long, and at what cost."""
    with ExitStack() as stack:
        if redis:
            redis_url, redis_pids = stack.enter_context(runner.redis_process())
            server_args = [*server_args, "--redis-url", redis_url]
            setup = replace(setup, redis_pids=redis_pids)
        port = runner.free_port()
        server = runner.start_server(server_args, port)
        stack.callback(lambda: _stop(server))
        time.sleep(0.5 if redis else 0)  # subscribed
        generators = Generators(plans(setup, runner.chat_url(port)), target=work)
        stack.callback(generators.finish)
        entered = sum(count for (count,) in generators.gather("ready", setup.open_timeout))
        rss = runner.server_rss(server.pid)
        print(f"reconnect: {entered:,} members in; restarting", file=sys.stderr, flush=True)
        sigterm = time.monotonic()
        stop_seconds = _stop(server)
        server = runner.start_server(server_args, port)  # `_stop` above stops this one then
        listening = time.monotonic() - sigterm
        stats: list[Tally] = [a[0] for a in generators.gather("back", BACK_SECONDS + 60)]
    returned = sorted(t for s in stats for t in s.returned)
    durations = sorted(t for s in stats for t in s.took)
    refused: dict[str, int] = {}
    for tally in stats:
        for why, count in tally.refused.items():
            refused[why] = refused.get(why, 0) + count
    back = sum(s.back for s in stats)
    values: dict[str, float | int | None] = {
        "members": entered,
        "server_rss_mib_before": rss / 2**20 if rss else None,
        "server_stop_s": stop_seconds,
        "listening_again_s": listening,
        "all_back_s": returned[-1] - sigterm if back == entered and returned else None,
        "reconnect_p50_ms": _ms(runner.percentile(durations, 0.50)),
        "reconnect_p99_ms": _ms(runner.percentile(durations, 0.99)),
        "reconnect_max_ms": _ms(durations[-1] if durations else None),
        "members_back": back,
        "members_never_back": entered - len(returned),
        "nicks_lost": sum(s.nicks_lost for s in stats),
        "rooms_lost": sum(s.rooms_lost for s in stats),
        "attempts": sum(s.attempts for s in stats),
        "attempts_failed": sum(refused.values()),
    }
    values |= {f"failed_{why}": count for why, count in sorted(refused.items())}
    return Figures(values=values)


def _stop(server: subprocess.Popen[bytes]) -> float:
    """SIGTERM, and wait for it to exit: how long it took."""
    began = time.monotonic()
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(15)
            raise BenchError(f"the server did not exit within {STOP_SECONDS:.0f} s") from None
    return time.monotonic() - began


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
