"""The chat server: one aiohttp application with the `/chat` and `/echo` WebSocket views.

Run it with `python -m aiohttp_chat.server --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from . import protocol, utils
from .chat import ChatSession
from .utils import Registry
from .wire import ChatSocket

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT: Final = 5.0  # seconds a peer gets to answer our close frame


@dataclass(frozen=True, slots=True)
class Settings:
    heartbeat: float | None = 60.0
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = protocol.DEFAULT_MAX_MESSAGE_CHARS


SETTINGS: Final = web.AppKey("settings", Settings)
ROOMS: Final = web.AppKey[Registry[ChatSocket]]("rooms")
SOCKETS: Final = web.AppKey[set[web.WebSocketResponse]]("sockets")


# -------------------------------------------------------------------------------- views


async def _accept(request: web.Request) -> ChatSocket:
    """Upgrade the request to a WebSocket, or answer 426 if it is plain HTTP."""
    settings = request.app[SETTINGS]
    socket = ChatSocket(
        heartbeat=settings.heartbeat,
        max_msg_size=settings.max_frame_bytes,
        compress=False,
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
    sockets = request.app[SOCKETS]
    sockets.add(socket)
    try:
        async for message in socket:
            if message.type is WSMsgType.TEXT:
                reply = _echo(message.data)
            elif message.type is WSMsgType.BINARY:
                reply = protocol.encode(protocol.echo_error(protocol.BINARY_NOT_SUPPORTED))
            else:
                continue
            await socket.send_str(reply)
    except ConnectionResetError:
        pass  # the peer vanished while we answered
    finally:
        sockets.discard(socket)
    return socket


def _echo(text: str) -> str:
    try:
        return protocol.encode(protocol.echo_reply(protocol.decode(text)))
    except (ValueError, RecursionError):
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
    sockets = app[SOCKETS]
    sockets.add(socket)
    ending = WSMsgType.ERROR
    try:
        session.enter()
        logger.info("%s connected as %s", request.remote, nick)
        ending = await _serve(socket, session)
    except Exception:  # a bug, never bad input: log it, end this connection only, cleanly
        logger.exception("Internal error serving %s (%s)", request.remote, session.nick)
        await socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"Internal error")
    finally:
        sockets.discard(socket)
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


async def _serve(socket: ChatSocket, session: ChatSession) -> WSMsgType:
    """Answer requests until the connection ends; return the type of the message that ended it."""
    while True:
        message = await socket.receive()
        if message.type is WSMsgType.TEXT:
            reply = session.handle_text(message.data)
        elif message.type is WSMsgType.BINARY:
            reply = protocol.encode(protocol.fail(None, protocol.BINARY_NOT_SUPPORTED))
        else:
            return message.type
        try:
            await socket.send_str(reply)
        except ConnectionResetError:  # the peer vanished while we answered
            return WSMsgType.ERROR


# -------------------------------------------------------------------------------- app


async def _close_all(app: web.Application) -> None:
    """On shutdown, close every WebSocket with 1001 GOING_AWAY and wait for the closes."""
    sockets = app[SOCKETS].copy()
    if sockets:
        logger.info("Shutting down: closing %d WebSocket(s)", len(sockets))
    await asyncio.gather(
        *(s.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown") for s in sockets),
        return_exceptions=True,
    )


def create_app(settings: Settings | None = None) -> web.Application:
    """The application, with no side effects: nothing runs until it is started."""
    app = web.Application()
    app[SETTINGS] = settings or Settings()
    app[ROOMS] = utils.new_registry()
    app[SOCKETS] = set()
    app.on_shutdown.append(_close_all)
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


def _heartbeat(text: str) -> float | None:
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
        type=_heartbeat,
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
