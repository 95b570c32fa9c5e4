"""A real redis-server on a free port (`redis_server`), which a test may stop, pause and
start again, empty."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from .needs import require_program
from .network import free_port, wait_for_port


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


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """One real Redis for the test (a module may make this `each_redis` instead)."""
    require_program("redis-server")
    server = RedisServer()
    yield server
    server.stop()
