"""What the terminal client shows and what its commands mean: pure functions, no I/O.

`ChatView` turns each server message into readable text (or none), with every piece of text
from peers escaped so that nobody can drive your terminal with escape sequences.
`parse_line` turns what the user typed into a request, a local action or a chat message.
`unreachable` says in plain words why a connection could not be made.
"""

from __future__ import annotations

import asyncio
import http
import socket
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import ServerDisconnectedError, WSServerHandshakeError

from . import protocol
from .protocol import Message

HELP: Final = """\
Commands:
  /nick NAME     change your nick (3-20 characters)
  /join ROOM     move to another room (3-20 characters)
  /users [ROOM]  list who is in ROOM (default: your room)
  /help          show this help
  /quit          leave (so do Ctrl-D, Ctrl-C and the original's `command close`)
Anything else is sent as a chat message; // sends one that starts with /."""

QUIT_WORDS: Final = frozenset({"/quit", "/exit", "command close"})
TAB_SIZE: Final = 4  # a tab in a peer's message, in spaces
QUOTED_CHARS: Final = 20  # of a refused chat message, shown to say which one it was


def escape(text: object) -> str:
    """`text` with control and invisible formatting characters made visible (`\\x1b`, ...)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        char if char == " " or unicodedata.category(char)[0] not in "CZ" else _visible(char)
        for char in text
    )


def cell_width(text: str) -> int:
    """Terminal columns `text` takes: 2 for wide (East Asian) characters, 0 for combining."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.category(char) in ("Mn", "Me", "Cf"):  # combining, invisible
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def chat_line(user: object, message: object) -> str:
    """`>>>user: message`; its line breaks (and tabs) kept, indented under the first line."""
    prefix = f">>>{escape(user)}: "
    lines = str(message).replace("\r\n", "\n").split("\n")
    indent = "\n" + " " * cell_width(prefix)
    return prefix + indent.join(escape(line.expandtabs(TAB_SIZE)) for line in lines)


def _visible(char: str) -> str:
    if unicodedata.category(char) == "Zs":  # other spaces are harmless
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


# ------------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Show:
    """Text for the user only; nothing is sent."""

    text: str


Action = Message | Quit | Show | None


def parse_line(line: str) -> Action:
    """What a typed line means: a request to send, Quit, Show (local text) or None (nothing)."""
    text = line.rstrip("\r\n")
    if text.strip() in QUIT_WORDS:
        return Quit()
    if not text.strip():
        return None
    if text.startswith("//"):
        return {"action": protocol.CHAT_MESSAGE, "message": text[1:]}
    if not text.startswith("/"):
        return {"action": protocol.CHAT_MESSAGE, "message": text}
    command, _, argument = text.partition(" ")
    argument = argument.strip()
    if command == "/help":
        return Show(HELP)
    if command == "/users":
        return {"action": protocol.USER_LIST, **({"room": argument} if argument else {})}
    if command in ("/nick", "/join"):
        if not argument:
            return Show(f"Usage: {command} {'NAME' if command == '/nick' else 'ROOM'}")
        if command == "/nick":
            return {"action": protocol.SET_NICK, "nick": argument}
        return {"action": protocol.JOIN_ROOM, "room": argument}
    return Show(f"Unknown command {escape(command)}; /help lists the commands.")


# ------------------------------------------------------------------------ display


class ChatView:
    """Formats server messages; remembers the requests in flight to word their replies.

    The greeting (`Connected to ROOM as NICK`) waits for the replies to the requests sent at
    start (`--nick`, `--room`), so that it names where the user ended up.
    """

    def __init__(self) -> None:
        self.nick: str | None = None
        self.room: str | None = None
        self._requests: deque[tuple[Message, bool]] = deque()  # (request, sent at start)
        self._greeting_due = False
        self.answered = asyncio.Event()  # set while no request waits for its reply
        self.answered.set()

    def sent(self, request: Message, *, startup: bool = False) -> None:
        self._requests.append((request, startup))
        self.answered.clear()

    def show(self, message: Any) -> str | None:
        """The text to print for `message` (lines joined by newlines), or None."""
        if not isinstance(message, dict):
            return f"??? {escape(message)}"
        if "success" not in message:
            return self._event(message)
        request, startup = self._requests.popleft() if self._requests else ({}, False)
        if not self._requests:
            self.answered.set()
        text = self._reply(message, request)
        if startup and message.get("success"):
            text = None  # the greeting says it
        if self._greeting_due and not self._startup_pending():
            self._greeting_due = False
            return _joined_lines(text, self._greeting())
        return text

    def _startup_pending(self) -> bool:
        return any(startup for _, startup in self._requests)

    def _greeting(self) -> str:
        room, nick = escape(self.room), escape(self.nick)
        return f"*** Connected to {room} as {nick}. Type /help for commands."

    def _reply(self, reply: Message, request: Message) -> str | None:
        action = reply.get("action")
        if not reply.get("success"):
            return f"!!! {typed(request, action)}: {escape(reply.get('message'))}"
        if action == protocol.SET_NICK:
            self.nick = str(request.get("nick", self.nick))
            return f"*** You are now known as {escape(self.nick)}"
        if action == protocol.JOIN_ROOM:
            self.room = str(request.get("room", self.room))
            return f"*** You are now in {escape(self.room)}"
        if action == protocol.USER_LIST:
            users = reply.get("users") or []
            room = escape(reply.get("room"))
            if not users:
                return f"*** Nobody is in {room}"
            return f"*** In {room}: {', '.join(escape(user) for user in users)}"
        if action == protocol.CHAT_MESSAGE:
            return chat_line(self.nick, reply.get("message"))  # as the others see it
        return None

    def _event(self, event: Message) -> str | None:
        action = event.get("action")
        room, user = escape(event.get("room")), escape(event.get("user"))
        if action == "connecting":
            self.nick, self.room = str(event.get("user")), str(event.get("room"))
            if self._startup_pending():
                self._greeting_due = True
                return None
            return self._greeting()
        if action == "joined":
            return f"*** {user} joined {room}"
        if action == "left":
            how = " (connection lost)" if event.get("shame") else ""
            return f"*** {user} left {room}{how}"
        if action == "nick_changed":
            old, new = escape(event.get("from_user")), escape(event.get("to_user"))
            return f"*** {old} is now known as {new}"
        if action == protocol.CHAT_MESSAGE:
            return chat_line(event.get("user"), event.get("message"))
        return f"??? {escape(event)}"


def _joined_lines(*texts: str | None) -> str | None:
    return "\n".join(text for text in texts if text is not None) or None


def typed(request: Message, action: object) -> str:
    """What the user typed to make `request`, to name it in a refusal."""
    if action == protocol.SET_NICK:
        return f"/nick {escape(request.get('nick'))}"
    if action == protocol.JOIN_ROOM:
        return f"/join {escape(request.get('room'))}"
    if action == protocol.USER_LIST:
        return " ".join(["/users", *(escape(request[key]) for key in ("room",) if key in request)])
    if action == protocol.CHAT_MESSAGE:
        text = escape(request.get("message", ""))
        return f'"{text[:QUOTED_CHARS]}…"' if len(text) > QUOTED_CHARS else f'"{text}"'
    return escape(action)


# ------------------------------------------------------------------------ connecting


def unreachable(url: str, error: BaseException) -> str:
    """Why connecting to `url` failed, in plain words, on one line."""
    if isinstance(error, WSServerHandshakeError):
        phrase = _status_phrase(error.status)
        return f"cannot connect to {url}: the server answered HTTP {error.status}{phrase}"
    cause = getattr(error, "os_error", error)  # aiohttp wraps the socket's error
    if isinstance(cause, socket.gaierror):
        reason = "unknown host"
    elif isinstance(cause, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(cause, TimeoutError):
        reason = "no answer (timed out)"
    elif isinstance(error, ServerDisconnectedError):
        reason = "the server closed the connection"
    elif isinstance(cause, OSError) and cause.strerror:
        reason = cause.strerror[:1].lower() + cause.strerror[1:]
    else:
        reason = str(error) or type(error).__name__
    return f"cannot reach {url}: {reason}"


def _status_phrase(status: int) -> str:
    try:
        return f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        return ""
