"""Connections before they are WebSockets: counted, capped, and given a deadline.

A TCP connection is *pending* from the moment it is accepted until its WebSocket opens, or
it closes: while it sends its request, and for as long as it stays plain HTTP (the page,
`/healthz`). Each holds a file descriptor and a parser, and aiohttp alone would keep one
that never sends a byte for 75 seconds, so 1,100 silent sockets locked everyone out of a
server with the common limit of 1,024 open files. Here:

- a request must be answered within `timeout` seconds of connecting, or the connection is
  cut (a client that sends one header byte a second gets no longer than a silent one);
  between requests, aiohttp's keep-alive timeout (`keep_alive`) closes an idle HTTP
  connection, and one that neither finishes reading its answer nor sends its next request
  within `timeout` after that is cut; a connection that stays plain HTTP is cut after
  `lifetime` seconds (60, `--http-lifetime`) whatever it does, so that a slot is never held
  for good;
- at most `max_per_address` connections from one peer address (trusted proxies excepted:
  they carry many clients) and `max_pending` in all may be pending; one more is answered
  `429` or `503` at once and closed, before a byte of it is read;
- at start the process raises its soft limit of open files to the hard limit, and
  `capacity` keeps the caps under what it can really open, so that `/healthz` still answers
  when the chat is full.

`Handshakes.protocol_factory` wraps aiohttp's, so this works for any site; once a WebSocket
opens, the connection is handed to aiohttp's protocol itself (`transport.set_protocol`), and
the chat's traffic never passes through here. With TLS served by the process itself, the
TLS handshake happens before the wrapper sees the connection: it is bounded by `timeout`
too (`ssl_handshake_timeout`), but not counted. Until it is accepted, a connection waits in
the kernel's listen queue, made deep (`BACKLOG`) for the bursts of reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

from aiohttp import http_exceptions

from .limits import (
    PENDING_FROM_ADDRESS,
    PENDING_FULL,
    Network,
    Refusal,
    address_key,
    count,
    within,
)
from .metrics import Stats

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_MAX_PENDING: Final = 1024
DEFAULT_MAX_PER_ADDRESS: Final = 64
DEFAULT_LIFETIME: Final = 60.0
# Connections the kernel completes before we accept them (it caps this at net.core.somaxconn):
# asyncio's 100 overflows when a thousand clients come back at once after a restart, and an
# overflowed one waits for the kernel to resend its SYN-ACK, 1, 2, 4, 8 s later, to get in.
BACKLOG: Final = 4096
OTHER_FILES: Final = 256  # kept for the rest: listening sockets, Redis, logs, the loop's own
_REASONS: Final = {429: "Too Many Requests", 503: "Service Unavailable"}

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class Handshakes:
    """The pending connections of one listening server, by peer address."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_per_address: int = DEFAULT_MAX_PER_ADDRESS,
        trusted_proxies: Iterable[Network] = (),
        stats: Stats | None = None,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        self.timeout, self.max_pending, self.max_per_address = timeout, max_pending, max_per_address
        self.lifetime = lifetime
        self.trusted_proxies = tuple(trusted_proxies)
        self.stats = Stats() if stats is None else stats
        self.by_address: dict[str, int] = {}
        self._pending: dict[asyncio.BaseTransport, _Pending] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def keep_alive(self) -> float:
        """aiohttp's keep-alive timeout for these connections: it also runs from the start
        of a connection, so a second later than the deadline, which is counted, comes first."""
        return self.timeout + 1 if self.timeout else 75.0

    def protocol_factory(self, make: ProtocolFactory) -> ProtocolFactory:
        """A protocol factory for `loop.create_server` that guards `make`'s protocols."""
        return lambda: _Pending(self, make)

    def answered(self, transport: asyncio.BaseTransport | None) -> None:
        """The connection's request got its answer (or its upgrade) in time."""
        if transport is not None and (pending := self._pending.get(transport)) is not None:
            pending.answered()

    def upgraded(self, transport: asyncio.BaseTransport | None) -> None:
        """The connection is a WebSocket now: no longer pending, nor looked at here."""
        if transport is not None and (pending := self._pending.pop(transport, None)) is not None:
            pending.hand_over()

    def refusal(self, address: str) -> Refusal | None:
        """Why one more connection from `address` may not be pending now, or None."""
        if self.max_pending and self.pending >= self.max_pending:
            return PENDING_FULL
        if (
            self.max_per_address
            and self.by_address.get(address_key(address), 0) >= self.max_per_address
            and not within(address, self.trusted_proxies)
        ):
            return PENDING_FROM_ADDRESS
        return None

    def _opened(self, transport: asyncio.BaseTransport, pending: _Pending) -> None:
        self._pending[transport] = pending
        count(self.by_address, pending.address, 1)

    def _closed(self, transport: asyncio.BaseTransport, pending: _Pending) -> None:
        if self._pending.get(transport) is pending:
            del self._pending[transport]
        count(self.by_address, pending.address, -1)


class _Pending(asyncio.Protocol):
    """One connection until its WebSocket opens: aiohttp's protocol, behind a deadline."""

    def __init__(self, handshakes: Handshakes, make: ProtocolFactory) -> None:
        self.handshakes, self.make = handshakes, make
        self.inner: asyncio.Protocol | None = None  # made once the connection is admitted
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.deadline: asyncio.TimerHandle | None = None
        self.cut_at = math.inf  # the end of its `lifetime`

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        handshakes = self.handshakes
        transport = cast(asyncio.Transport, base)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.address = peer[0] if isinstance(peer, tuple) else str(peer)
        refusal = handshakes.refusal(self.address)
        if refusal is not None:
            handshakes.stats.handshakes_refused[refusal.reason] += 1
            logger.debug("Refused a connection from %s: %s", self.address, refusal.text)
            transport.write(_response(refusal))
            transport.close()
            return
        self.transport = transport
        handshakes._opened(transport, self)
        loop = asyncio.get_running_loop()
        if handshakes.lifetime:
            self.cut_at = loop.time() + handshakes.lifetime
        self._arm(loop.time() + handshakes.timeout if handshakes.timeout else math.inf)
        inner = self.make()
        assert isinstance(inner, asyncio.Protocol)
        self.inner = inner
        inner.connection_made(transport)

    def answered(self) -> None:
        """A request was answered in time: until the next, the connection may be idle for
        aiohttp's keep-alive, then read its answer for `timeout` more; within `lifetime`."""
        timeout = self.handshakes.timeout
        now = asyncio.get_running_loop().time()
        self._arm(now + self.handshakes.keep_alive + timeout if timeout else math.inf)

    def _arm(self, at: float) -> None:
        """Cut the connection at `at`, or at the end of its lifetime if that comes first."""
        self._disarm()
        if (at := min(at, self.cut_at)) != math.inf:
            self.deadline = asyncio.get_running_loop().call_at(at, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def hand_over(self) -> None:
        """Let aiohttp's protocol have the connection to itself (the WebSocket is open)."""
        self._disarm()
        assert self.transport is not None and self.inner is not None
        self.handshakes._closed(self.transport, self)
        self.transport.set_protocol(self.inner)

    def _expired(self) -> None:
        self.deadline = None
        self.handshakes.stats.handshakes_timed_out += 1
        logger.debug("No request from %s answered in time: closing", self.address)
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ passed on

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is not None:
            self.handshakes._closed(self.transport, self)
        if self.inner is not None:
            self.inner.connection_lost(exc)


def _response(refusal: Refusal) -> bytes:
    """The whole HTTP answer to a connection refused before its request was read."""
    body = f"{refusal.text}\n".encode()
    lines = [
        f"HTTP/1.1 {refusal.status} {_REASONS[refusal.status]}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in refusal.headers.items()),
    ]
    return "\r\n".join([*lines, "", ""]).encode() + body


# ------------------------------------------------------------------------ open files


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit; (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:  # more than the kernel allows (nr_open)
            logger.warning("Cannot raise the limit of open files to %d: %s", wanted, exc)
            return soft, soft
        return soft, wanted
    return soft, soft


def capacity(files: int, max_connections: int, max_pending: int) -> tuple[int, int]:
    """The caps on WebSockets and on pending connections that `files` open files can hold,
    at most those asked for. Pending connections may have a quarter of what is left after
    `OTHER_FILES` (0 keeps that cap off and reserves nothing for it); WebSockets, the rest
    (0 asks for as many as that)."""
    usable = max(files - OTHER_FILES, 2)
    pending = min(max_pending, max(usable // 4, 1))
    sockets = max(usable - pending, 1)
    return min(max_connections or sockets, sockets), pending


# ------------------------------------------------------------------------ bad requests


class HttpLog(logging.Logger):
    """The logger of one server's HTTP connections (aiohttp's `logger`). Its lines go where
    `aiohttp.server`'s go, but a malformed request, which aiohttp reports with a traceback
    at ERROR each time (2,000 bad requests wrote 1.6 MB of log in 3 s), is counted in this
    server's `stats` and is one line at DEBUG; so is a client that hangs up in the middle of
    its handshake."""

    def __init__(self, stats: Stats) -> None:
        super().__init__("aiohttp.server")  # not registered: it counts for this server only
        self.parent = logging.getLogger("aiohttp.server")
        self.stats = stats

    def isEnabledFor(self, level: int) -> bool:
        assert self.parent is not None
        return self.parent.isEnabledFor(level)  # its cache, not ours, follows setLevel

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        if not self._bad_request(msg, args, kwargs):
            super().exception(msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        if not self._bad_request(msg, args, kwargs):  # aiohttp's word for a non-HTTP peer
            super().debug(msg, *args, **kwargs)

    def _bad_request(self, msg: object, args: tuple[object, ...], kwargs: dict[str, Any]) -> bool:
        """Whether this is a client's fault, told here in one line: a malformed request, or
        a client gone before its answer could be written (aiohttp's traceback, at ERROR)."""
        error = kwargs.get("exc_info")
        if isinstance(error, http_exceptions.HttpProcessingError):
            self.stats.bad_requests += 1
            summary = (error.message.strip().splitlines() or [type(error).__name__])[0][:200]
        elif isinstance(error, ConnectionResetError):
            summary = "the client went away before its answer"
        else:
            return False
        super().debug("%s: %s", str(msg) % args, summary)
        return True
