"""What one load-generator process does: open its share of clients and drive them.

The parent process sends a `Plan`, waits for "ready", then sends the absolute times (on the
system-wide monotonic clock, which every process shares) at which to start measuring, stop
measuring and stop sending. Each chat message carries its sender, its sequence number and
the time it was sent, so every receiver measures latency, order and loss by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from array import array
from collections.abc import Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .wsclient import BenchSocket, connect

BROADCAST = b'{"action":"chat_message","message":"'
REPLY = b'{"action":"chat_message","success":true,"message":"'
_AT = len(BROADCAST)
DRAIN_SECONDS = 5.0
PROBES = 2  # members per room that check order and measure latency
STUCK_RECEIVE_BUFFER = 4096  # the stuck member's kernel buffer: a slow link, not 32 MB
PROGRESS_SECONDS = 5.0  # how often a generator still opening says how far it got


@dataclass
class Plan:
    scenario: str  # "fanout" or "idle"
    urls: list[str]
    rooms: list[str]
    members: int  # per room
    senders: int = 0  # per room, the first members
    window: int = 8  # unacknowledged messages per sender (closed loop)
    rate: float | None = None  # messages/s over all this process's senders (open loop)
    stuck: bool = False  # the last member of the first room stops reading
    concurrency: int = 200  # connections being opened at once
    first_sender: int = 0  # sender ids are unique across processes
    affinity: bool = False  # all of a room's members on one of `urls` (else spread over them)
    sources: tuple[str, ...] = ()  # local addresses to connect from, in turn (else any)


@dataclass
class Tally:
    connections: int = 0
    connect_seconds: float = 0.0
    sent: int = 0
    acked: int = 0
    expected: int = 0
    received: int = 0
    in_window: int = 0
    out_of_order: int = 0
    cpu_seconds: float = 0.0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    stuck_dropped: bool = False
    broadcast_reached: int = 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class NickTaken(Exception):
    """The room already has a member with this client's random nick."""


class Client:
    """One chat member. Every member counts what it receives (the socket counts frames);
    probes also check order and measure latency; senders send and count their acks."""

    def __init__(self, run: Run, room: int, sender: int | None, probe: bool) -> None:
        self.run, self.room, self.sender, self.probe = run, room, sender, probe
        self.socket: BenchSocket | None = None
        self.greeted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_seq: dict[int, int] = {}
        self.next_seq = 0
        self.replies = 0
        self.base = 0

    @property
    def received(self) -> int:
        """Broadcasts received since `start_counting`."""
        assert self.socket is not None
        return self.socket.texts - self.base - self.replies

    def start_counting(self) -> None:
        assert self.socket is not None
        self.base, self.replies = self.socket.texts, 0
        if self.sender is None and not self.probe:
            self.socket.on_text = None  # counting frames is enough

    def on_text(self, payload: bytes) -> None:
        run = self.run
        if payload.startswith(BROADCAST):
            if not self.probe:
                return
            sender, seq, sent_at = payload[_AT : payload.index(b'"', _AT)].split()
            now = time.monotonic()
            key, number = int(sender), int(seq)
            if self.last_seq.get(key, -1) >= number:
                run.stats.out_of_order += 1
            self.last_seq[key] = number
            if run.window_start <= now < run.window_end:
                run.stats.latencies.append(now - float(sent_at))
        elif payload.startswith(REPLY):
            self.replies += 1
            run.stats.acked += 1
            run.acked[self.room] += 1
            if run.rate is None and time.monotonic() < run.stop_at:
                self.send_chat()
        elif not self.greeted.done():
            self.greeted.set_result(None)
        elif b'"join_room"' in payload and not self.joined.done():
            if b'"success":true' in payload:
                self.joined.set_result(None)
            elif b"Name already in use" in payload:
                self.joined.set_exception(NickTaken())
            else:  # a benchmark with members missing from their rooms would mean nothing
                self.joined.set_exception(RuntimeError(f"join refused: {payload!r}"))

    def send_chat(self) -> None:
        assert self.socket is not None and self.sender is not None
        message = f"{self.sender} {self.next_seq} {time.monotonic():.6f}"
        self.next_seq += 1
        self.run.stats.sent += 1
        self.socket.send_text(b'{"action":"chat_message","message":"%s"}' % message.encode())


class Run:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stats = Tally()
        self.rate = plan.rate
        self.window_start = self.window_end = float("inf")
        self.stop_at = 0.0  # no closed-loop sending until `chat` sets it
        self.acked = [0] * len(plan.rooms)
        self.clients: list[Client] = []
        self.entered = 0  # clients in their rooms so far

    async def open(self) -> None:
        plan, gate = self.plan, asyncio.Semaphore(self.plan.concurrency)
        sender_id = plan.first_sender
        for room in range(len(plan.rooms)):
            for member in range(plan.members):
                is_sender = member < plan.senders
                probe = plan.senders <= member < plan.senders + PROBES
                self.clients.append(Client(self, room, sender_id if is_sender else None, probe))
                sender_id += is_sender

        async def open_one(index: int, client: Client) -> None:
            """Connect and go straight to the room, as a real client does."""
            async with gate:
                spread = _room_number(plan.rooms[client.room]) if plan.affinity else index
                url = plan.urls[spread % len(plan.urls)]
                small = STUCK_RECEIVE_BUFFER if self._is_stuck(client) else None
                source = plan.sources[index % len(plan.sources)] if plan.sources else None
                client.socket = await connect(
                    url, client.on_text, receive_buffer=small, source=source
                )
                await client.greeted
                join = json.dumps({"action": "join_room", "room": plan.rooms[client.room]})
                client.socket.send_text(join.encode())
                try:
                    await client.joined
                except NickTaken:  # random nicks collide in a room now and then: as a person
                    client.joined = asyncio.get_running_loop().create_future()  # would, rename
                    rename = {"action": "set_nick", "nick": f"b{os.getpid()}x{index}"}
                    client.socket.send_text(json.dumps(rename).encode())
                    client.socket.send_text(join.encode())
                    await client.joined
                self.entered += 1

        started = time.monotonic()
        progress = asyncio.create_task(self._progress(started))
        try:
            await asyncio.gather(*(open_one(i, c) for i, c in enumerate(self.clients)))
        finally:
            progress.cancel()
        self.stats.connect_seconds = time.monotonic() - started
        self.stats.connections = len(self.clients)

    async def _progress(self, started: float) -> None:
        """While opening takes long (many, or a big room announcing each newcomer to all
        before it), say every few seconds on stderr how many are in."""
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            print(
                f"generator {os.getpid()}: {self.entered:,} of {len(self.clients):,} members "
                f"in their rooms after {time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    async def chat(self, start: float, end: float, stop: float) -> None:
        self.window_start, self.window_end, self.stop_at = start, end, stop
        loop = asyncio.get_running_loop()
        for client in self.clients:
            client.start_counting()
        cpu: list[float] = []
        counts: list[int] = []
        measured = asyncio.Event()

        def mark() -> None:
            cpu.append(_cpu())
            counts.append(sum(client.received for client in self.clients))
            if len(cpu) == 2:
                measured.set()

        loop.call_at(start, mark)
        loop.call_at(end, mark)
        senders = [c for c in self.clients if c.sender is not None]
        if (stuck := self._stuck) is not None:
            assert stuck.socket is not None
            stuck.socket.pause_reading()
        if self.rate is None:
            for sender in senders:
                for _ in range(self.plan.window):
                    sender.send_chat()
            await asyncio.sleep(max(0.0, stop - loop.time()))
        else:
            await self._paced(senders, stop)
        await self._drain()
        await measured.wait()  # uvloop's millisecond clock may fire the end mark a bit late
        self.stats.cpu_seconds = cpu[1] - cpu[0]
        self.stats.in_window = counts[1] - counts[0]
        if self.plan.stuck:
            await self._was_stuck_dropped()

    async def _was_stuck_dropped(self) -> None:
        """Read again: a dropped connection then shows its close (or its reset)."""
        assert self._stuck is not None
        stuck = self._stuck.socket
        assert stuck is not None and stuck.transport is not None
        stuck.transport.resume_reading()
        stuck.on_text = None
        try:
            await asyncio.wait_for(asyncio.shield(stuck.closed), DRAIN_SECONDS)
        except TimeoutError:
            return
        self.stats.stuck_dropped = True

    async def _paced(self, senders: list[Client], stop: float) -> None:
        """Open loop: send at the planned rate, whatever the acks do."""
        assert self.rate is not None
        began, sent = time.monotonic(), 0
        while (now := time.monotonic()) < stop:
            due = int((now - began) * self.rate)
            while sent < due:
                senders[sent % len(senders)].send_chat()
                sent += 1
            await asyncio.sleep(0.0005)

    async def _drain(self) -> None:
        """Wait until every acknowledged message reached every reading member of its room."""
        plan = self.plan
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            expected = sum(acked * (plan.members - 1) for acked in self.acked)
            if plan.stuck:
                expected -= self.acked[0]  # the stuck member reads nothing
            received = sum(c.received for c in self.clients if not self._is_stuck(c))
            if received >= expected or time.monotonic() > deadline:
                self.stats.expected, self.stats.received = expected, received
                return
            await asyncio.sleep(0.05)

    @property
    def _stuck(self) -> Client | None:
        """The member that stops reading: the last of the first room."""
        return self.clients[self.plan.members - 1] if self.plan.stuck else None

    def _is_stuck(self, client: Client) -> bool:
        return client is self._stuck

    async def broadcast_once(self) -> None:
        """Idle: one message in the first room must reach every other member of it."""
        room = [c for c in self.clients if c.room == 0]
        self.window_start, self.window_end = 0.0, float("inf")  # each member's latency
        for client in room:
            client.probe = True
            client.start_counting()
        before = sum(c.received for c in room)
        speaker = room[0]
        speaker.sender = 0
        speaker.send_chat()
        deadline = time.monotonic() + DRAIN_SECONDS
        while sum(c.received for c in room) - before < len(room) - 1:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        self.stats.broadcast_reached = sum(c.received for c in room) - before

    def close(self) -> None:
        for client in self.clients:
            if client.socket is not None:
                client.socket.close()


async def _work(plan: Plan, parent: Connection) -> None:
    loop = asyncio.get_running_loop()
    run = Run(plan)
    try:
        await run.open()
    except OSError as exc:  # refused, or nothing listens: one line for the user, no traceback
        parent.send(("failed", f"cannot connect to {plan.urls[0]}: {exc.strerror or exc}"))
        run.close()
        return
    parent.send(("ready", run.stats.connections, run.stats.connect_seconds))
    command: Any = await loop.run_in_executor(None, parent.recv)
    if plan.scenario == "fanout":
        await run.chat(*command)
    elif command == "broadcast":
        await run.broadcast_once()
    parent.send(("done", run.stats))
    await loop.run_in_executor(None, parent.recv)  # closing time: the parent has read us
    run.close()
    await asyncio.sleep(0.2)


def raise_fd_limit() -> None:
    """As many open connections as this machine allows a process."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_generator(body: Coroutine[Any, Any, None]) -> None:
    """Run a generator process's `body`: with as many files as allowed, on uvloop if it is
    installed."""
    raise_fd_limit()
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        asyncio.run(body)
    else:
        uvloop.run(body)


def work(plan: Plan, parent: Connection) -> None:
    """The body of one generator process."""
    run_generator(_work(plan, parent))


def _room_number(name: str) -> int:
    """N of a room named `bench-N`: which server a room goes to, the same in every process."""
    return int(name.rsplit("-", 1)[1])
