"""A minimal WebSocket client for load generation: cheap enough never to be the bottleneck.

It speaks just what the benchmark needs: the opening handshake, unfragmented frames, pong,
close. Server frames are never masked (RFC 6455, 5.1), so reading is a header parse and a
slice; our frames use the all-zero masking key, which every server accepts and which makes
masking a no-op. Not for production use: it trusts the server completely.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Final, cast
from urllib.parse import urlsplit

_ZERO_MASK: Final = b"\x00\x00\x00\x00"
_HANDSHAKE: Final = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: YWlvaHR0cC1jaGF0LWJuYw==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
IP_BIND_ADDRESS_NO_PORT: Final = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux's


_EXTENDED: Final = {126: 2, 127: 8}  # bytes of extended payload length, by the 7-bit length


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked (with the zero key) frame."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + _ZERO_MASK + payload


class HandshakeRefused(ConnectionError):
    """The server did not open a WebSocket (a wrong path, a full server...); `status` is
    its HTTP status (429, 503...), 0 if it sent none that could be read."""

    def __init__(self, text: str, status: int = 0) -> None:
        super().__init__(text)
        self.status = status


class BenchSocket(asyncio.Protocol):
    """One connection; counts text frames and calls `on_text(payload)` while it is set."""

    def __init__(self, on_text: Callable[[bytes], None], request: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.on_text: Callable[[bytes], None] | None = on_text
        self.texts = 0
        self.open: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._request = request
        self._buffer = bytearray()
        self._handshaken = False

    # --------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.open.done() and not self._handshaken:
            return  # the handshake was refused: the rest is the refusal's body
        buffer = self._buffer
        buffer += data
        if not self._handshaken and not self._handshake():
            return
        position, size = 0, len(buffer)
        while size - position >= 2:
            opcode, length = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            start = position + 2 + _EXTENDED.get(length, 0)
            if start > size:
                break  # the extended length is still on its way
            if length == 126:
                (length,) = struct.unpack_from("!H", buffer, start - 2)
            elif length == 127:
                (length,) = struct.unpack_from("!Q", buffer, start - 8)
            end = start + length
            if end > size:
                break
            position = end
            if opcode == TEXT:
                self.texts += 1
                if self.on_text is not None:
                    self.on_text(bytes(buffer[start:end]))
            elif opcode == PING:
                self.send(PONG, bytes(buffer[start:end]))
            elif opcode == CLOSE:
                code = struct.unpack_from("!H", buffer, start)[0] if length >= 2 else None
                if not self.closed.done():
                    self.closed.set_result(code)
                self.send(CLOSE, bytes(buffer[start : start + 2]))
                assert self.transport is not None
                self.transport.close()
        del buffer[:position]

    def _handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(self._buffer[: self._buffer.find(b"\r\n")])
        del self._buffer[: end + 4]
        if b" 101 " not in status:
            answer = status.decode(errors="replace").partition(" ")[2]
            code = answer.partition(" ")[0]
            refusal = HandshakeRefused(
                f"the server answered {answer}", int(code) if code.isdigit() else 0
            )
            self.open.set_exception(refusal)
            assert self.transport is not None
            self.transport.close()
            return False
        self._handshaken = True
        self.open.set_result(None)
        return True

    # --------------------------------------------------------------- use

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_text(self, payload: bytes) -> None:
        self.send(TEXT, payload)

    def pause_reading(self) -> None:
        """Stop reading: the server's writes to us pile up, as with a stuck client."""
        assert self.transport is not None
        self.transport.pause_reading()

    def close(self) -> None:
        self.send(CLOSE, struct.pack("!H", 1000))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(
    url: str,
    on_text: Callable[[bytes], None],
    *,
    receive_buffer: int | None = None,
    source: str | None = None,
) -> BenchSocket:
    """Open a connection; `receive_buffer` shrinks the kernel's, so a stuck reader is felt
    by the server within kilobytes instead of the tens of megabytes loopback allows.
    `source` is the local address to connect from (on loopback, any of 127.0.0.0/8); its
    port is chosen at connect time, so each address gives a port per destination (the ~28,000
    ephemeral ports are not shared by every connection from it). The URL's query is sent."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = _HANDSHAKE.format(path=path, host=f"{host}:{port}").encode()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        if source is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    _, client = await loop.create_connection(lambda: BenchSocket(on_text, request), sock=sock)
    await client.open
    return client
