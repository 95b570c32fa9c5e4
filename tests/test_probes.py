"""/healthz, /metrics and the JSON log lines, on real servers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aiohttp_chat.probes import health_report
from aiohttp_chat.server import CHAT_ROOMS, Settings, create_app

from .support.checks import eventually
from .support.network import free_port, wait_for_port
from .support.peers import Connect, open_peer
from .support.prometheus import scrape, value
from .support.redis import RedisServer
from .support.servers import ServerProcess, StartNode


async def health(client: TestClient[Any, Any]) -> tuple[int, Any]:
    response = await client.get("/healthz")
    return response.status, await response.json()


# ------------------------------------------------------------------------ /healthz


async def test_healthz_counts_connections_and_rooms(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    assert await health(client) == (200, {"status": "ok", "connections": 0, "rooms": 0})
    alice, bob = await connect(), await connect()
    await bob.join("Lounge")
    echo = await client.ws_connect("/echo")
    assert await health(client) == (200, {"status": "ok", "connections": 3, "rooms": 2})
    await echo.close()
    for _ in range(30):  # never rate limited: a load balancer polls as it likes
        assert (await health(client))[0] == 200
    await alice.ws.close()


async def test_healthz_with_redis_follows_redis(node: StartNode, redis_server: RedisServer) -> None:
    client = await node()

    async def says(status: int, body: dict[str, Any]) -> bool:
        return await health(client) == (status, body)

    ok = {"status": "ok", "connections": 0, "rooms": 0, "redis": "ok"}
    await eventually(lambda: says(200, ok), 10)
    redis_server.stop()
    degraded = {"status": "degraded", "connections": 0, "rooms": 0, "redis": "unreachable"}
    await eventually(lambda: says(503, degraded), 10)
    samples = await scrape(client)
    assert value(samples, "redis_up") == 0
    redis_server.start()
    await eventually(lambda: says(200, ok), 10)
    samples = await scrape(client)
    assert value(samples, "redis_up") == 1
    assert samples["aiohttp_chat_redis_round_trip_seconds_count", ()] > 0


# ------------------------------------------------------------------------ /metrics


@pytest.mark.parametrize("settings", [Settings(max_connections_per_ip=4, max_frame_bytes=1024)])
async def test_metrics_follow_a_scripted_session(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    before = await scrape(client)
    assert value(before, "chat_messages_total") == 0
    assert ("process_cpu_seconds_total", ()) in before  # the library's, for free
    assert ("process_resident_memory_bytes", ()) in before

    alice, bob = await connect(), await connect()
    await alice.recv()
    for text in ("one", "two"):
        await alice.ask(action="chat_message", message=text)
    await alice.ask(action="set_nick", nick="x")  # refused
    await alice.ask(action="history")
    await alice.ask(action="dance")  # unknown: counted as other
    echo = await client.ws_connect("/echo")

    samples = await scrape(client)
    assert value(samples, "connections", endpoint="chat") == 2
    assert value(samples, "connections", endpoint="echo") == 1
    assert value(samples, "rooms") == 1
    assert value(samples, "chat_messages_total") == 2
    assert value(samples, "deliveries_total") >= 2  # bob got both (and alice bob's join)
    assert value(samples, "requests_total", action="chat_message", outcome="ok") == 2
    assert value(samples, "requests_total", action="set_nick", outcome="refused") == 1
    assert value(samples, "requests_total", action="history", outcome="ok") == 1
    assert value(samples, "requests_total", action="other", outcome="refused") == 1
    assert value(samples, "history_requests_total") == 1
    history = client.app[CHAT_ROOMS].history
    assert value(samples, "history_rooms") == 1
    assert value(samples, "history_bytes") == history.bytes > 0

    # refused handshakes: a foreign origin, then one too many from this address
    response = await client.get("/chat", headers={**_HANDSHAKE, "Origin": "https://evil.example"})
    assert response.status == 403
    carol = await open_peer(client)  # the 4th: alice, bob, echo, carol
    response = await client.get("/chat", headers=_HANDSHAKE)
    assert response.status == 429

    # a flood: refused, then closed
    for i in range(45):
        await carol.send(action="chat_message", message=f"flood {i}")
    while (await carol.ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
        pass
    # a frame too big; a polite leave; a vanished peer
    await bob.ws.send_str("x" * 2000)
    while (message := await bob.ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
        pass  # what it was sent before
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1009)
    await echo.close()
    await alice.ws.close()
    dave = await open_peer(client)
    connection = dave.ws._response.connection
    assert connection is not None and connection.transport is not None
    connection.transport.abort()
    await asyncio.sleep(0.2)

    after = await scrape(client)
    assert value(after, "handshakes_refused_total", reason="origin") == 1
    assert value(after, "handshakes_refused_total", reason="per_address") == 1
    assert value(after, "handshakes_refused_total", reason="full") == 0
    limited = value(after, "requests_total", action="chat_message", outcome="rate_limited")
    assert limited == 20  # the 21st refusal closed it instead
    assert value(after, "disconnects_total", reason="flooding") == 1
    assert value(after, "disconnects_total", reason="frame_too_big") == 1
    assert value(after, "disconnects_total", reason="polite") == 1
    assert value(after, "disconnects_total", reason="vanished") == 1
    assert value(after, "disconnects_total", reason="too_slow") == 0  # see test_frames
    assert value(after, "connections", endpoint="chat") == 0
    assert ("aiohttp_chat_redis_up", ()) not in after  # no Redis here: no such series


_HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def test_metrics_only_for_the_allowed_networks(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """The test connects from a second loopback address, 127.0.0.2."""
    client = await aiohttp_client(create_app(Settings()))
    url = client.make_url("/metrics")
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as elsewhere:
        assert (await elsewhere.get(url)).status == 200  # loopback, all of 127.0.0.0/8
    narrow = await aiohttp_client(create_app(Settings(metrics_from=(_net("127.0.0.1/32"),))))
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as elsewhere:
        refused = await elsewhere.get(narrow.make_url("/metrics"))
        assert (refused.status, await refused.text()) == (
            403,
            "Metrics are not served to your address.",
        )
        assert (await elsewhere.get(narrow.make_url("/healthz"))).status == 200  # for everyone
    assert (await narrow.get("/metrics")).status == 200  # from 127.0.0.1


def _net(text: str) -> Any:
    import ipaddress

    return ipaddress.ip_network(text)


async def test_metrics_port_and_json_logs(server_process: Callable[..., ServerProcess]) -> None:
    metrics_port = free_port()
    server = server_process("--metrics-port", str(metrics_port), "--log-format", "json")
    wait_for_port(metrics_port, server.proc)
    async with aiohttp.ClientSession() as session:
        for path in ("/metrics", "/healthz"):
            response = await session.get(f"http://127.0.0.1:{metrics_port}{path}")
            assert response.status == 200, path
        async with session.ws_connect(server.url()) as ws:
            await ws.receive_json(timeout=5)
            await ws.send_json({"action": "set_nick", "nick": "Logged"})
            await ws.receive_json(timeout=5)
    code, _, output = server.stop(signal.SIGTERM)
    assert code == 0
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert line["time"].endswith("Z") and line["level"] in ("INFO", "WARNING")
    connection_lines = [line for line in lines if "address" in line]
    assert {line["nick"] for line in connection_lines} >= {"Logged"}
    assert all(line["address"] == "127.0.0.1" and line["room"] for line in connection_lines)


def _workers(port: int, metrics_port: int, redis_url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "aiohttp_chat.server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "2", "--redis-url", redis_url]
    command += ["--metrics-port", str(metrics_port), "--room-changes", "0"]  # 20 from here
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_each_worker_is_its_own_metrics_target(redis_server: RedisServer) -> None:
    port, metrics_port = free_port(), free_port()
    while free_port() == metrics_port + 1:  # the next port must be free too, most likely is
        pass
    proc = _workers(port, metrics_port, redis_server.url)
    try:
        wait_for_port(port, proc)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            chats = [await session.ws_connect(f"ws://127.0.0.1:{port}/chat") for _ in range(20)]
            for ws in chats:
                await ws.receive_json(timeout=5)
            counts = []
            for target in (metrics_port, metrics_port + 1):
                wait_for_port(target, proc)
                response = await session.get(f"http://127.0.0.1:{target}/metrics")
                families = text_string_to_metric_families(await response.text())
                counts.append(
                    next(
                        sample.value
                        for family in families
                        for sample in family.samples
                        if sample.name == "aiohttp_chat_connections"
                        and sample.labels == {"endpoint": "chat"}
                    )
                )
            for ws in chats:
                await ws.close()
        # The shared port spread the 20 over the workers; each target counts its own only.
        assert sum(counts) == 20, counts
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_health_is_degraded_only_when_the_redis_it_depends_on_is_unreachable() -> None:
    assert health_report(3, 2, None) == (True, {"status": "ok", "connections": 3, "rooms": 2})
    assert health_report(3, 2, True) == (
        True,
        {"status": "ok", "connections": 3, "rooms": 2, "redis": "ok"},
    )
    assert health_report(0, 0, False) == (
        False,
        {"status": "degraded", "connections": 0, "rooms": 0, "redis": "unreachable"},
    )
