"""Chat clients as a test drives them: `Peer` (requests, replies and broadcasts), a
`RawWebSocket` written by hand for what a client library will not send, and bare aiohttp
sockets for tests that talk to a server process."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from .checks import moved
from .processes import CLIENT_TIMEOUT

TIMEOUT = 5.0  # for a server to answer


class Peer:
    """A chat client as a test sees it: send requests, read replies and broadcasts.

    `ask` returns the reply to a request; broadcasts that arrive before it are kept, in order,
    for `recv`, which returns the next broadcast or message.
    """

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, nick: str, token: str | None = None
    ) -> None:
        self.ws = ws
        self.nick = nick
        self.token = token  # to resume with (the latest the server gave)
        self._kept: deque[Any] = deque()

    async def send(self, **request: Any) -> None:
        await self.ws.send_str(json.dumps(request))

    async def _next(self) -> Any:
        message = await self.ws.receive(timeout=TIMEOUT)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def recv(self) -> Any:
        return self._kept.popleft() if self._kept else await self._next()

    async def reply(self) -> Any:
        while "success" not in (message := await self._next()):
            self._kept.append(message)
        return message

    async def ask(self, **request: Any) -> Any:
        await self.send(**request)
        return await self.reply()

    async def broadcasts(self) -> list[Any]:
        """Every broadcast sent to this peer so far, and not yet read."""
        await self.ask(action="user_list", room="no-such-room")
        kept, self._kept = list(self._kept), deque()
        return kept

    async def drain(self) -> None:
        """Forget every message received so far."""
        await self.ask(action="user_list", room="no-such-room")
        self._kept.clear()

    async def assert_quiet(self) -> None:
        """Nothing was sent to this peer that a test has not read."""
        assert not self._kept, self._kept
        await self.send(action="user_list", room="no-such-room")
        assert await self._next() == {
            "action": "user_list",
            "success": True,
            "room": "no-such-room",
            "users": [],
        }

    async def set_nick(self, nick: str) -> None:
        reply = await self.ask(action="set_nick", nick=nick)
        assert moved(reply) == {"action": "set_nick", "success": True, "message": ""}
        self.nick, self.token = nick, reply["resume"]

    async def join(self, room: str) -> None:
        reply = await self.ask(action="join_room", room=room)
        assert moved(reply) == {"action": "join_room", "success": True, "message": ""}
        self.token = reply["resume"]


Connect = Callable[..., Awaitable[Peer]]


async def open_peer(client: TestClient[Any, Any], **kwargs: Any) -> Peer:
    """A /chat connection on `client`'s server, its `connecting` frame read."""
    ws = await client.ws_connect("/chat", **kwargs)
    first = json.loads((await ws.receive(timeout=TIMEOUT)).data)
    assert first["action"] == "connecting" and first["room"] == "Default", first
    return Peer(ws, first["user"], first["resume"])


# ------------------------------------------------------------------------ raw frames


class RawWebSocket:
    """A WebSocket client written by hand, for what a real client library will not do:
    frames sent in one write, unmasked frames, pongs read one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, path: str = "/chat") -> RawWebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    @staticmethod
    def frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
        """One final frame; masked (with a key that changes the bytes) unless told not to."""
        assert len(payload) < 126
        if not masked:
            return bytes((0x80 | opcode, len(payload))) + payload
        key = b"\x5a\xa5\x0f\xf0"
        body = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
        return bytes((0x80 | opcode, 0x80 | len(payload))) + key + body

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def read(self) -> tuple[int, bytes]:
        """The next frame's opcode and payload; (-1, b"") once the connection is closed."""
        try:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2))
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return -1, b""

    def close(self) -> None:
        self.writer.transport.abort()


PING, PONG, CLOSE = 0x9, 0xA, 0x8


# ------------------------------------------------------------------------ bare sockets


async def joined_peer(session: aiohttp.ClientSession, url: str, nick: str, room: str) -> Any:
    """A raw WebSocket peer named `nick` in `room`, its replies read."""
    ws = await session.ws_connect(url)
    await ws.receive_json(timeout=5)
    for request in ({"action": "set_nick", "nick": nick}, {"action": "join_room", "room": room}):
        await ws.send_json(request)
        while "success" not in (reply := await ws.receive_json(timeout=5)):
            pass
        assert reply["success"] is True, reply
    return ws


async def say(ws: Any, text: str) -> str:
    """Send a chat message; its id."""
    await ws.send_json({"action": "chat_message", "message": text})
    while "success" not in (reply := await ws.receive_json(timeout=5)):
        pass
    assert reply["success"] is True, reply
    message_id: str = reply["id"]
    return message_id


async def next_event(ws: Any, action: str) -> Any:
    """The next message of `action` (a client process may take its time to cause it)."""
    while (message := await ws.receive_json(timeout=CLIENT_TIMEOUT))["action"] != action:
        pass
    return message
