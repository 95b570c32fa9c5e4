"""The terminal chat client: three tasks under one orchestrator.

- `read_messages` prints everything the server sends;
- `send_lines` reads what you type (through an injected line reader) and sends it;
- `refresh` pings the server and notices when it stops answering.

When any of them ends or fails, `chat` cancels and awaits the others and closes the socket.
Run it with `python -m aiohttp_chat.client --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Final

import aioconsole
from aiohttp import ClientError, ClientSession, ClientWebSocketResponse, InvalidURL, WSMsgType

from . import protocol
from .cli import command_name
from .console import ChatView, Quit, Show, escape, parse_line, unreachable
from .terminal import open_terminal

logger = logging.getLogger(__name__)

DEFAULT_URL: Final = "ws://0.0.0.0:8080/chat"
REFRESH_INTERVAL: Final = 20.0  # seconds between pings
PONG_TIMEOUT: Final = 10.0  # seconds the server has to answer one
LOG_FORMAT: Final = "%(asctime)s %(name)s: %(message)s"

LineReader = Callable[[], Awaitable[str]]  # raises EOFError at end of input
Output = Callable[[str], None]


class ChatEnded(Exception):
    """The chat cannot go on; the text says why, in one line."""


async def read_messages(
    ws: ClientWebSocketResponse, view: ChatView, output: Output, pong: asyncio.Event
) -> None:
    """Print every message; answer pings; end when the server closes the connection."""
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            logger.debug("< %s", message.data)  # received, as curl shows it
            try:
                line = view.show(json.loads(message.data))
            except ValueError:
                line = f"??? {escape(message.data)}"
            if line is not None:
                output(line)
        elif message.type is WSMsgType.PING:
            await ws.pong(message.data)
        elif message.type is WSMsgType.PONG:
            pong.set()
        elif message.type is WSMsgType.ERROR:
            raise ChatEnded(f"Connection failed: {ws.exception()}")
    reason = f"code {ws.close_code}"
    if ws.close_code is None:
        reason = "without a close frame"
    raise ChatEnded(f"The server closed the connection ({reason}).")


async def send(
    ws: ClientWebSocketResponse,
    view: ChatView,
    request: protocol.Message,
    *,
    startup: bool = False,
) -> None:
    payload = protocol.encode(request)
    view.sent(request, startup=startup)
    logger.debug("> %s", payload.decode())  # sent
    await ws.send_frame(payload, WSMsgType.TEXT)


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
            await view.answered.wait()  # let the server confirm what we sent
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
    refresh_interval: float = REFRESH_INTERVAL,
    pong_timeout: float = PONG_TIMEOUT,
) -> None:
    """Run the three tasks on `ws` until one ends; raise `ChatEnded` if it was not the user."""
    view, pong = ChatView(), asyncio.Event()
    if nick:
        await send(ws, view, {"action": protocol.SET_NICK, "nick": nick}, startup=True)
    if room:
        await send(ws, view, {"action": protocol.JOIN_ROOM, "room": room}, startup=True)
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
            raise ChatEnded(f"{task.get_name()} failed: {error!r}") from error


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
    try:
        async with (
            terminal or contextlib.nullcontext(),
            ClientSession() as session,
            session.ws_connect(args.url, autoping=False) as ws,
        ):
            await chat(ws, read_line, output, nick=nick, room=room)
    except InvalidURL:
        print(f"aiohttp-chat: not a WebSocket URL: {args.url}", file=sys.stderr)
        return 1
    except (ClientError, OSError) as exc:
        print(f"aiohttp-chat: {unreachable(args.url, exc)}", file=sys.stderr)
        return 1
    except ChatEnded as exc:
        print(f"aiohttp-chat: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("aiohttp_chat.client"),
        description="Terminal chat client for the aiohttp-chat server. "
        "Type /help once connected for the commands.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="chat URL (default: %(default)s)")
    parser.add_argument("--nick", help="nick to take (default: ask; empty keeps a random one)")
    parser.add_argument("--room", help="room to join (default: ask; empty stays in Default)")
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
