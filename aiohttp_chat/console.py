"""What the terminal client shows and what its commands mean: pure functions, no I/O.

`ChatView` turns each server message into one readable line (or none), with every piece of
text from peers escaped so that nobody can drive your terminal with escape sequences.
`parse_line` turns what the user typed into a request, a local action or a chat message.
"""

from __future__ import annotations

import asyncio
import sys
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import Any, Final, TextIO

from . import protocol
from .protocol import Message

HELP: Final = """\
Commands:
  /nick NAME     change your nick (3-20 characters)
  /join ROOM     move to another room (3-20 characters)
  /users [ROOM]  list who is in ROOM (default: your room)
  /help          show this help
  /quit          leave (so do Ctrl-D, Ctrl-C and the original's `command close`)
Anything else is sent as a chat message; start it with // to send a message that begins with /."""

QUIT_WORDS: Final = frozenset({"/quit", "/exit", "command close"})


def escape(text: object) -> str:
    """`text` with control and invisible formatting characters made visible (`\\x1b`, ...)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        char if char == " " or unicodedata.category(char)[0] not in "CZ" else _visible(char)
        for char in text
    )


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
    """Formats server messages; remembers the requests in flight to word their replies."""

    def __init__(self) -> None:
        self.nick: str | None = None
        self.room: str | None = None
        self._requests: deque[Message] = deque()
        self.answered = asyncio.Event()  # set while no request waits for its reply
        self.answered.set()

    def sent(self, request: Message) -> None:
        self._requests.append(request)
        self.answered.clear()

    def show(self, message: Any) -> str | None:
        """The line to print for `message`, or None for messages not worth a line."""
        if not isinstance(message, dict):
            return f"??? {escape(message)}"
        if "success" in message:
            request = self._requests.popleft() if self._requests else {}
            if not self._requests:
                self.answered.set()
            return self._reply(message, request)
        return self._event(message)

    def _reply(self, reply: Message, request: Message) -> str | None:
        action = reply.get("action")
        if not reply.get("success"):
            return f"!!! {escape(action)}: {escape(reply.get('message'))}"
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
        return None  # a chat message of ours: the terminal already shows what we typed

    def _event(self, event: Message) -> str | None:
        action = event.get("action")
        room, user = escape(event.get("room")), escape(event.get("user"))
        if action == "connecting":
            self.nick, self.room = str(event.get("user")), str(event.get("room"))
            return f"*** Connected to {room} as {user}. Type /help for commands."
        if action == "joined":
            return f"*** {user} joined {room}"
        if action == "left":
            how = " (connection lost)" if event.get("shame") else ""
            return f"*** {user} left {room}{how}"
        if action == "nick_changed":
            old, new = escape(event.get("from_user")), escape(event.get("to_user"))
            return f"*** {old} is now known as {new}"
        if action == protocol.CHAT_MESSAGE:
            return f">>>{user}: {escape(event.get('message'))}"
        return f"??? {escape(event)}"


def print_above_input(line: str, stream: TextIO = sys.stdout) -> None:
    """Print `line` above the line being typed on a VT100 terminal, leaving that line intact.

    Save the cursor, open a line by scrolling, move up into it, insert an empty line there,
    write the text, then restore the cursor one line lower, where the input line now is.
    """
    stream.write(f"\x1b7\n\x1b[A\x1b[L{line}\n\x1b8\x1b[B")
    stream.flush()
