"""What one server process sets up around its application: the event loop, the garbage
collector, TLS, the limit of open files, the listening socket, and serving until SIGINT or
SIGTERM.

Nothing here knows the chat: `server.main` hands each function what it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Final

from aiohttp import web

from . import handshakes
from .config import Settings
from .frames import CLOSE_TIMEOUT
from .handshakes import Handshakes
from .metrics import Stats

logger = logging.getLogger(__name__)


def event_loop(parser: argparse.ArgumentParser, choice: str) -> asyncio.AbstractEventLoop:
    """The loop `--loop` names: uvloop if asked for (or, with `auto`, if it is installed)."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                parser.error("--loop uvloop: uvloop is not installed (pip install uvloop)")
        else:
            logger.info("Running on uvloop")
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# Full collections of the cyclic garbage collector: at most one per this many collections of
# the middle generation (CPython's default is 10). See `collect_rarely`.
FULL_COLLECTION_EVERY: Final = 1000


def collect_rarely() -> None:
    """Keep the garbage collector's full collections rare, and out of what is loaded at start.

    A chat server's heap is mostly its connections, which live for hours; CPython runs a full
    collection, which visits every object, each time the objects surviving the younger
    collections grow by a quarter, so while connections arrive it keeps visiting all those
    already open: 40% of the server's CPU while 10,000 connect (2,450 against 4,000
    connections a second with the collector off). At most one full collection per
    `FULL_COLLECTION_EVERY` middle ones (each after 7,000 allocations: about once per 7
    million allocations) took that to 3,400 to 3,700 a second. Young garbage is still
    collected as before, and a cycle that outlives both younger generations (a connection's
    objects, once it has closed) waits for the next full collection: memory, not a leak.
    What the process loaded before serving (modules, settings) is frozen: never visited."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    gc.freeze()


def tls_context(
    parser: argparse.ArgumentParser, cert: str | None, key: str | None
) -> ssl.SSLContext | None:
    """The server's TLS context from --tls-cert and --tls-key, or None without them."""
    if not cert and not key:
        return None
    if not (cert and key):
        parser.error("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        logger.error("Cannot load the TLS certificate and key: %s", exc)
        raise SystemExit(1) from None
    return context


def within_open_files(settings: Settings) -> Settings:
    """Raise the limit of open files as far as allowed, and keep the connection caps
    within it, so that the process can always answer /healthz (see `handshakes.py`)."""
    before, files = handshakes.raise_open_files_limit()
    if files != before:
        logger.info("Raised the limit of open files from %d to %d", before, files)
    connections, pending = handshakes.capacity(
        files, settings.max_connections, settings.max_pending
    )
    for option, asked, fitted in (
        ("--max-connections", settings.max_connections, connections),
        ("--max-pending", settings.max_pending, pending),
    ):
        if not asked and not fitted:  # (--max-pending 0: nothing kept for /healthz either)
            logger.warning("%s is off: connections that are not WebSockets may take every "
                           "file this process may open (%d)", option, files)  # fmt: skip
        elif not asked:
            logger.info("%s is off: at most %d, as %d open files allow", option, fitted, files)
        elif asked != fitted:
            logger.warning("%s %d lowered to %d: this process may open %d files (ulimit -n)",
                           option, asked, fitted, files)  # fmt: skip
    return replace(settings, max_connections=connections, max_pending=pending)


@contextlib.asynccontextmanager
async def listening(
    app: web.Application,
    host: str,
    port: int,
    gate: Handshakes,
    stats: Stats,
    *,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> AsyncIterator[asyncio.Server]:
    """`app` served on `host` and `port` for the block: every connection is accepted through
    `gate`, and a malformed request is one line at DEBUG (`handshakes.HttpLog`)."""
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=CLOSE_TIMEOUT,
        keepalive_timeout=gate.keep_alive,
        logger=handshakes.HttpLog(stats),
    )
    try:
        await runner.setup()  # (its startup may fail halfway: what started is cleaned up)
        assert runner.server is not None
        try:
            server = await asyncio.get_running_loop().create_server(
                gate.protocol_factory(runner.server),
                host,
                port,
                reuse_port=reuse_port or None,
                backlog=handshakes.BACKLOG,
                ssl=tls,  # and its handshake within the deadline too (allowed only with TLS)
                ssl_handshake_timeout=(gate.timeout or None) if tls else None,
            )
        except OSError as exc:  # one line that names the address, whichever loop says it
            errno = exc.errno or 0  # (negative for a name not found)
            reason = os.strerror(errno) if errno > 0 else exc.strerror or str(exc)
            raise OSError(exc.errno, f"Cannot serve on {host}:{port}: {reason}") from None
        yield server
        server.close()  # no new connections; the runner closes those that are open
    finally:
        await runner.cleanup()


async def until_stopped() -> None:
    """Return at the first SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()


def page_url(host: str, port: int, *, tls: bool) -> str:
    """The chat page's URL as a person on this machine can open it: a wildcard address is
    reached at loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}/"
