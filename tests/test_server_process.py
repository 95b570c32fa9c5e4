"""`python -m aiohttp_chat.server` run as a real process, the way a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from aiohttp_chat.cluster.keeper import RENEW_SECONDS

from .support.network import free_port, wait_for_port
from .support.processes import run_process
from .support.redis import RedisServer
from .support.servers import ServerProcess

StartServer = Callable[..., ServerProcess]
SERVER = [sys.executable, "-m", "aiohttp_chat.server"]


async def test_help_lists_every_option_and_its_environment_variable() -> None:
    code, out, _ = await run_process("aiohttp_chat.server", "--help")
    assert code == 0
    for option in ("--host", "--port", "--heartbeat", "--max-frame-bytes"):
        assert option in out
    for option in ("--max-message-chars", "--log-level"):
        assert option in out
    for variable in ("AIOHTTP_CHAT_PORT", "AIOHTTP_CHAT_HEARTBEAT", "AIOHTTP_CHAT_LOG_LEVEL"):
        assert variable in out
    assert "(default: 127.0.0.0/8, ::1/128)" in out  # as one writes them, not Python's repr
    assert "Network(" not in out and "(default: ())" not in out and "None" not in out


async def test_every_option_has_its_environment_twin_and_a_readme_row() -> None:
    code, out, _ = await run_process("aiohttp_chat.server", "--help")
    assert code == 0
    options = set(re.findall(r"^  (--[a-z-]+)", out, re.MULTILINE)) - {"--help", "--no-compress"}
    rows = (Path(__file__).parent.parent / "README.md").read_text()
    rows = rows[rows.index("## Server configuration") : rows.index("## Running it in public")]
    assert len(options) > 25
    for option in sorted(options):
        variable = "AIOHTTP_CHAT_" + option[2:].upper().replace("-", "_")
        assert variable in out, option
        assert re.search(rf"^\|[^|]*`{option}[` ]", rows, re.MULTILINE), f"no README row: {option}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_closes_every_socket_with_going_away_and_exits_0(
    server_process: StartServer, sig: int
) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as session:
        chat = await session.ws_connect(server.url("/chat"))
        echo = await session.ws_connect(server.url("/echo"))
        assert (await chat.receive_json(timeout=5))["action"] == "connecting"
        server.proc.send_signal(sig)
        for ws in (chat, echo):
            message = await ws.receive(timeout=10)
            assert message.type is WSMsgType.CLOSE
            assert message.data == WSCloseCode.GOING_AWAY
    code, _, err = server.stop(None)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Listening on 127.0.0.1:" in err
    assert "connected as User" in err
    # what the server sent, not the client's answer to it
    assert "was disconnected by the server, code 1001" in err


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_chat_between_two_clients_and_quiet_logs(
    server_process: StartServer, loop: str
) -> None:
    server = server_process("--loop", loop)
    async with aiohttp.ClientSession() as session:
        alice = await session.ws_connect(server.url())
        bob = await session.ws_connect(server.url())
        await alice.receive_json(timeout=5)
        await bob.receive_json(timeout=5)
        await alice.receive_json(timeout=5)  # bob joined
        for i in range(20):
            await bob.send_json({"action": "chat_message", "message": f"hi {i}"})
        for i in range(20):
            assert (await alice.receive_json(timeout=5))["message"] == f"hi {i}"
        await bob.close()
        assert (await alice.receive_json(timeout=5))["action"] == "left"
        await alice.close()
    _, _, err = server.stop()
    assert "hi 1" not in err  # INFO logs connections, never messages
    assert err.count("connected as") == 2
    assert ("Running on uvloop" in err) is (loop == "uvloop")


async def test_the_default_loop_is_uvloop_when_installed(server_process: StartServer) -> None:
    _, _, err = server_process().stop()
    assert "Running on uvloop" in err


async def test_options_from_the_environment(server_process: StartServer) -> None:
    os.environ["AIOHTTP_CHAT_MAX_MESSAGE_CHARS"] = "5"
    try:
        server = server_process()
    finally:
        del os.environ["AIOHTTP_CHAT_MAX_MESSAGE_CHARS"]
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as ws:
        await ws.receive_json(timeout=5)
        await ws.send_str(json.dumps({"action": "chat_message", "message": "123456"}))
        reply = await ws.receive_json(timeout=5)
        assert reply["message"] == "Message must be a non-empty string of at most 5 characters."


def test_bad_option_value_is_a_usage_error() -> None:
    result = subprocess.run(
        [*SERVER, "--port", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--port" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--port", "70000"], "--port: must be a port from 0 to 65535 (0 takes any free port)"),
        (["--port", "-1"], "--port: must be a port from 0 to 65535"),
        (["--metrics-port", "0"], "--metrics-port: must be a port from 1 to 65535, got 0"),
        (["--redis-url", "notaurl"], "--redis-url: must be a redis://HOST[:PORT][/DB], rediss://"),
        (["--redis-url", "redis://h:99999/0"], "--redis-url: Port out of range 0-65535"),
        (["--port", "0", "--workers", "2", "--redis-url", "redis://h/0"], "a fixed --port"),
    ],
)
def test_a_port_or_redis_url_that_cannot_work_is_a_usage_error(
    args: list[str], reason: str
) -> None:
    """Refused at once, not wrapped by the kernel (70000 is 4464), failed late or as a
    traceback at the first request."""
    result = subprocess.run([*SERVER, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr


def test_port_0_logs_the_port_it_took_and_a_page_url_to_open() -> None:
    proc = subprocess.Popen(
        [*SERVER, "--host", "0.0.0.0", "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = next(line for line in proc.stderr if "Listening on" in line)
        port = int(line.split("Listening on 0.0.0.0:")[1].split(",")[0])
        assert port > 0 and f"the page at http://127.0.0.1:{port}/ " in line
        wait_for_port(port, proc)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)  # (and closes its stderr)


async def test_an_unreachable_redis_is_named_once_not_per_request(
    server_process: StartServer,
) -> None:
    """At start, and while it stays away, the log says which Redis (never its password);
    the requests that fail meanwhile are answered, not logged."""
    url = f"redis://chat:secret@127.0.0.1:{free_port()}/0"
    server = server_process("--redis-url", url)
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as ws:
        await ws.receive_json(timeout=10)
        for _ in range(5):
            await ws.send_json({"action": "chat_message", "message": "anyone?"})
            assert (await ws.receive_json(timeout=10))["success"] is False
    await asyncio.sleep(2 * RENEW_SECONDS)  # more rounds of the keeper
    _, _, err = server.stop()
    said = [line for line in err.splitlines() if "is unreachable" in line]
    shown = f"redis://chat:***@127.0.0.1:{url.rsplit(':', 1)[1]}"
    assert len(said) == 1 and shown in said[0] and "WARNING" in said[0], err
    assert "secret" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("AIOHTTP_CHAT_PORT", "abc", "invalid port value"),
        ("AIOHTTP_CHAT_HEARTBEAT", "-1", "must be 0 (off) or more, got -1"),
        ("AIOHTTP_CHAT_LOG_LEVEL", "loud", "invalid choice (choose from DEBUG, INFO, WARNING"),
        ("AIOHTTP_CHAT_COMPRESS", "maybe", "must be 1 or 0"),
    ],
)
def test_a_bad_environment_variable_is_named(variable: str, value: str, reason: str) -> None:
    result = subprocess.run(
        SERVER, capture_output=True, text=True, timeout=30, env={**os.environ, variable: value}
    )
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("python -m aiohttp_chat.server: error: environment variable ")
    assert f"{variable}={value!r}: {reason}" in last


def test_the_command_line_wins_over_a_bad_environment_variable() -> None:
    result = subprocess.run(
        [*SERVER, "--port", "1", "--host", "256.0.0.1"],  # fails to listen, after parsing
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "AIOHTTP_CHAT_PORT": "abc"},
    )
    assert result.returncode == 1, result.stderr
    assert "Cannot serve on 256.0.0.1:1" in result.stderr


def _run_beside_a_listener(busy: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The server run to its end on 127.0.0.1 while another socket listens on `busy`."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        return subprocess.run(
            [*SERVER, "--host", "127.0.0.1", *args], capture_output=True, text=True, timeout=30
        )


@pytest.mark.parametrize("taken", ["port", "metrics port of worker 1"])
def test_workers_on_a_taken_port_all_stop_and_say_which(
    redis_server: RedisServer, taken: str
) -> None:
    """One worker that cannot listen stops them all within seconds, exit 1, and the log
    names the port that was taken (a worker's --metrics-port is PORT+i)."""
    port, metrics_port = free_port(), free_port()
    while free_port() == metrics_port + 1:
        pass
    busy = port if taken == "port" else metrics_port + 1
    result = _run_beside_a_listener(
        busy, "--port", str(port), "--workers", "2", "--metrics-port", str(metrics_port),
        "--redis-url", redis_server.url,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"Cannot serve on 127.0.0.1:{busy}: Address already in use" in result.stderr
    assert "Workers stopped with" in result.stderr and "Traceback" not in result.stderr


def test_a_node_whose_metrics_port_is_taken_leaves_redis_and_exits(
    redis_server: RedisServer,
) -> None:
    """Its start-up fails after it joined the cluster: it stops what started (its keeper
    too, whose cancel a Redis client could take for a failure, and which kept it alive)."""
    busy = free_port()
    result = _run_beside_a_listener(
        busy, "--port", str(free_port()), "--metrics-port", str(busy),
        "--redis-url", redis_server.url,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"Cannot serve on 127.0.0.1:{busy}: Address already in use" in result.stderr


def test_port_in_use_exits_1_with_a_clear_message(server_process: StartServer) -> None:
    server = server_process()
    result = subprocess.run(
        [*SERVER, "--host", "127.0.0.1", "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "Cannot serve on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
