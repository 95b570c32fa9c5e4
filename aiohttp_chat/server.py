"""The chat server: one aiohttp application with the `/chat` and `/echo` WebSocket views.

Run it with `python -m aiohttp_chat.server --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from . import protocol, utils, wire
from .chat import ChatSession
from .utils import Registry
from .wire import DEFAULT_MAX_OUTBOUND_BYTES, ChatSocket, Outbox

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT: Final = 5.0  # seconds a peer gets to answer our close frame


@dataclass(frozen=True, slots=True)
class Settings:
    heartbeat: float | None = 60.0
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = protocol.DEFAULT_MAX_MESSAGE_CHARS
    max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES
    compress: bool = False


SETTINGS: Final = web.AppKey("settings", Settings)
ROOMS: Final = web.AppKey[Registry[ChatSocket]]("rooms")
ECHO_SOCKETS: Final = web.AppKey[set[ChatSocket]]("echo_sockets")
OUTBOX: Final = web.AppKey("outbox", Outbox)


# -------------------------------------------------------------------------------- views


async def _accept(request: web.Request) -> ChatSocket:
    """Upgrade the request to a WebSocket, or answer 426 if it is plain HTTP."""
    settings = request.app[SETTINGS]
    socket = ChatSocket(
        request.app[OUTBOX],
        max_msg_size=settings.max_frame_bytes,
        compress=settings.compress,
        timeout=CLOSE_TIMEOUT,
    )
    if not socket.can_prepare(request).ok:
        raise web.HTTPUpgradeRequired(
            text="This endpoint speaks WebSocket only: connect with a WebSocket client.\n",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )
    await socket.prepare(request)
    return socket


async def ws_echo(request: web.Request) -> web.StreamResponse:
    """Answer every JSON text frame V with `{"echo": V}`."""
    socket = await _accept(request)
    sockets = request.app[ECHO_SOCKETS]
    sockets.add(socket)
    try:
        async for message in socket:
            if socket.is_control(message):
                continue
            if message.type is WSMsgType.TEXT:
                reply = _echo(message.data)
            elif message.type is WSMsgType.BINARY:
                reply = protocol.encode(protocol.echo_error(protocol.BINARY_NOT_SUPPORTED))
            else:
                continue
            await socket.send_frame(reply, WSMsgType.TEXT)
    except ConnectionResetError:
        pass  # the peer vanished while we answered
    finally:
        sockets.discard(socket)
    return socket


def _echo(text: str) -> bytes:
    try:
        return protocol.encode(protocol.echo_reply(protocol.decode(text)))
    except ValueError:
        return protocol.encode(protocol.echo_error(protocol.NOT_JSON))


async def ws_chat(request: web.Request) -> web.StreamResponse:
    """One chat connection: register it, answer its requests, unregister it, always."""
    socket = await _accept(request)
    app = request.app
    rooms = app[ROOMS]
    nick = utils.free_default_nick(rooms, protocol.DEFAULT_ROOM)
    if nick is None:
        logger.warning("No free default nick in %s", protocol.DEFAULT_ROOM)
        await socket.close(
            code=WSCloseCode.TRY_AGAIN_LATER, message=protocol.NICK_UNAVAILABLE_REASON.encode()
        )
        return socket
    session = ChatSession(rooms, socket, nick, max_message_chars=app[SETTINGS].max_message_chars)
    ending = WSMsgType.ERROR
    try:
        session.enter()
        logger.info("%s connected as %s", request.remote, nick)
        while True:  # inline, not a helper coroutine: one frame less per idle connection
            message = await socket.receive()
            if socket.is_control(message):
                continue
            if message.type is WSMsgType.TEXT:
                reply = session.handle_text(message.data)
            elif message.type is WSMsgType.BINARY:
                reply = _BINARY_REFUSED
            else:
                ending = message.type
                break
            socket.send_payload_nowait(reply)  # in order with the broadcasts queued for it
    except Exception:  # a bug, never bad input: log it, end this connection only, cleanly
        logger.exception("Internal error serving %s (%s)", request.remote, session.nick)
        await socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"Internal error")
    finally:
        # Only a close frame from the peer is a polite leave; anything else is shameful.
        session.leave(shame=ending is not WSMsgType.CLOSE)
        logger.info(
            "%s (%s) %s, code %s",
            request.remote,
            session.nick,
            _ENDINGS.get(ending, "vanished without a close frame"),
            socket.close_code,
        )
    return socket


_ENDINGS: Final = {WSMsgType.CLOSE: "left", WSMsgType.CLOSING: "was disconnected by the server"}
_BINARY_REFUSED: Final = protocol.encode(protocol.fail(None, protocol.BINARY_NOT_SUPPORTED))


# -------------------------------------------------------------------------------- app


def _all_sockets(app: web.Application) -> list[ChatSocket]:
    sockets = [*app[ECHO_SOCKETS]]
    sockets += (socket for members in app[ROOMS].values() for socket in members.values())
    return sockets


async def _sweep(app: web.Application) -> AsyncIterator[None]:
    """One task pings every socket and drops the silent ones (cheaper than a timer each)."""
    interval = app[SETTINGS].heartbeat
    task = None
    if interval:
        task = asyncio.create_task(wire.sweep_forever(partial(_all_sockets, app), interval))
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _close_all(app: web.Application) -> None:
    """On shutdown, close every WebSocket with 1001 GOING_AWAY and wait for the closes."""
    sockets = _all_sockets(app)
    if sockets:
        logger.info("Shutting down: closing %d WebSocket(s)", len(sockets))
    await asyncio.gather(
        *(s.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown") for s in sockets),
        return_exceptions=True,
    )


async def _close_outbox(app: web.Application) -> None:
    await app[OUTBOX].aclose()


def create_app(settings: Settings | None = None) -> web.Application:
    """The application, with no side effects: nothing runs until it is started."""
    app = web.Application()
    app[SETTINGS] = settings or Settings()
    app[ROOMS] = utils.new_registry()
    app[ECHO_SOCKETS] = set()
    app[OUTBOX] = Outbox(app[SETTINGS].max_outbound_bytes)
    app.cleanup_ctx.append(_sweep)
    app.on_shutdown.append(_close_all)
    app.on_cleanup.append(_close_outbox)
    app.add_routes([web.get("/echo", ws_echo), web.get("/chat", ws_chat)])
    return app


# -------------------------------------------------------------------------------- CLI

ENV_PREFIX: Final = "AIOHTTP_CHAT_"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
N = TypeVar("N", int, float)


def _positive(kind: Callable[[str], N]) -> Callable[[str], N]:
    def parse(text: str) -> N:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _heartbeat_seconds(text: str) -> float | None:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more, got {text}")
    return value or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiohttp_chat.server",
        description="WebSocket chat server with rooms and nicknames (/chat) and an echo (/echo).",
        epilog="Every option can also be set with the environment variable named in brackets; "
        "a command-line option wins over the environment.",
    )
    defaults = Settings()

    def option(flag: str, help: str, default: object, **kwargs: object) -> None:
        env = ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(
            flag,
            default=os.environ.get(env, default),
            help=f"{help} (default: %(default)s) [{env}]",
            **kwargs,  # type: ignore[arg-type]
        )

    option("--host", "address to listen on", "0.0.0.0")
    option("--port", "TCP port to listen on", 8080, type=int)
    option(
        "--heartbeat",
        "seconds between pings; a peer that misses a pong is dropped; 0 turns it off",
        defaults.heartbeat,
        type=_heartbeat_seconds,
    )
    option(
        "--max-frame-bytes",
        "largest frame accepted; a larger one closes the connection with 1009",
        defaults.max_frame_bytes,
        type=_positive(int),
    )
    option(
        "--max-message-chars",
        "longest chat message, in characters",
        defaults.max_message_chars,
        type=_positive(int),
    )
    option(
        "--max-outbound-bytes",
        "unsent data a peer may have queued; past it the peer is closed with 1008 Too slow",
        defaults.max_outbound_bytes,
        type=_positive(int),
    )
    parser.add_argument(
        "--compress",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get(ENV_PREFIX + "COMPRESS", "").lower() in ("1", "true", "yes"),
        help="offer permessage-deflate (costs CPU and memory per client; default: off) "
        f"[{ENV_PREFIX}COMPRESS=1]",
    )
    option("--log-level", "log level", "INFO", type=str.upper, choices=LOG_LEVELS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(
        heartbeat=args.heartbeat,
        max_frame_bytes=args.max_frame_bytes,
        max_message_chars=args.max_message_chars,
        max_outbound_bytes=args.max_outbound_bytes,
        compress=args.compress,
    )
    try:
        web.run_app(
            create_app(settings),
            host=args.host,
            port=args.port,
            print=lambda _: logger.info("Listening on %s:%s (/chat, /echo)", args.host, args.port),
            access_log=None,
            shutdown_timeout=CLOSE_TIMEOUT,
        )
    except OSError as exc:
        logger.error("Cannot serve on %s:%s: %s", args.host, args.port, exc.strerror or exc)
        raise SystemExit(1) from None
    logger.info("Server stopped")


if __name__ == "__main__":
    main()
