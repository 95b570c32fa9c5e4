"""Connections before they are WebSockets: the deadline, the pending caps, the file limit,
bad requests, all against the server as `main()` runs it (`server.listening`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from aiohttp_chat.handshakes import OTHER_FILES, HttpLog, capacity
from aiohttp_chat.metrics import Stats
from aiohttp_chat.server import HANDSHAKES, Settings, create_app, listening

from .support.network import free_port
from .support.servers import many_people

Listen = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
async def listen() -> AsyncIterator[Listen]:
    """Serve a new app on 127.0.0.1 as `main()` does; its port and the app."""
    async with AsyncExitStack() as stack:

        async def start(**settings: Any) -> tuple[int, Any]:
            app = create_app(many_people(Settings(host="127.0.0.1", **settings)))
            server = await stack.enter_async_context(listening(app, 0))
            port: int = server.sockets[0].getsockname()[1]
            return port, app

        yield start


async def _open(port: int, source: str = "127.0.0.2") -> tuple[Any, Any]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before it closed the connection (it must, within `within`)."""
    try:
        return await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        return b""


async def _chat_and_health(port: int) -> None:
    """A client from 127.0.0.1 can open a WebSocket and read /healthz."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"ws://127.0.0.1:{port}/chat") as ws:
            assert (await ws.receive_json(timeout=5))["action"] == "connecting"
        async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status == 200


# ------------------------------------------------------------------------ the deadline


async def test_silent_sockets_are_capped_per_address_and_cut_at_the_deadline(
    listen: Listen,
) -> None:
    port, app = await listen(max_pending_per_ip=10, handshake_timeout=1)
    silent = [await _open(port) for _ in range(30)]  # never a byte
    answers = await asyncio.gather(*(_closed_by_server(r, 5) for r, _ in silent[10:]))
    for answer in answers:  # at once, before the request: a clear HTTP answer
        assert answer.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), answer
        assert answer.endswith(b"\r\n\r\nToo many connections from your address.\n")
    assert app[HANDSHAKES].by_address == {"127.0.0.2": 10}
    await _chat_and_health(port)  # the others are not locked out meanwhile
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(*(_closed_by_server(r, 5) for r, _ in silent[:10])) == [b""] * 10
    assert asyncio.get_running_loop().time() - started < 2  # cut at the deadline, 1 s
    stats = app[HANDSHAKES].stats
    assert (stats.handshakes_timed_out, stats.handshakes_refused["pending_per_address"]) == (10, 20)
    assert app[HANDSHAKES].pending == 0
    for _, writer in silent:
        writer.close()


async def test_the_metrics_port_is_guarded_like_the_chats(listen: Listen) -> None:
    """--metrics-port holds the same process's files: its silent sockets are capped and cut
    as the chat port's are, and counted with them."""
    metrics_port = free_port()
    _, app = await listen(metrics_port=metrics_port, max_pending_per_ip=2, handshake_timeout=1)
    silent = [await _open(metrics_port) for _ in range(3)]
    assert (await _closed_by_server(silent[2][0], 5)).startswith(b"HTTP/1.1 429 ")
    assert await asyncio.gather(*(_closed_by_server(r, 5) for r, _ in silent[:2])) == [b""] * 2
    assert app[HANDSHAKES].stats.handshakes_timed_out == 2
    for _, writer in silent:
        writer.close()


async def test_a_request_dripped_a_byte_at_a_time_gets_no_longer_than_a_silent_one(
    listen: Listen,
) -> None:
    port, app = await listen(handshake_timeout=1)
    reader, writer = await _open(port)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    started = asyncio.get_running_loop().time()
    for byte in request[:-1]:
        writer.write(bytes([byte]))
        await asyncio.sleep(0.1)
        if reader.at_eof():
            break
    assert await _closed_by_server(reader, 5) == b""
    assert 0.9 <= asyncio.get_running_loop().time() - started < 2  # (counted from the accept)
    assert app[HANDSHAKES].stats.handshakes_timed_out == 1
    writer.close()


async def test_an_answered_request_meets_the_deadline_and_keep_alive_ends_idle_connections(
    listen: Listen,
) -> None:
    port, app = await listen(handshake_timeout=0.5)
    reader, writer = await _open(port)
    for _ in range(2):  # two requests on one connection, each answered at once
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 OK")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        await asyncio.sleep(0.3)
    assert app[HANDSHAKES].pending == 1  # still plain HTTP: still pending
    assert await _closed_by_server(reader, 5) == b""  # idle: closed by aiohttp's keep-alive
    assert app[HANDSHAKES].stats.handshakes_timed_out == 0  # it did send its requests
    assert app[HANDSHAKES].pending == 0
    writer.close()


async def test_a_client_that_never_reads_its_answers_is_cut(listen: Listen) -> None:
    """Requests sent all at once and answers never read: aiohttp waits to write for as long
    as it takes, holding a pending slot; the deadline after an answer cuts it."""
    port, app = await listen(handshake_timeout=0.5)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow link: it fills soon
    sock.setblocking(False)
    sock.bind(("127.0.0.2", 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    _, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2000)
    started = asyncio.get_running_loop().time()
    while app[HANDSHAKES].pending:
        assert asyncio.get_running_loop().time() - started < 15, "never cut"
        await asyncio.sleep(0.1)
    keep_alive = app[HANDSHAKES].keep_alive
    assert asyncio.get_running_loop().time() - started >= keep_alive  # not before
    assert app[HANDSHAKES].stats.handshakes_timed_out == 1
    writer.transport.abort()


async def test_a_connection_that_stays_plain_http_is_cut_after_its_lifetime(
    listen: Listen,
) -> None:
    """A poller of /healthz that never lets its connection idle still gives its slot back."""
    port, app = await listen(handshake_timeout=0.5, http_lifetime=2)
    reader, writer = await _open(port)
    started, answers = asyncio.get_running_loop().time(), 0
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while asyncio.get_running_loop().time() - started < 10:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
            answers += 1
            await asyncio.sleep(0.2)
    assert 1.5 < asyncio.get_running_loop().time() - started < 4 and answers > 3
    assert app[HANDSHAKES].pending == 0
    writer.close()


async def test_a_websocket_is_no_longer_pending_and_outlives_the_deadline(
    listen: Listen,
) -> None:
    port, app = await listen(max_pending_per_ip=2, handshake_timeout=0.5)
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(f"ws://127.0.0.1:{port}/chat") for _ in range(5)]
        assert app[HANDSHAKES].pending == 0  # five open, though two may be pending
        await asyncio.sleep(1.5)  # past the deadline, and past the keep-alive timeout
        for ws in sockets:
            assert (await ws.receive_json(timeout=5))["action"] == "connecting"
        await sockets[0].send_json({"action": "chat_message", "message": "still here"})
        while "success" not in (reply := await sockets[0].receive_json(timeout=5)):
            pass
        assert reply["message"] == "still here"
        while (heard := await sockets[1].receive_json(timeout=5))["action"] != "chat_message":
            pass  # the others' joins
        assert heard["message"] == "still here"
        for ws in sockets:
            await ws.close()


async def test_the_cap_on_all_pending_connections(listen: Listen) -> None:
    port, app = await listen(max_pending=6, max_pending_per_ip=0, handshake_timeout=5)
    held = [await _open(port, f"127.0.0.{2 + n % 3}") for n in range(6)]
    reader, writer = await _open(port, "127.0.0.9")
    answer = await _closed_by_server(reader, 5)
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 5\r\n" in answer
    assert answer.endswith(b"Server full, try again later.\n")
    assert app[HANDSHAKES].stats.handshakes_refused["pending_full"] == 1
    for _, held_writer in [*held, (reader, writer)]:
        held_writer.close()


# ------------------------------------------------------------------------ bad requests


BAD_REQUESTS = [
    b"GARBAGE\r\n\r\n",  # not HTTP at all
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n",  # a line too long
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS to a plain port
]


async def test_a_malformed_request_is_one_line_at_debug_and_counted(
    listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    port, app = await listen()
    for level in (logging.INFO, logging.DEBUG):
        caplog.clear()
        with caplog.at_level(level):
            for request in BAD_REQUESTS:
                reader, writer = await _open(port)
                writer.write(request)
                assert (await _closed_by_server(reader, 5)).startswith(b"HTTP/1.0 400 ")
                writer.close()
        http = [r for r in caplog.records if r.name == "aiohttp.server"]
        assert all(record.exc_info is None and record.levelno == logging.DEBUG for record in http)
        assert len(http) == (0 if level == logging.INFO else len(BAD_REQUESTS)), http
    assert app[HANDSHAKES].stats.bad_requests == 2 * len(BAD_REQUESTS)


def test_a_client_gone_mid_handshake_is_one_line_and_a_crash_stays_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp reports a handshake whose client hung up before the answer with a traceback
    at ERROR; a thousand such clients made a thousand. A real bug still gets its traceback."""
    log = HttpLog(Stats())
    with caplog.at_level(logging.DEBUG):
        try:
            raise ConnectionResetError("Cannot write to closing transport")
        except ConnectionResetError as gone:  # as aiohttp calls it
            log.exception("Error handling request from %s", "127.0.0.9", exc_info=gone)
        try:
            raise KeyError("a bug")
        except KeyError as bug:
            log.exception("Unhandled exception", exc_info=bug)
    gone_line, bug_line = caplog.records
    assert (gone_line.levelno, gone_line.exc_info) == (logging.DEBUG, None)
    assert gone_line.getMessage() == (
        "Error handling request from 127.0.0.9: the client went away before its answer"
    )
    assert bug_line.levelno == logging.ERROR and bug_line.exc_info is not None
    assert log.stats.bad_requests == 0  # not a malformed request


# ------------------------------------------------------------------------ open files


@pytest.mark.parametrize(
    ("files", "asked", "fitted"),
    [
        (20_000, (10_000, 1024), (10_000, 1024)),  # room for both
        (1024, (10_000, 1024), (576, 192)),  # the common default: a quarter for pending
        (1024, (0, 0), (768, 0)),  # caps off: as many sockets as the files allow
        (OTHER_FILES + 8, (10_000, 1024), (6, 2)),
    ],
)
def test_the_caps_fit_the_open_files(
    files: int, asked: tuple[int, int], fitted: tuple[int, int]
) -> None:
    assert capacity(files, *asked) == fitted


async def _listening(port: int) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return


def _limit_open_files(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _server_on_files(soft: int, hard: int, *options: str) -> tuple[int, Any]:
    """A server process allowed `soft` open files (at most `hard`); its port and process."""
    port = free_port()
    command = [sys.executable, "-m", "aiohttp_chat.server", "--host", "127.0.0.1"]
    command += ["--port", str(port), *options]
    proc = await asyncio.create_subprocess_exec(
        *command, stderr=subprocess.PIPE, preexec_fn=_limit_open_files(soft, hard)
    )
    await asyncio.wait_for(_listening(port), 15)
    return port, proc


async def _stopped(proc: Any) -> str:
    """Stop the server process; what it logged."""
    proc.terminate()
    err = (await asyncio.wait_for(proc.stderr.read(), 15)).decode()
    await proc.wait()
    return str(err)


async def test_1100_silent_sockets_lock_nobody_out_of_a_server_of_1024_files() -> None:
    """The attack as it was made: 1,100 connections that never send a byte, from one
    address, to a default server that may open the common 1,024 files."""
    port, proc = await _server_on_files(1024, 1024)
    silent: list[tuple[Any, Any]] = []
    try:
        silent = await asyncio.gather(*(_open(port) for _ in range(1100)))
        await _chat_and_health(port)  # a new client and /healthz, meanwhile
        refused = await asyncio.gather(*(_closed_by_server(r, 10) for r, _ in silent))
        assert sum(answer.startswith(b"HTTP/1.1 429 ") for answer in refused) >= 1100 - 64
        await _chat_and_health(port)  # and after
    finally:
        for _, writer in silent:
            writer.close()
        err = await _stopped(proc)
    assert "Traceback" not in err and "Too many open files" not in err, err


async def test_a_full_server_on_few_files_still_answers_healthz() -> None:
    """With 400 open files at most, the server raises its soft limit to them, says what it
    lowered, and answers /healthz though it holds as many WebSockets as it accepts."""
    port, proc = await _server_on_files(
        200, 400, "--max-connections-per-ip", "0", "--room-changes", "0"
    )
    try:
        fitted = capacity(400, 10_000, 1024)[0]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            url = f"ws://127.0.0.1:{port}/chat"
            sockets = [await session.ws_connect(url) for _ in range(fitted)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as full:
                await session.ws_connect(url)
            assert full.value.status == 503
            async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200
                assert (await health.json())["connections"] == fitted
            for ws in sockets:
                await ws.close()
    finally:
        err = await _stopped(proc)
    assert "Raised the limit of open files from 200 to 400" in err, err
    assert f"--max-connections 10000 lowered to {fitted}: this process may open 400 files" in err
    assert "Traceback" not in err and "Too many open files" not in err, err
