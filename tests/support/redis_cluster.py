"""A real three-master Redis Cluster on free ports (`redis_cluster`), `each_redis`: a test
run on one Redis, then on a cluster, and `SlotMove`: a slot moved between its masters."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import MovedError

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


@pytest.fixture
def redis_cluster() -> Iterator[RedisClusterServer]:
    """A three-master Redis Cluster for the test (a module may make it its `redis_server`)."""
    require_program("redis-server")
    require_program("redis-cli")
    cluster = RedisClusterServer()
    yield cluster
    cluster.remove()


class SlotMove:
    """One hash slot moved from the master that holds it to another, step by step as an
    operator (or `redis-cli --cluster reshard`) moves it, so that a test can act between."""

    def __init__(self, cluster: RedisClusterServer, slot: int) -> None:
        self.cluster, self.slot = cluster, slot
        self.clients = [aioredis.Redis(host="127.0.0.1", port=port) for port, _ in cluster.ports]
        self.ids: list[bytes] = []
        self.source = self.target = self.clients[0]

    async def __aenter__(self) -> SlotMove:
        self.ids = [await client.execute_command("CLUSTER", "MYID") for client in self.clients]
        owners = [client for client in self.clients if await self._holds(client)]
        assert len(owners) == 1, owners
        self.source = owners[0]
        self.target = next(client for client in self.clients if client is not self.source)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self.clients:
            await client.aclose()

    async def _holds(self, client: aioredis.Redis) -> bool:
        """Whether `client`'s master holds the slot (the others answer MOVED)."""
        try:
            await client.execute_command("GET", self.probe)
        except MovedError:
            return False
        return True

    @property
    def probe(self) -> bytes:
        """A key in the slot: `{TAG}` with a tag of that slot."""
        tag = next(str(n) for n in range(100_000) if key_slot(str(n).encode()) == self.slot)
        return f"{{{tag}}}probe".encode()

    def _id(self, client: aioredis.Redis) -> bytes:
        return self.ids[self.clients.index(client)]

    async def begin(self) -> None:
        """The target imports the slot and the source migrates it: commands for keys the
        source no longer has are ASKed to the target."""
        slot, source, target = self.slot, self.source, self.target
        await target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self._id(source))
        await source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self._id(target))

    async def migrate_keys(self) -> int:
        """Move every key of the slot to the target, in one MIGRATE; how many."""
        keys = await self.source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 10_000)
        if keys:
            port = self.cluster.ports[self.clients.index(self.target)][0]
            await self.source.execute_command(
                "MIGRATE", "127.0.0.1", port, "", 0, 5000, "KEYS", *keys
            )
        return len(keys)

    async def finish(self) -> None:
        """The slot is the target's, told to the target first, then the source, then the
        other masters (as the Redis Cluster specification orders it)."""
        rest = [c for c in self.clients if c is not self.source and c is not self.target]
        for client in (self.target, self.source, *rest):
            await client.execute_command(
                "CLUSTER", "SETSLOT", self.slot, "NODE", self._id(self.target)
            )

    async def keys_at(self, client: aioredis.Redis) -> int:
        count: int = await client.execute_command("CLUSTER", "COUNTKEYSINSLOT", self.slot)
        return count
