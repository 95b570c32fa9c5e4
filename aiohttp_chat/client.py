"""The terminal chat client: three tasks under one orchestrator, and a reconnect loop around it.

- `read_messages` prints everything the server sends;
- `send_lines` reads what you type (through an injected line reader) and sends it;
- `refresh` pings the server and notices when it stops answering.

When any of them ends or fails, `chat` cancels and awaits the others and closes the socket.
`converse` runs `chat` once per connection: when a connection is lost (not when the user
leaves, nor when retrying cannot help), it waits, with backoff and jitter, connects again and
lets `chat` restore the nick and room and catch up on what was missed; `chat` never knows it
is being retried. What the user types is read by a `Keyboard` (`keyboard.py`) that outlives
the connections.
Run it with `python -m aiohttp_chat.client --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import ssl
import sys
from collections.abc import Callable
from typing import Any, Final

import aioconsole
from aiohttp import (
    ClientError,
    ClientSession,
    ClientSSLError,
    ClientWebSocketResponse,
    InvalidURL,
    WSCloseCode,
    WSMsgType,
    WSServerHandshakeError,
)

from . import protocol
from .cli import command_name
from .console import (
    INSECURE_WARNING,
    Quit,
    Show,
    bad_url,
    escape,
    not_a_chat,
    parse_line,
    unreachable,
)
from .keyboard import Keyboard, LineReader
from .terminal import open_terminal
from .view import STARTUP, USER, ChatView, Requests

logger = logging.getLogger(__name__)

DEFAULT_URL: Final = "ws://0.0.0.0:8080/chat"
REFRESH_INTERVAL: Final = 20.0  # seconds between pings
PONG_TIMEOUT: Final = 10.0  # seconds the server has to answer one
SETTLE: Final = 2.0  # at the end of input, seconds of silence after which no reply will come
BACKOFF_FIRST: Final = 0.5  # seconds before reconnecting, at most, the first time
BACKOFF_MAX: Final = 30.0  # ... doubling up to this
LOG_FORMAT: Final = "%(asctime)s %(name)s: %(message)s"

Output = Callable[[str], None]


class ChatEnded(Exception):
    """The chat cannot go on; the text says why, in one line.

    `final`: trying again cannot help (a policy close, a refused handshake, a local failure).
    """

    def __init__(self, text: str, *, final: bool = False) -> None:
        super().__init__(text)
        self.final = final


async def read_messages(
    ws: ClientWebSocketResponse, view: ChatView, output: Output, pong: asyncio.Event
) -> None:
    """Print every message; answer pings; end when the server closes the connection."""
    first = True
    while True:
        message = await ws.receive()
        if message.type is WSMsgType.TEXT:
            logger.debug("< %s", message.data)  # received, as curl shows it
            try:
                received = json.loads(message.data)
            except ValueError:
                received = None
            if first and not (isinstance(received, dict) and "action" in received):
                raise ChatEnded(not_a_chat(escape(message.data)), final=True)
            first = False
            line = f"??? {escape(message.data)}" if received is None else view.show(received)
            if line is not None:
                output(line)
            requests, view.to_send = view.to_send, []  # history the view asked for
            for request, purpose in requests:
                await send(ws, view, request, purpose)
        elif message.type is WSMsgType.PING:
            await ws.pong(message.data)
        elif message.type is WSMsgType.PONG:
            pong.set()
        elif message.type is WSMsgType.CLOSE:
            raise _closed(message.data, message.extra)
        elif message.type is WSMsgType.ERROR:
            raise ChatEnded(f"Connection failed: {ws.exception()}")
        elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise _closed(ws.close_code, None)


def _closed(code: int | None, reason: str | None) -> ChatEnded:
    if code is None or code == WSCloseCode.ABNORMAL_CLOSURE:
        return ChatEnded("The server closed the connection (without a close frame).")
    detail = f"code {code}: {escape(reason)}" if reason else f"code {code}"
    # A policy close means "stop doing that" (Flooding): coming back would do it again.
    # Too slow is the exception: the link was slow for a while, not the client at fault.
    final = code == WSCloseCode.POLICY_VIOLATION and reason != protocol.TOO_SLOW_REASON
    return ChatEnded(f"The server closed the connection ({detail}).", final=final)


async def send(
    ws: ClientWebSocketResponse, view: ChatView, request: protocol.Message, purpose: str = USER
) -> None:
    payload = protocol.encode(request)
    view.sent(request, purpose)
    logger.debug("> %s", payload.decode())  # sent
    await ws.send_frame(payload, WSMsgType.TEXT)


async def settle(requests: Requests, quiet: float = SETTLE) -> None:
    """Wait until every request is answered, or until the server stopped answering for
    `quiet` seconds (the original server never answers a successful `join_room`)."""
    while not requests.answered.is_set():
        replies = requests.replies
        try:
            await asyncio.wait_for(requests.answered.wait(), quiet)
        except TimeoutError:
            if requests.replies == replies:
                return


async def send_lines(
    ws: ClientWebSocketResponse,
    view: ChatView,
    read_line: LineReader,
    output: Output,
) -> None:
    """Send what the user types until /quit, or until end of input once all is answered."""
    while True:
        try:
            line = await read_line()
        except EOFError:
            await settle(view.requests)  # let the server confirm what we sent
            return
        except UnicodeError:  # aioconsole raises Decode- or EncodeError, depending on stdin
            output("!!! That line is not valid UTF-8; it was not sent.")
            continue
        action = parse_line(line)
        if isinstance(action, Quit):
            return
        if isinstance(action, Show):
            output(action.text)
        elif action is not None:
            await send(ws, view, action)


async def refresh(
    ws: ClientWebSocketResponse,
    pong: asyncio.Event,
    *,
    interval: float = REFRESH_INTERVAL,
    pong_timeout: float = PONG_TIMEOUT,
) -> None:
    """Ping every `interval` seconds; fail if no pong comes within `pong_timeout`."""
    while True:
        await asyncio.sleep(interval)
        pong.clear()
        await ws.ping()
        try:
            await asyncio.wait_for(pong.wait(), pong_timeout)
        except TimeoutError:
            raise ChatEnded(f"No answer to a ping within {pong_timeout:g} s.") from None


async def chat(
    ws: ClientWebSocketResponse,
    read_line: LineReader,
    output: Output,
    *,
    nick: str | None = None,
    room: str | None = None,
    view: ChatView | None = None,
    resumed: bool = False,
    refresh_interval: float = REFRESH_INTERVAL,
    pong_timeout: float = PONG_TIMEOUT,
) -> None:
    """Run the three tasks on `ws` until one ends; raise `ChatEnded` if it was not the user.

    `nick` and `room` are asked for first; `view` (with `resumed`) carries on what an
    earlier connection showed.
    """
    view, pong = view or ChatView(), asyncio.Event()
    view.connected(resumed=resumed)
    # The room first: nicks are unique per room, so the nick is asked for where it will be
    # used; if it is taken there, the user is still in the room, under the default nick.
    if room and room != protocol.DEFAULT_ROOM:
        await send(ws, view, {"action": protocol.JOIN_ROOM, "room": room}, STARTUP)
    if nick:
        await send(ws, view, {"action": protocol.SET_NICK, "nick": nick}, STARTUP)
    tasks = [
        asyncio.create_task(read_messages(ws, view, output, pong), name="reader"),
        asyncio.create_task(send_lines(ws, view, read_line, output), name="sender"),
        asyncio.create_task(
            refresh(ws, pong, interval=refresh_interval, pong_timeout=pong_timeout),
            name="refresh",
        ),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
    for task in done:
        if (error := task.exception()) is not None:
            if isinstance(error, ChatEnded):
                raise error
            raise ChatEnded(f"{task.get_name()} failed: {error!r}", final=True) from error


# ------------------------------------------------------------------------ reconnecting


def backoff(failures: int) -> float:
    """Seconds to wait before the next attempt: doubling, capped, with jitter (half random)."""
    ceiling: float = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** (failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def converse(
    url: str,
    read_line: LineReader,
    output: Output,
    *,
    nick: str | None = None,
    room: str | None = None,
    reconnect: bool = True,
    delay: Callable[[int], float] = backoff,
    tls: ssl.SSLContext | bool = True,
    **options: Any,
) -> None:
    """Chat on `url` until the user leaves; reconnect whenever a connection is lost (if
    `reconnect`), restoring nick and room. Raises `ChatEnded` when it cannot go on."""
    view, failures, connected = ChatView(), 0, False
    async with Keyboard(read_line) as keyboard, ClientSession() as session:
        while True:
            try:
                async with session.ws_connect(url, autoping=False, ssl=tls) as ws:
                    failures, resumed, connected = 0, connected, True
                    await chat(ws, keyboard.read_line, output, **options, view=view,
                               nick=nick, room=room, resumed=resumed)  # fmt: skip
                    return
            except InvalidURL:
                raise ChatEnded(f"not a WebSocket URL: {url}", final=True) from None
            except ChatEnded as exc:
                ended = exc
            except (ClientError, OSError) as exc:
                refused = isinstance(exc, WSServerHandshakeError) and 400 <= exc.status < 500
                final = refused or isinstance(exc, ClientSSLError)  # TLS will not fix itself
                ended = ChatEnded(unreachable(url, exc), final=final)
            if ended.final or not reconnect or not connected:
                raise ended
            if not failures:
                output(f"*** {ended} Reconnecting…")  # one line per outage
            failures += 1
            nick, room = view.nick, view.room  # restored on the next connection
            if await keyboard.wait_to_leave(delay(failures)):
                return


# ------------------------------------------------------------------------ entry point


async def _terminal_line() -> str:
    line: str = await aioconsole.ainput()
    return line


async def _ask(prompt: str) -> str | None:
    try:
        return (await aioconsole.ainput(prompt)).strip() or None
    except EOFError:
        return None


class _OutputHandler(logging.Handler):
    """Log records printed through the client's output (above the line being typed)."""

    def __init__(self, output: Output) -> None:
        super().__init__()
        self.output = output
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.output(self.format(record))


async def run(args: argparse.Namespace) -> int:
    # SIGTERM leaves as politely as Ctrl-C does, and gives the terminal back as it was.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    interactive = sys.stdin.isatty()
    nick, room = args.nick, args.room
    if interactive and nick is None:
        nick = await _ask("Nick (random if not provided): ")
    if interactive and room is None:
        room = await _ask("Room (`Default` if not provided): ")
    terminal = await open_terminal() if interactive else None
    read_line, output = (_terminal_line, print) if terminal is None else terminal.io()
    if terminal is not None and sys.stderr.isatty():  # --verbose lines, above the input row
        logging.getLogger().handlers[:] = [_OutputHandler(output)]
    reconnect = interactive if args.reconnect is None else args.reconnect
    try:
        tls = _tls(args)
        async with terminal or contextlib.nullcontext():
            await converse(
                args.url, read_line, output, nick=nick, room=room, reconnect=reconnect, tls=tls
            )
    except ChatEnded as exc:
        print(f"aiohttp-chat: {exc}", file=sys.stderr)
        return 1
    return 0


def _tls(args: argparse.Namespace) -> ssl.SSLContext | bool:
    """How wss:// servers are checked: the system's trust store, --ca-file, or not at all."""
    if args.insecure:
        print(f"aiohttp-chat: {INSECURE_WARNING}", file=sys.stderr)
        return False
    if args.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=args.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ChatEnded(f"cannot use --ca-file {args.ca_file}: {exc}", final=True) from None


def _chat_url(url: str) -> str:
    if (why := bad_url(url)) is not None:
        raise argparse.ArgumentTypeError(f"{why}, got {url}")
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("aiohttp_chat.client"),
        description="Terminal chat client for the aiohttp-chat server. "
        "Type /help once connected for the commands.",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, type=_chat_url, help="chat URL (default: %(default)s)"
    )
    parser.add_argument("--nick", help="nick to take (default: ask; empty keeps a random one)")
    parser.add_argument("--room", help="room to join (default: ask; empty stays in Default)")
    parser.add_argument(
        "--reconnect",
        action=argparse.BooleanOptionalAction,
        help="when the connection is lost, reconnect and catch up (default: on at a "
        "terminal, off with piped input)",
    )
    parser.add_argument(
        "--ca-file",
        metavar="FILE",
        help="for wss:// URLs, trust the CA certificates in FILE (PEM) instead of the system's",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="for wss:// URLs, do not check the server's certificate (unsafe; says so)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the protocol traffic on stderr"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # Quiet by default: the chat is the output. --verbose shows our traffic, not aiohttp's.
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.CRITICAL,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    if args.verbose:
        logger.setLevel(logging.DEBUG)
    code = 0
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, SIGTERM
        code = asyncio.run(run(args))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
