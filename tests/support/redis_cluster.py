"""A real three-master Redis Cluster on free ports, and `each_redis`: a test run on one
Redis, then on a cluster."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from .needs import require_program
from .network import free_ports, wait_for_port
from .redis import RedisServer


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
