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
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aiohttp import (
    ClientConnectorCertificateError,
    ClientSSLError,
    ServerDisconnectedError,
    WSServerHandshakeError,
)

from . import protocol
from .protocol import Message

HELP: Final = """\
Commands:
  /nick NAME     change your nick (3-20 characters)
  /join ROOM     move to another room (3-20 characters)
  /users [ROOM]  list who is in ROOM (default: your room)
  /history [N]   show the last N messages of your room again (default: 20)
  /help          show this help
  /quit          leave (so do Ctrl-D, Ctrl-C and the original's `command close`)
Anything else is sent as a chat message; // sends one that starts with /."""

QUIT_WORDS: Final = frozenset({"/quit", "/exit", "command close"})
TAB_SIZE: Final = 4  # a tab in a peer's message, in spaces
QUOTED_CHARS: Final = 20  # of a refused chat message, shown to say which one it was
RECENT: Final = 20  # messages shown on entering a room, and by /history
SEEN_IDS: Final = 5000  # message ids remembered to show each message once


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


def chat_line(user: object, message: object, prefix: str = ">>>") -> str:
    """`>>>user: message`; its line breaks (and tabs) kept, indented under the first line."""
    prefix = f"{prefix}{escape(user)}: "
    lines = str(message).replace("\r\n", "\n").split("\n")
    indent = "\n" + " " * cell_width(prefix)
    return prefix + indent.join(escape(line.expandtabs(TAB_SIZE)) for line in lines)


def history_line(entry: Message) -> str:
    """A message from the history: `  [07:33] bob: hi`, its time in local time."""
    return chat_line(entry.get("user"), entry.get("message"), f"  [{local_time(entry)}] ")


def local_time(entry: Message) -> str:
    """When `entry` was sent, in local time: `07:33`, or `Nov 23 07:33` on another day."""
    try:
        sent = datetime.fromisoformat(str(entry.get("time"))).astimezone()
    except ValueError:
        return escape(entry.get("time"))
    if sent.date() == datetime.now().astimezone().date():
        return sent.strftime("%H:%M")
    return sent.strftime("%b %d %H:%M")


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
    if command == "/history":
        if not argument:
            return {"action": protocol.HISTORY, "limit": RECENT}
        if argument.isdigit() and 1 <= int(argument) <= protocol.HISTORY_LIMIT_MAX:
            return {"action": protocol.HISTORY, "limit": int(argument)}
        return Show(f"Usage: /history [N], N from 1 to {protocol.HISTORY_LIMIT_MAX}")
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


class Requests:
    """The requests in flight, to word each reply by the request it answers.

    A reply is matched to the oldest request of its action: the original server never
    answers a successful `join_room`, so replies need not come for every request.
    """

    def __init__(self) -> None:
        self._pending: deque[tuple[Message, str]] = deque()  # (request, why it was sent)
        self.answered = asyncio.Event()  # set while no request waits for its reply
        self.answered.set()
        self.replies = 0  # replies received, to tell a server that stopped answering

    def add(self, request: Message, purpose: str) -> None:
        self._pending.append((request, purpose))
        self.answered.clear()

    def match(self, action: object) -> tuple[Message, str]:
        self.replies += 1
        found: tuple[Message, str] = ({}, USER)
        for index, (request, purpose) in enumerate(self._pending):
            if request.get("action") == action:
                found = (request, purpose)
                del self._pending[index]
                break
        if not self._pending:
            self.answered.set()
        return found

    def waiting_for(self, purpose: str) -> bool:
        return any(p == purpose for _, p in self._pending)

    def clear(self) -> None:
        """A new connection: nothing sent on the old one will be answered."""
        self._pending.clear()
        self.answered.set()


class Seen:
    """The chat messages shown, by room and id, and the last one of each room."""

    def __init__(self) -> None:
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.last: dict[str, str] = {}  # room -> id of the newest message shown

    def first_time(self, room: str, id: object) -> bool:
        """Note message `id` of `room`; whether it is new. Messages without an id always are."""
        if not isinstance(id, str):
            return True
        self.last[room] = id
        key = (room, id)
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > SEEN_IDS:
            self._ids.popitem(last=False)
        return True


# Why a request was sent, which decides how its reply is shown.
USER = "user"  # typed: every reply is shown
STARTUP = "startup"  # --nick, --room and their restoring: the greeting sums them up
RECENT_ON_ENTRY = "recent"  # history on entering a room: quiet if refused
CATCH_UP = "catch-up"  # history after a reconnect: quiet if refused


class ChatView:
    """Formats server messages; knows the nick, the room and what was shown.

    The greeting (`Connected to ROOM as NICK`) waits for the replies to the requests sent at
    start (`--nick`, `--room`), so that it names where the user ended up; then the view asks
    for the room's history (`to_send`): its recent messages, or after a reconnect those
    missed since the last one shown.
    """

    def __init__(self) -> None:
        self.nick: str | None = None
        self.room: str | None = None
        self.requests = Requests()
        self.seen = Seen()
        self.to_send: list[tuple[Message, str]] = []  # requests the view wants made
        self._greeting_due = False
        self._resumed = False

    @property
    def answered(self) -> asyncio.Event:
        return self.requests.answered

    def connected(self, *, resumed: bool) -> None:
        """A new connection starts (`resumed`: after a lost one)."""
        self.requests.clear()
        self.to_send.clear()
        self._resumed = resumed
        self._greeting_due = False

    def sent(self, request: Message, purpose: str = USER) -> None:
        self.requests.add(request, purpose)

    def show(self, message: Any) -> str | None:
        """The text to print for `message` (lines joined by newlines), or None."""
        if not isinstance(message, dict):
            return f"??? {escape(message)}"
        if "success" not in message:
            return self._event(message)
        request, purpose = self.requests.match(message.get("action"))
        if not message.get("success"):
            if purpose in (RECENT_ON_ENTRY, CATCH_UP):
                return None  # a server without history (the original): nothing to show
            text: str | None = f"!!! {typed(request, message.get('action'))}: "
            text = f"{text}{escape(message.get('message'))}"
        else:
            text = self._reply(message, request, purpose)
            if purpose == STARTUP:
                text = None  # the greeting says it
        if self._greeting_due and not self.requests.waiting_for(STARTUP):
            return _joined_lines(text, self._greet())
        return text

    def _greet(self) -> str:
        """The greeting, once the connection's first requests are answered; then history."""
        self._greeting_due = False
        room, nick = escape(self.room), escape(self.nick)
        if self.room is not None and (after := self.seen.last.get(self.room)) and self._resumed:
            self._ask_history({"room": self.room, "after": after}, CATCH_UP)
        elif self.room is not None:
            self._ask_history({"room": self.room, "limit": RECENT}, RECENT_ON_ENTRY)
        if self._resumed:
            return f"*** Reconnected: in {room} as {nick}."
        return f"*** Connected to {room} as {nick}. Type /help for commands."

    def _ask_history(self, fields: Message, purpose: str) -> None:
        self.to_send.append(({"action": protocol.HISTORY, **fields}, purpose))

    def _reply(self, reply: Message, request: Message, purpose: str) -> str | None:
        action = reply.get("action")
        if action == protocol.SET_NICK:
            self.nick = str(request.get("nick", self.nick))
            return f"*** You are now known as {escape(self.nick)}"
        if action == protocol.JOIN_ROOM:
            self.room = str(request.get("room", self.room))
            if purpose == USER:
                self._ask_history({"room": self.room, "limit": RECENT}, RECENT_ON_ENTRY)
            return f"*** You are now in {escape(self.room)}"
        if action == protocol.USER_LIST:
            users = reply.get("users") or []
            room = escape(reply.get("room"))
            if not users:
                return f"*** Nobody is in {room}"
            return f"*** In {room}: {', '.join(escape(user) for user in users)}"
        if action == protocol.CHAT_MESSAGE:
            self.seen.first_time(str(self.room), reply.get("id"))
            return chat_line(self.nick, reply.get("message"))  # as the others see it
        if action == protocol.HISTORY:
            return self._history(reply, purpose)
        return None

    def _history(self, reply: Message, purpose: str) -> str | None:
        room = str(reply.get("room"))
        messages = [m for m in reply.get("messages") or () if isinstance(m, dict)]
        if purpose != USER:  # each message once: skip what was shown live meanwhile
            messages = [m for m in messages if self.seen.first_time(room, m.get("id"))]
        else:
            for message in messages:
                self.seen.first_time(room, message.get("id"))
        lines = [history_line(m) for m in messages]
        if purpose == CATCH_UP:
            header = f"*** Missed in {escape(room)} while away:" if lines else None
            if not reply.get("complete"):
                lines.append("*** Earlier messages may be missing.")
        elif purpose == RECENT_ON_ENTRY:
            header = f"*** Recent messages in {escape(room)}:" if lines else None
        else:
            header = f"*** Last messages in {escape(room)}:" if lines else None
            header = header or f"*** No messages kept in {escape(room)}."
        return _joined_lines(header, *lines)

    def _event(self, event: Message) -> str | None:
        action = event.get("action")
        room, user = escape(event.get("room")), escape(event.get("user"))
        if action == "connecting":
            self.nick, self.room = str(event.get("user")), str(event.get("room"))
            self._greeting_due = True
            if self.requests.waiting_for(STARTUP):
                return None
            return self._greet()
        if action in ("joined", "join"):  # join: the original server's greeting, to all
            return f"*** {user} joined {room}"
        if action == "left":
            how = " (connection lost)" if event.get("shame") else ""
            return f"*** {user} left {room}{how}"
        if action == "nick_changed":
            old, new = escape(event.get("from_user")), escape(event.get("to_user"))
            return f"*** {old} is now known as {new}"
        if action == protocol.CHAT_MESSAGE:
            if not self.seen.first_time(str(self.room), event.get("id")):
                return None  # already shown, from the history
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
    if action == protocol.HISTORY:
        limit = request.get("limit", RECENT)
        return "/history" if limit == RECENT else f"/history {escape(limit)}"
    if action == protocol.CHAT_MESSAGE:
        text = escape(request.get("message", ""))
        return f'"{text[:QUOTED_CHARS]}…"' if len(text) > QUOTED_CHARS else f'"{text}"'
    return escape(action)


# ------------------------------------------------------------------------ connecting


REFUSALS: Final = {  # what a refused handshake means, by status
    403: "the server refused this client",
    429: "the server takes no more connections from your address",
    503: "the server is full, try again later",
}
INSECURE_WARNING: Final = (
    "--insecure: the server's certificate is not checked; "
    "anyone on the way could read or change the chat."
)


def unreachable(url: str, error: BaseException) -> str:
    """Why connecting to `url` failed, in plain words, on one line."""
    if isinstance(error, WSServerHandshakeError):
        answer = f"HTTP {error.status}{_status_phrase(error.status)}"
        if error.status in REFUSALS:
            return f"cannot connect to {url}: {REFUSALS[error.status]} ({answer})"
        return f"cannot connect to {url}: the server answered {answer}"
    if isinstance(error, ClientConnectorCertificateError):
        detail = getattr(error.certificate_error, "verify_message", "") or error.certificate_error
        return f"cannot reach {url}: its certificate is not trusted ({detail})"
    if isinstance(error, ClientSSLError):
        return f"cannot reach {url}: the TLS handshake failed (is it a TLS server?)"
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
