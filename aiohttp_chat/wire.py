"""Write a pre-framed broadcast straight to a peer's transport, without awaiting.

A broadcast is the same bytes for every recipient: server frames are never masked, and
compression is off by default. So the frame is built once (`text_frame`) and written to each
recipient's transport (`ChatSocket.send_frame_nowait`): no coroutine, task or future per
recipient, and a slow peer never makes the others wait (its bytes queue in its own transport).

Only public API is used: `web.BaseRequest.transport` and the asyncio `Transport`. An
uncompressed frame is valid even when permessage-deflate was negotiated (RFC 7692: a message
without RSV1 is not compressed), and aiohttp writes each of its own frames to the transport in
one synchronous step, so frames from both paths never interleave.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

_FIN_TEXT: Final = 0x81  # FIN bit + opcode 1 (text)
_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying `payload` (RFC 6455, section 5.2)."""
    length = len(payload)
    if length < 126:
        header = bytes((_FIN_TEXT, length))
    elif length < 1 << 16:
        header = _LEN16.pack(_FIN_TEXT, 126, length)
    else:
        header = _LEN64.pack(_FIN_TEXT, 127, length)
    return header + payload


class ChatSocket(web.WebSocketResponse):
    """A `WebSocketResponse` that also accepts pre-built frames without awaiting."""

    _transport: asyncio.Transport | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter:
        writer = await super().prepare(request)
        self._transport = request.transport
        return writer

    def send_frame_nowait(self, frame: bytes) -> bool:
        """Queue `frame` on the transport; False if the socket is closing or gone."""
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return False
        transport.write(frame)
        return True
