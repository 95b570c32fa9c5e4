"""One hostile client, with nothing but sockets, doing what a server must survive.

Each attack runs in a process of its own, from a loopback address of its own (127.0.0.2: the
polite clients come from others), for as long as it is told, and starts again whatever the
server does to it (closes it, refuses it). What it managed is sent back as counts. The
`attack` scenario (`runner.attack`) measures the polite clients beside it.

- `ping-flood`: one WebSocket sends 125-byte pings as fast as it can and never reads;
- `silent`: 1,100 TCP connections that never send a byte, each opened again 5 s after the
  server closed it;
- `drip`: the same, sending one byte of a request header a second;
- `churn`: 20 WebSockets, each within its request rate, in and out of a polite room;
- `bad-requests`: malformed HTTP requests, one connection each, as fast as it can;
- `history-rooms`: one message in each of 200,000 rooms (on a server that lets it);
- `spin`: the control, which only keeps a core busy: what the attacker process alone does
  to the polite clients' figures on a machine of two cores, without touching the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from typing import Final
from urllib.parse import urlsplit

from .wsclient import PING, client_frame

SOURCE: Final = "127.0.0.2"
SOCKETS: Final = 1100  # past the common limit of 1,024 open files
CHURNERS: Final = 20
HISTORY_ROOMS: Final = 200_000
_HANDSHAKE: Final = (
    "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: YWlvaHR0cC1jaGF0LWJuYw==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
Attack = Callable[[str, int, float, Counter[str]], Coroutine[None, None, None]]


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, local_addr=(SOURCE, 0))


async def _websocket(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _open(host, port)
    writer.write(_HANDSHAKE.format(host=f"{host}:{port}").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


async def ping_flood(host: str, port: int, until: float, counts: Counter[str]) -> None:
    batch = client_frame(PING, b"p" * 125) * 500
    while time.monotonic() < until:
        try:
            _, writer = await _websocket(host, port)  # read from no more: it never reads
            counts["connections"] += 1
            while time.monotonic() < until:
                writer.write(batch)
                await writer.drain()  # blocks once the server stops reading
                counts["pings"] += 500
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            counts["closed_by_server"] += 1
            await asyncio.sleep(0.01)


REOPEN_SECONDS: Final = 5.0  # a socket the server refused or cut is tried again after this


async def _hold(
    host: str, port: int, until: float, counts: Counter[str], drip: bytes | None
) -> None:
    """One connection that never completes a request, held; opened again `REOPEN_SECONDS`
    after the server closed it, so that 1,100 of them keep trying to hold 1,100 sockets."""
    while time.monotonic() < until:
        try:
            reader, writer = await _open(host, port)
        except OSError:
            counts["connect_failed"] += 1
            await asyncio.sleep(REOPEN_SECONDS)
            continue
        counts["connections"] += 1
        answer = asyncio.ensure_future(reader.read(200))
        try:
            for byte in drip or b"":
                if answer.done() or time.monotonic() >= until:
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answer), max(0.0, until - time.monotonic()))
            if answer.done():
                refused = not answer.cancelled() and answer.exception() is None and answer.result()
                counts["refused_at_once" if refused else "cut_by_server"] += 1
        except OSError:
            counts["cut_by_server"] += 1
        finally:
            answer.cancel()
            writer.transport.abort()
        await asyncio.sleep(REOPEN_SECONDS)


async def silent(host: str, port: int, until: float, counts: Counter[str]) -> None:
    await asyncio.gather(*(_hold(host, port, until, counts, None) for _ in range(SOCKETS)))


async def drip(host: str, port: int, until: float, counts: Counter[str]) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Slow: 1\r\n\r\n"
    await asyncio.gather(*(_hold(host, port, until, counts, request) for _ in range(SOCKETS)))


async def _discard(reader: asyncio.StreamReader) -> None:
    """Read and forget everything: a client that reads, unlike the ping flood."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while await reader.read(65536):
            pass


async def churn(host: str, port: int, until: float, counts: Counter[str]) -> None:
    async def one(index: int) -> None:
        rooms = ("bench-0", f"churn-{index}")
        while time.monotonic() < until:
            try:
                reader, writer = await _websocket(host, port)
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                counts["refused"] += 1
                await asyncio.sleep(1.0)
                continue
            counts["connections"] += 1
            reading = asyncio.ensure_future(_discard(reader))
            with contextlib.suppress(OSError):
                for n in range(1 << 30):
                    if time.monotonic() >= until or writer.is_closing():
                        break
                    request = {"action": "join_room", "room": rooms[n % 2]}
                    writer.write(client_frame(0x1, json.dumps(request).encode()))
                    counts["room_changes_asked"] += 1
                    await asyncio.sleep(0.11)  # 9 a second: within the request rate
            reading.cancel()
            writer.transport.abort()

    await asyncio.gather(*(one(index) for index in range(CHURNERS)))


async def bad_requests(host: str, port: int, until: float, counts: Counter[str]) -> None:
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    while time.monotonic() < until:
        try:
            reader, writer = await _open(host, port)
            writer.write(garbage)
            await reader.read(200)
            writer.transport.abort()
            counts["requests"] += 1
        except OSError:
            counts["refused"] += 1
            await asyncio.sleep(0.01)


async def history_rooms(host: str, port: int, until: float, counts: Counter[str]) -> None:
    reader, writer = await _websocket(host, port)
    reading = asyncio.ensure_future(_discard(reader))
    for n in range(HISTORY_ROOMS):
        if time.monotonic() >= until:
            break
        for request in ({"action": "join_room", "room": f"r{n}"}, {"action": "chat_message",
                                                                   "message": "x"}):  # fmt: skip
            writer.write(client_frame(0x1, json.dumps(request).encode()))
        counts["rooms"] += 1
        if n % 200 == 0:
            await writer.drain()
            await asyncio.sleep(0)
    await writer.drain()
    await asyncio.sleep(1.0)
    reading.cancel()
    writer.transport.abort()


async def spin(host: str, port: int, until: float, counts: Counter[str]) -> None:
    while time.monotonic() < until:
        counts["spins"] += 1
        for _ in range(100_000):
            pass
        await asyncio.sleep(0)


ATTACKS: Final[dict[str, Attack]] = {
    "ping-flood": ping_flood,
    "silent": silent,
    "drip": drip,
    "churn": churn,
    "bad-requests": bad_requests,
    "history-rooms": history_rooms,
    "spin": spin,
}


def work(kind: str, url: str, seconds: float, parent: Connection) -> None:
    """The body of the attacker's process: attack for `seconds`, then send the counts.

    It runs at the lowest priority: an attacker elsewhere takes no CPU from this machine,
    and on two cores an attacker that did would slow the polite clients' own generator
    (the `spin` control measures what is left of that)."""
    from .load import raise_fd_limit

    os.nice(19)
    raise_fd_limit()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counts: Counter[str] = Counter()
    until = time.monotonic() + seconds
    with contextlib.suppress(Exception):
        asyncio.run(ATTACKS[kind](host, port, until, counts))
    parent.send(dict(counts))
