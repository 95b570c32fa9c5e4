"""Shared fixtures: a real aiohttp server per test, real WebSocket peers, real processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aiohttp_chat.limits import DEFAULT_ROOM_CHANGES
from aiohttp_chat.server import CLUSTER, Settings, create_app

BOTH_LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
# The modules that write to transports run in-process on both loops; the server processes the
# other tests start run on uvloop, the default.
ON_BOTH_LOOPS = ("test_wire.py", "test_server.py")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loops `--loop` offers: the modules that write to transports run on both."""
    if item.path.name in ON_BOTH_LOOPS:
        return BOTH_LOOPS
    return {"asyncio": asyncio.new_event_loop}


TIMEOUT = 5.0
CLIENT_TIMEOUT = 15.0  # for a client process to say something
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TOKEN = re.compile(r"[A-Za-z0-9_-]{22,}")  # a resume token: 128 random bits or more, URL-safe


def moved(reply: Any) -> Any:
    """A `set_nick` or `join_room` success reply without its `resume` token, once it is
    checked to be there and well formed; any other reply as it is."""
    if not isinstance(reply, dict) or reply.get("success") is not True or "resume" not in reply:
        return reply
    assert TOKEN.fullmatch(reply["resume"]), reply
    return {key: value for key, value in reply.items() if key != "resume"}


def stamped(message: Any) -> Any:
    """A chat message or reply without its `id` and `time`, once they are checked to be there
    and well formed; any other message as it is."""
    if not isinstance(message, dict) or message.get("action") != "chat_message":
        return message
    if message.get("success") is False:
        return message
    assert isinstance(message.get("id"), str) and message["id"], message
    assert TIME.fullmatch(message.get("time", "")), message
    return {key: value for key, value in message.items() if key not in ("id", "time")}


def exactly(text: str) -> str:
    """A `pytest.raises(match=...)` pattern for exactly `text`."""
    return f"^{re.escape(text)}$"


class Peer:
    """A chat client as a test sees it: send requests, read replies and broadcasts.

    `ask` returns the reply to a request; broadcasts that arrive before it are kept, in order,
    for `recv`, which returns the next broadcast or message.
    """

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, nick: str, token: str | None = None
    ) -> None:
        self.ws = ws
        self.nick = nick
        self.token = token  # to resume with (the latest the server gave)
        self._kept: deque[Any] = deque()

    async def send(self, **request: Any) -> None:
        await self.ws.send_str(json.dumps(request))

    async def _next(self) -> Any:
        message = await self.ws.receive(timeout=TIMEOUT)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def recv(self) -> Any:
        return self._kept.popleft() if self._kept else await self._next()

    async def reply(self) -> Any:
        while "success" not in (message := await self._next()):
            self._kept.append(message)
        return message

    async def ask(self, **request: Any) -> Any:
        await self.send(**request)
        return await self.reply()

    async def broadcasts(self) -> list[Any]:
        """Every broadcast sent to this peer so far, and not yet read."""
        await self.ask(action="user_list", room="no-such-room")
        kept, self._kept = list(self._kept), deque()
        return kept

    async def drain(self) -> None:
        """Forget every message received so far."""
        await self.ask(action="user_list", room="no-such-room")
        self._kept.clear()

    async def assert_quiet(self) -> None:
        """Nothing was sent to this peer that a test has not read."""
        assert not self._kept, self._kept
        await self.send(action="user_list", room="no-such-room")
        assert await self._next() == {
            "action": "user_list",
            "success": True,
            "room": "no-such-room",
            "users": [],
        }

    async def set_nick(self, nick: str) -> None:
        reply = await self.ask(action="set_nick", nick=nick)
        assert moved(reply) == {"action": "set_nick", "success": True, "message": ""}
        self.nick, self.token = nick, reply["resume"]

    async def join(self, room: str) -> None:
        reply = await self.ask(action="join_room", room=room)
        assert moved(reply) == {"action": "join_room", "success": True, "message": ""}
        self.token = reply["resume"]


Connect = Callable[..., Awaitable[Peer]]


@pytest.fixture
def settings() -> Settings:
    return Settings()


def many_people(settings: Settings) -> Settings:
    """`settings` for tests in which many people connect from one address, 127.0.0.1: the
    budget of room changes per address is off, unless the test set one of its own."""
    if settings.room_changes != DEFAULT_ROOM_CHANGES:
        return settings
    return replace(settings, room_changes=0)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(many_people(settings)))


@pytest.fixture
async def connect(client: TestClient[Any, Any]) -> AsyncIterator[Connect]:
    """Open a /chat connection and read its `connecting` frame."""
    peers: list[Peer] = []

    async def open_on_client(**kwargs: Any) -> Peer:
        peers.append(await open_peer(client, **kwargs))
        return peers[-1]

    yield open_on_client
    for peer in peers:
        await peer.ws.close()


async def open_peer(client: TestClient[Any, Any], **kwargs: Any) -> Peer:
    """A /chat connection on `client`'s server, its `connecting` frame read."""
    ws = await client.ws_connect("/chat", **kwargs)
    first = json.loads((await ws.receive(timeout=TIMEOUT)).data)
    assert first["action"] == "connecting" and first["room"] == "Default", first
    return Peer(ws, first["user"], first["resume"])


# ------------------------------------------------------------------------ raw frames


class RawWebSocket:
    """A WebSocket client written by hand, for what a real client library will not do:
    frames sent in one write, unmasked frames, pongs read one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, path: str = "/chat") -> RawWebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    @staticmethod
    def frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
        """One final frame; masked (with a key that changes the bytes) unless told not to."""
        assert len(payload) < 126
        if not masked:
            return bytes((0x80 | opcode, len(payload))) + payload
        key = b"\x5a\xa5\x0f\xf0"
        body = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
        return bytes((0x80 | opcode, 0x80 | len(payload))) + key + body

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def read(self) -> tuple[int, bytes]:
        """The next frame's opcode and payload; (-1, b"") once the connection is closed."""
        try:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2))
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return -1, b""

    def close(self) -> None:
        self.writer.transport.abort()


PING, PONG, CLOSE = 0x9, 0xA, 0x8


# ------------------------------------------------------------------------ real processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """`count` different free ports (all held at once while they are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class ServerProcess:
    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        command = [sys.executable, "-m", "aiohttp_chat.server", "--host", "127.0.0.1"]
        command += ["--room-changes", "0"]  # many people from one address (see `many_people`)
        # A file, not a pipe: a pipe could fill up and block the server. Closed by the fixture.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port), *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for_port(self.port, self.proc)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def url(self, path: str = "/chat") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self, sig: int | None = signal.SIGINT) -> tuple[int, str, str]:
        """Send `sig` (None: send nothing) and wait for the exit."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=15)
        return self.proc.returncode, "", self.output()


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(*args: str, port: int | None = None) -> ServerProcess:
        server = ServerProcess(*args, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        server.log.close()


class RedisServer:
    """A real redis-server on a free port, which a test may stop and start again, empty."""

    cluster = False

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def pause(self) -> None:
        """Stop the server's processes in their tracks (SIGSTOP): a Redis that stalls."""
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.pids:
            os.kill(pid, signal.SIGCONT)

    @property
    def args(self) -> list[str]:
        """A server process's options to use it."""
        return ["--redis-url", self.url, *(["--redis-cluster"] if self.cluster else [])]


class RedisClusterServer(RedisServer):
    """A real three-master Redis Cluster on free ports (`redis-server --cluster-enabled`,
    joined by `redis-cli --cluster create`), which a test may stop and start again, empty."""

    cluster = True
    MASTERS = 3

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="redis-cluster-")
        ports = free_ports(2 * self.MASTERS)
        self.ports = list(zip(ports[::2], ports[1::2], strict=True))  # client, cluster bus
        self.port = self.ports[0][0]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.created = False
        try:
            self.start()
            addresses = [f"127.0.0.1:{port}" for port, _ in self.ports]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=30,
            )
            self.created = True
            self._wait_until_ok()
        except BaseException:
            self.remove()
            raise

    def start(self) -> None:
        self.procs = []
        for port, bus in self.ports:
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            command += ["--cluster-enabled", "yes", "--cluster-port", str(bus)]
            command += ["--cluster-config-file", f"nodes-{port}.conf", "--dir", self.dir]
            command += ["--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no"]
            self.procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        for (port, _), proc in zip(self.ports, self.procs, strict=True):
            wait_for_port(port, proc)  # a port taken meanwhile: it fails, and removes all
        if self.created:  # restarted: the nodes find each other again from their files
            self._wait_until_ok()

    def _wait_until_ok(self) -> None:
        deadline = time.monotonic() + 30
        for port, _ in self.ports:
            while True:
                info = subprocess.run(
                    ["redis-cli", "-p", str(port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                if "cluster_state:ok" in info:
                    break
                assert time.monotonic() < deadline, f"the cluster is not ok: {info}"
                time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]


@pytest.fixture(params=["one Redis", "Redis Cluster"])
def each_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """One Redis, then a three-master Redis Cluster: a module whose `redis_server` is this
    runs every test on both."""
    require_program("redis-server")
    if request.param == "one Redis":
        server = RedisServer()
        yield server
        server.stop()
    else:
        require_program("redis-cli")
        cluster = RedisClusterServer()
        yield cluster
        cluster.remove()


def require_program(name: str) -> None:
    """Skip the test without `name`, except in CI, where its absence is a failure."""
    if shutil.which(name) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    require_program("redis-server")
    server = RedisServer()
    yield server
    server.stop()


async def run_process(
    *args: str, input: str | bytes = "", limit: float = 20.0
) -> tuple[int, str, str]:
    """Run `python -m ...args` to the end without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    data = input.encode() if isinstance(input, str) else input
    out, err = await asyncio.wait_for(proc.communicate(data), limit)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class ClientProcess:
    """`python -m aiohttp_chat.client` with piped input kept open; its output line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def expect(self, text: str) -> list[str]:
        """Read until a line containing `text`; the lines read meanwhile, that one last."""
        assert self.proc.stdout is not None
        read: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), CLIENT_TIMEOUT)
            assert raw, f"the client ended before {text!r}; it said: {read}"
            read.append(raw.decode().rstrip("\n"))
            self.lines.append(read[-1])
            if text in read[-1]:
                return read

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()

    async def exit(self) -> tuple[int, str]:
        """Wait for the client to end by itself; the exit code and what it said on stderr."""
        assert self.proc.stderr is not None
        await asyncio.wait_for(self.proc.wait(), CLIENT_TIMEOUT)
        assert self.proc.returncode is not None
        return self.proc.returncode, (await self.proc.stderr.read()).decode()

    async def finish(self) -> tuple[int, str]:
        """End the input; the exit code and what was said on stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        out, err = await asyncio.wait_for(self.proc.communicate(), CLIENT_TIMEOUT)
        self.lines += out.decode().splitlines()
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


@pytest.fixture
async def start_client() -> AsyncIterator[Callable[..., Awaitable[ClientProcess]]]:
    started: list[ClientProcess] = []

    async def start(url: str, *args: str) -> ClientProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiohttp_chat.client",
            "--url",
            url,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(ClientProcess(proc))
        return started[-1]

    yield start
    for client in started:
        if client.proc.returncode is None:
            client.proc.kill()
            await client.proc.wait()


async def joined_peer(session: aiohttp.ClientSession, url: str, nick: str, room: str) -> Any:
    """A raw WebSocket peer named `nick` in `room`, its replies read."""
    ws = await session.ws_connect(url)
    await ws.receive_json(timeout=5)
    for request in ({"action": "set_nick", "nick": nick}, {"action": "join_room", "room": room}):
        await ws.send_json(request)
        while "success" not in (reply := await ws.receive_json(timeout=5)):
            pass
        assert reply["success"] is True, reply
    return ws


async def say(ws: Any, text: str) -> str:
    """Send a chat message; its id."""
    await ws.send_json({"action": "chat_message", "message": text})
    while "success" not in (reply := await ws.receive_json(timeout=5)):
        pass
    assert reply["success"] is True, reply
    message_id: str = reply["id"]
    return message_id


async def next_event(ws: Any, action: str) -> Any:
    while (message := await ws.receive_json(timeout=CLIENT_TIMEOUT))["action"] != action:
        pass
    return message


# ------------------------------------------------------------------------ cluster nodes

StartNode = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def node(
    redis_server: RedisServer, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> AsyncIterator[StartNode]:  # Redis first, so that it outlives the nodes
    """Start a server node (in this process, on its own port) on the shared Redis, or at
    `url` (a proxy to it); with no rate limit unless `settings` give one."""

    async def start(url: str | None = None, **settings: Any) -> TestClient[Any, Any]:
        options = {"redis_url": url or redis_server.url, "redis_cluster": redis_server.cluster}
        app = create_app(many_people(Settings(**{"rate_limit": 0, **options, **settings})))
        client = await aiohttp_client(app)
        await asyncio.wait_for(client.app[CLUSTER].subscribed.wait(), TIMEOUT)
        return client

    yield start


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------ a network to cut


class TcpProxy:
    """Forwards a free port on 127.0.0.1 to `target_port`; `cut` drops every connection
    (without a close frame: the network went away) and refuses new ones until `restore`.
    `cut(unnoticed=True)` leaves the server's side of each connection open and silent, as a
    network that went away without the server knowing (it notices at its next heartbeat)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.upstream: set[asyncio.StreamWriter] = set()  # the links to the server
        self.stranded: set[asyncio.StreamWriter] = set()  # left open by an unnoticed cut

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def cut(self, *, unnoticed: bool = False) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        if unnoticed:
            self.stranded |= self.upstream & self.links
        for writer in list(self.links - self.stranded):
            writer.transport.abort()
        self.links.clear()

    def close(self) -> None:
        for writer in self.stranded:
            writer.transport.abort()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.links |= {writer, up_writer}
        self.upstream.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            if writer not in self.stranded:
                writer.transport.abort()
            self.links.discard(writer)


@pytest.fixture
async def tcp_proxy() -> AsyncIterator[Callable[[int], Awaitable[TcpProxy]]]:
    proxies: list[TcpProxy] = []

    async def start(target_port: int) -> TcpProxy:
        proxies.append(TcpProxy(target_port))
        await proxies[-1].restore()
        return proxies[-1]

    yield start
    for proxy in proxies:
        await proxy.cut()
        proxy.close()


# ------------------------------------------------------------------------ metrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: TestClient[Any, Any]) -> Samples:
    """Every sample /metrics shows, by name and labels, parsed the way Prometheus does."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[f"aiohttp_chat_{name}", tuple(sorted(labels.items()))]
