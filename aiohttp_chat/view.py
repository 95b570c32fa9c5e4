"""What the terminal client knows of its chat: the requests in flight, the messages shown,
and the text to print for each server message (through `console`'s formatting).

`ChatView` turns each server message into readable text (or none) and asks for the room's
history when that is due: on entering a room, and after a reconnect for what was missed.
Pure state, no I/O: the client's tasks feed it and send what it asks for.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Any, Final

from . import protocol
from .console import RECENT, chat_line, escape, history_line, typed
from .protocol import Message

SEEN_IDS: Final = 5000  # message ids remembered to show each message once


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
