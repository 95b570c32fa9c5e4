"""A network to cut: `tcp_proxy` forwards a free port to a server's, until a test cuts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from .network import free_port


class TcpProxy:
    """Forwards a free port on 127.0.0.1 to `target_port`; `cut` drops every connection
    (without a close frame: the network went away) and refuses new ones until `restore`.
    `cut(unnoticed=True)` leaves the server's side of each connection open and silent, as a
    network that went away without the server knowing (it notices at its next heartbeat)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.upstream: set[asyncio.StreamWriter] = set()  # the links to the server
        self.stranded: set[asyncio.StreamWriter] = set()  # left open by an unnoticed cut

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def cut(self, *, unnoticed: bool = False) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        if unnoticed:
            self.stranded |= self.upstream & self.links
        for writer in list(self.links - self.stranded):
            writer.transport.abort()
        self.links.clear()

    def close(self) -> None:
        for writer in self.stranded:
            writer.transport.abort()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.links |= {writer, up_writer}
        self.upstream.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            if writer not in self.stranded:
                writer.transport.abort()
            self.links.discard(writer)


@pytest.fixture
async def tcp_proxy() -> AsyncIterator[Callable[[int], Awaitable[TcpProxy]]]:
    """Start proxies to ports; every one is cut and closed after the test."""
    proxies: list[TcpProxy] = []

    async def start(target_port: int) -> TcpProxy:
        proxies.append(TcpProxy(target_port))
        await proxies[-1].restore()
        return proxies[-1]

    yield start
    for proxy in proxies:
        await proxy.cut()
        proxy.close()
