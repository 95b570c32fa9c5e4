"""Real servers: one in this process per test (`client`, and `connect` to open peers on
it), cluster nodes on a shared Redis (`node`), and server processes (`server_process`)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aiohttp_chat.config import Settings
from aiohttp_chat.limits import DEFAULT_ROOM_CHANGES
from aiohttp_chat.server import CLUSTER, create_app

from .network import free_port, wait_for_port
from .peers import TIMEOUT, Connect, Peer, open_peer
from .redis import RedisServer

AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]
StartNode = Callable[..., Awaitable[TestClient[Any, Any]]]


def many_people(settings: Settings) -> Settings:
    """`settings` for tests in which many people connect from one address, 127.0.0.1: the
    budget of room changes per address is off, unless the test set one of its own."""
    if settings.room_changes != DEFAULT_ROOM_CHANGES:
        return settings
    return replace(settings, room_changes=0)


@pytest.fixture
def settings() -> Settings:
    """The settings of `client`'s server; a test parametrizes it to give its own."""
    return Settings()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random | None:
    """What `client`'s server draws default nicks from (None: the `random` module). A test
    gives its own with `parametrize("rng", [make], indirect=True)`: `make()` makes a fresh
    one for each run (a test runs on both event loops)."""
    make: Callable[[], random.Random] | None = getattr(request, "param", None)
    return None if make is None else make()


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, rng: random.Random | None
) -> TestClient[Any, Any]:
    """A real server in this process, on a free port, with `settings` (and `rng`)."""
    return await aiohttp_client(create_app(many_people(settings), rng=rng))


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


@pytest.fixture
async def node(
    redis_server: RedisServer, aiohttp_client: AiohttpClient
) -> AsyncIterator[StartNode]:  # Redis first, so that it outlives the nodes
    """Start a server node (in this process, on its own port) on the shared Redis, or at
    `url` (a proxy to it); with no rate limit unless `settings` give one."""

    async def start(
        url: str | None = None, rng: random.Random | None = None, **settings: Any
    ) -> TestClient[Any, Any]:
        options = {"redis_url": url or redis_server.url, "redis_cluster": redis_server.cluster}
        settings = {"rate_limit": 0, **options, **settings}
        app = create_app(many_people(Settings(**settings)), rng=rng)
        client = await aiohttp_client(app)
        await asyncio.wait_for(client.app[CLUSTER].subscribed.wait(), TIMEOUT)
        return client

    yield start


# ------------------------------------------------------------------------ processes


class ServerProcess:
    """`python -m aiohttp_chat.server` on a free port (or `port`), its output kept."""

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
    """Start server processes; those still running are killed after the test."""
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
