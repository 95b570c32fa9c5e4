"""Real `ChatSocket`s without the chat server, for tests of what takes sockets (`rooms.py`,
`chat.py`): a bare aiohttp app on a free port upgrades each connection to a `ChatSocket`
and hands it over, and the test holds the client's end, to read what the socket sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from aiohttp_chat.frames import ChatSocket, Outbox
from aiohttp_chat.metrics import Stats

from .peers import TIMEOUT

HANDED: web.AppKey[asyncio.Queue[ChatSocket]] = web.AppKey("handed")
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
MARK = b'"nothing after this"'  # queued last, to see that nothing else was


@dataclass
class Pair:
    """The two ends of one connection: the server's `socket`, the test's `client`."""

    socket: ChatSocket
    client: aiohttp.ClientWebSocketResponse

    async def received(self) -> Any:
        """The next text message the socket sent, parsed."""
        message = await self.client.receive(timeout=TIMEOUT)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def assert_quiet(self) -> None:
        """Nothing was sent that the test has not read (a last frame comes next, alone)."""
        self.socket.reply(MARK)
        assert await self.received() == json.loads(MARK)

    async def closed_with(self) -> tuple[int, str | None]:
        """The close code and reason the socket sent, once the messages before are read."""
        text = aiohttp.WSMsgType.TEXT
        while (message := await self.client.receive(timeout=TIMEOUT)).type is text:
            pass
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        code: int = message.data
        return code, message.extra


OpenPair = Callable[[], Awaitable[Pair]]


def unconnected() -> ChatSocket:
    """A real socket that never connected: what it is sent goes nowhere. For the rules in
    which only who holds a nick counts, or only what a request is answered."""
    return ChatSocket(Outbox())


async def _upgrade(request: web.Request) -> web.StreamResponse:
    socket = ChatSocket(request.app[OUTBOX])
    await socket.prepare(request)
    await request.app[HANDED].put(socket)
    async for _ in socket:  # until the close; what the test sends is not read
        pass
    return socket


@pytest.fixture
async def open_pair(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> AsyncIterator[OpenPair]:
    """Open connections to a bare app (on a free port, one `Outbox` for all) whose every
    socket is a `ChatSocket`; each call gives both ends of a new one."""
    app = web.Application()
    app[HANDED] = asyncio.Queue()
    app[OUTBOX] = Outbox(stats=Stats())
    app.router.add_get("/", _upgrade)

    async def close_outbox(app: web.Application) -> None:
        await app[OUTBOX].aclose()

    app.on_cleanup.append(close_outbox)
    client = await aiohttp_client(app)
    opened: list[Pair] = []

    async def open_pair() -> Pair:
        ws = await client.ws_connect("/")
        socket = await asyncio.wait_for(app[HANDED].get(), TIMEOUT)
        opened.append(Pair(socket, ws))
        return opened[-1]

    yield open_pair
    for pair in opened:
        await pair.client.close()
