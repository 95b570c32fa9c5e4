"""The terminal chat client: three tasks under one orchestrator, and a reconnect loop around it.

- `read_messages` prints everything the server sends;
- `send_lines` reads what you type (through an injected line reader) and sends it;
- `refresh` pings the server and notices when it stops answering.

When any of them ends or fails, `chat` cancels and awaits the others and closes the socket.
`converse` runs `chat` once per connection: when a connection is lost (not when the user
leaves, nor when retrying cannot help), it waits, with backoff and jitter, connects again and
lets `chat` restore the nick and room and catch up on what was missed; `chat` never knows it
is being retried. What the user types is read by a `Keyboard` (`client_keyboard.py`) that outlives
the connections.
Run it with `python -m aiohttp_chat.client --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import ssl
import sys
import time
from collections.abc import Callable
from typing import Final

import aioconsole
from aiohttp import (
    ClientError,
    ClientSession,
    ClientSSLError,
    ClientWebSocketResponse,
    InvalidURL,
    WSMsgType,
    WSServerHandshakeError,
)

from . import protocol
from .cli import command_name
from .client_console import (
    ASK_NICK,
    ASK_ROOM,
    DEFAULT_MENTION_STYLE,
    INSECURE_WARNING,
    MENTION_STYLES,
    More,
    Quit,
    Show,
    bad_url,
    closed,
    connection_lost,
    escape,
    not_a_chat,
    parse_line,
    pending,
    reconnecting_in,
    refused_lines,
    unreachable,
    wish_refused,
)
from .client_keyboard import Keyboard, LineReader
from .client_terminal import open_terminal
from .client_view import ChatView, Purpose, Received, Requests
from .limits import RateLimit

logger = logging.getLogger(__name__)

DEFAULT_URL: Final = "ws://0.0.0.0:8080/chat"
REFRESH_INTERVAL: Final = 20.0  # seconds between pings
PONG_TIMEOUT: Final = 10.0  # seconds the server has to answer one
GREETING_TIMEOUT: Final = 10.0  # seconds a chat server may take to say `connecting`
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
    ws: ClientWebSocketResponse,
    view: ChatView,
    output: Output,
    pong: asyncio.Event,
    pace: Pace,
) -> None:
    """Print every message; answer pings; end when the server closes the connection."""
    first = True
    while True:
        try:  # a chat server greets at once: anything else is not one
            message = await ws.receive(GREETING_TIMEOUT if first else None)
        except TimeoutError:
            raise ChatEnded(not_a_chat(None), final=True) from None
        if message.type is WSMsgType.TEXT:
            logger.debug("< %s", message.data)  # received, as curl shows it
            try:
                received = json.loads(message.data)
            except ValueError:
                received = None
            if first and not (isinstance(received, dict) and "action" in received):
                raise ChatEnded(not_a_chat(escape(message.data)), final=True)
            if received is None:
                text, requests = Received(f"??? {escape(message.data)}", [])
            else:
                text, requests = view.received(received)
            if first:  # the greeting announced the limits (protocol 1.2), if any
                pace.start(view.limits)
                first = False
            if text is not None:
                output(text)
            if view.failed is not None:  # piped: a refused --nick or --room ends it
                raise ChatEnded(view.failed, final=True)
            for request, purpose in requests:  # what the message calls for
                await pace.wait()
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
    text, final = closed(code, reason)
    return ChatEnded(text, final=final)


async def send(
    ws: ClientWebSocketResponse,
    view: ChatView,
    request: protocol.Message,
    purpose: Purpose = Purpose.USER,
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


PACE_MARGIN: Final = 0.9  # of the server's rate, for the time a frame takes to arrive


def pacer(limits: protocol.Message) -> RateLimit | None:
    """The client's side of the server's request rate limit (the `limits` that `connecting`
    announced), a little under it: a bucket to wait on instead of being refused, so that
    pasted or piped lines all arrive. None when the server announced no limit."""
    rate, burst = limits.get("rate"), limits.get("burst")
    if not (isinstance(rate, int | float) and isinstance(burst, int) and rate > 0 < burst):
        return None
    return RateLimit(rate * PACE_MARGIN, burst - 1, time.monotonic())


class Pace:
    """One connection's requests, typed or not (the history and the members the client
    asks for on entering a room), paced by one bucket (`pacer`) from its greeting on."""

    def __init__(self) -> None:
        self.bucket: RateLimit | None = None

    def start(self, limits: protocol.Message) -> None:
        self.bucket = pacer(limits)

    async def wait(self) -> None:
        """Wait until the bucket allows one more request, and take it."""
        if (bucket := self.bucket) is not None:
            if wait := bucket.wait(time.monotonic()):
                await asyncio.sleep(wait)  # (then its token is there)
            bucket.allow(time.monotonic())


async def send_lines(
    ws: ClientWebSocketResponse,
    view: ChatView,
    read_line: LineReader,
    output: Output,
    pace: Pace,
) -> None:
    """Send what the user types until /quit, or until end of input once all is answered;
    nothing before the server has greeted this connection, and no faster than its limits."""
    await view.entered.wait()
    while True:
        try:
            line = await read_line()
        except EOFError:
            await settle(view.requests)  # let the server confirm what we sent
            return
        except UnicodeError:  # aioconsole raises Decode- or EncodeError, depending on stdin
            output("!!! That line is not valid UTF-8; it was not sent.")
            continue
        if view.ask_nick:  # the nick wished at start was refused: this line is another
            view.ask_nick = False
            line = f"/nick {line.strip()}" if line.strip() else ""
        action = parse_line(line)
        if isinstance(action, Quit):
            return
        if isinstance(action, More):  # the view knows where to go on from
            more = view.more(action.limit)
            action = Show(more) if isinstance(more, str) else more
        if isinstance(action, Show):
            output(action.text)
        elif action is not None:
            await pace.wait()
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

    `view` carries on what an earlier connection showed; its `connected` was called for
    this one (see `converse`). Without it, `nick` and `room` are asked for with requests.
    """
    pong, pace = asyncio.Event(), Pace()
    if view is None:
        view = ChatView()
        view.connected(resumed=resumed, nick=nick, room=room)
    tasks = [
        asyncio.create_task(read_messages(ws, view, output, pong, pace), name="reader"),
        asyncio.create_task(send_lines(ws, view, read_line, output, pace), name="sender"),
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
            raise ending(error, task.get_name()) from error
    if view.strict and view.refused:  # piped lines the server refused: say so, and fail
        raise ChatEnded(refused_lines(view.refused), final=True)


def ending(error: BaseException, who: str, url: str | None = None) -> ChatEnded:
    """Whether to reconnect or give up, from what ended a connection, whichever of the
    three tasks (`who`) or the connecting itself (with `url`) met it first (websockets'
    `process_exception`): a lost or refused connection is worth another try; a policy
    close, a refused handshake, TLS, or a bug in the client is not."""
    if isinstance(error, ChatEnded):
        return error
    if isinstance(error, InvalidURL):
        return ChatEnded(f"not a WebSocket URL: {url or error}", final=True)
    if isinstance(error, ClientError | OSError | TimeoutError):
        if url is None:  # on a connection that was open: a send or a ping that failed
            return ChatEnded(connection_lost(error))
        refused = isinstance(error, WSServerHandshakeError) and 400 <= error.status < 500
        final = refused or isinstance(error, ClientSSLError)  # TLS will not fix itself
        return ChatEnded(unreachable(url, error), final=final)
    return ChatEnded(f"{who} failed: {error!r}", final=True)


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
    view: ChatView | None = None,
    status: Callable[[str | None], None] | None = None,
    delay: Callable[[int], float] = backoff,
    tls: ssl.SSLContext | bool = True,
    refresh_interval: float = REFRESH_INTERVAL,
    pong_timeout: float = PONG_TIMEOUT,
) -> None:
    """Chat on `url` until the user leaves; reconnect whenever a connection is lost (if
    `reconnect`), with its resume token, or else asking for its nick and room again.
    Raises `ChatEnded` when it cannot go on (a `strict` view: also when the nick or room
    is refused at start, or a line was refused). `status` is told the countdown to the next
    try while reconnecting (None once connected); `refresh_interval` and `pong_timeout`
    are each connection's pings (see `refresh`)."""
    view, failures, connected = view or ChatView(), 0, False
    async with Keyboard(read_line) as keyboard, ClientSession() as session:
        while True:
            view.connected(resumed=connected, nick=nick, room=room, in_handshake=True)
            in_chat = False
            try:
                async with session.ws_connect(
                    url, params=view.query(), autoping=False, ssl=tls
                ) as ws:
                    failures, in_chat, connected = 0, True, True
                    keyboard.while_away = None
                    if status is not None:
                        status(None)
                    await chat(
                        ws,
                        keyboard.read_line,
                        output,
                        view=view,
                        refresh_interval=refresh_interval,
                        pong_timeout=pong_timeout,
                    )
                    return
            except Exception as exc:
                ended = ending(exc, "client", None if in_chat else url)
            if ended.final or not reconnect or not connected:
                raise ended
            if not failures:
                output(f"*** {ended} Reconnecting…")  # one line per outage
                keyboard.while_away = lambda line: output(pending(line))
            failures += 1
            nick, room = view.nick, view.room  # restored on the next connection
            if await _wait_to_retry(keyboard, delay(failures), status or (lambda _: None)):
                return


async def _wait_to_retry(
    keyboard: Keyboard, seconds: float, status: Callable[[str | None], None]
) -> bool:
    """Wait before the next try, counting down in `status`; whether the user left."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        status(reconnecting_in(math.ceil(left)))
        if await keyboard.wait_to_leave(min(left, left - math.floor(left) or 1.0)):
            return True
    status(reconnecting_in(0))
    return False


# ------------------------------------------------------------------------ entry point


async def _terminal_line() -> str:
    line: str = await aioconsole.ainput()
    return line


async def _ask(prompt: str) -> str | None:
    try:
        return (await aioconsole.ainput(prompt)).strip() or None
    except EOFError:
        return None


async def _choose(
    given: str | None, option: str, check: Callable[[str], str], interactive: bool
) -> str | None:
    """The nick or room to ask for: `given` (by `option`), else (at a terminal) asked,
    until it meets the server's rules (`protocol.py`); piped, one that does not is the end,
    before connecting."""
    prompt = ASK_NICK if option == "--nick" else ASK_ROOM
    name = given if given or not interactive else await _ask(prompt)
    while name:
        try:
            return check(name)  # as the server will take it (NFC)
        except protocol.ProtocolError as exc:
            if not interactive:
                raise ChatEnded(wish_refused(option, name, exc.text), final=True) from None
            print(f"!!! {wish_refused(option, name, exc.text)}")
            name = await _ask(prompt)
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
    try:
        nick = await _choose(args.nick, "--nick", protocol.validate_nick, interactive)
        room = await _choose(args.room, "--room", protocol.validate_room, interactive)
    except ChatEnded as exc:
        print(f"aiohttp-chat: {exc}", file=sys.stderr)
        return 1
    terminal = await open_terminal() if interactive else None
    read_line, output = (_terminal_line, print) if terminal is None else terminal.io()
    if terminal is not None and sys.stderr.isatty():  # --verbose lines, above the input row
        logging.getLogger().handlers[:] = [_OutputHandler(output)]
    reconnect = interactive if args.reconnect is None else args.reconnect
    try:
        tls = _tls(args)
        async with terminal or contextlib.nullcontext():
            view = ChatView(
                strict=not interactive,
                times=interactive if args.time is None else args.time,
                width=None if terminal is None else terminal.columns,
                offer=None if terminal is None else terminal.offer,
                # Styles and the bell are for a terminal; piped output stays plain text.
                mention_style="" if terminal is None else MENTION_STYLES[args.mention_style],
                bell=terminal is not None and args.bell,
            )
            if terminal is not None:
                terminal.editor.nicks = view.nicks  # Tab completes the room's nicks
            status = None if terminal is None else terminal.status
            await converse(args.url, read_line, output, nick=nick, room=room,
                           reconnect=reconnect, view=view, status=status, tls=tls)  # fmt: skip
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
        "--time",
        action=argparse.BooleanOptionalAction,
        help="show when each message was sent, [07:33] (default: on at a terminal, off with "
        "piped input)",
    )
    parser.add_argument(
        "--mention-style",
        choices=list(MENTION_STYLES),
        default=DEFAULT_MENTION_STYLE,
        help="how a message that names you looks at a terminal (default: %(default)s)",
    )
    parser.add_argument(
        "--bell",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ring the terminal's bell when a message names you (default: on)",
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
