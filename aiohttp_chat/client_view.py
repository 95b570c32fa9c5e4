"""What the terminal client knows of its chat: the requests in flight, the messages shown,
and the text to print for each server message (through `client_console`'s formatting).

`ChatView.received` turns each server message into readable text (or none) and the
requests to make next: the nick and room wished for, from a server before protocol 1.2, and
the room's members and history when that is due (on entering a room, and after a reconnect
for what was missed). It highlights the messages that mention you (`mentions.py`), keeps
the members of the room for nick completion (`client_completion.Members`), and knows where
`/more` goes on from. Pure state, no I/O: the client's tasks feed it, send what it returns
and tell it (`sent`) what went out.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from . import protocol
from .client_completion import Members
from .client_console import (
    ASK_NICK_AGAIN,
    BELL,
    MAYBE_MISSING,
    NEW_SINCE,
    RECENT,
    beginning,
    cannot_page,
    escape,
    highlighted,
    history_header,
    history_line,
    join_command,
    join_offer,
    live_line,
    missed_header,
    more_members,
    none_kept,
    nothing_earlier,
    recent_header,
    rooms_lines,
    typed,
    wish_refused,
)
from .mentions import is_mention
from .protocol import Message

SEEN_IDS: Final = 5000  # message ids remembered to show each message once


class Purpose(enum.Enum):
    """Why a request was sent, which decides how its reply is shown."""

    USER = "user"  # typed: every reply is shown
    STARTUP = "startup"  # --nick, --room and their restoring: the greeting sums them up
    RECENT_ON_ENTRY = "recent"  # history on entering a room: quiet if refused
    CATCH_UP = "catch-up"  # history after a reconnect: quiet if refused
    MEMBERS = "members"  # user_list on entering a room, for nick completion: quiet


QUIET: Final = frozenset({Purpose.RECENT_ON_ENTRY, Purpose.CATCH_UP, Purpose.MEMBERS})


class Request(NamedTuple):
    """A request to make (or made), and why."""

    message: Message
    purpose: Purpose


class Received(NamedTuple):
    """What a server message means to the client: the text to show (lines joined by
    newlines; None: nothing) and the requests to make now, in this order."""

    text: str | None
    requests: list[Request]


class Requests:
    """The requests in flight, to word each reply by the request it answers.

    A reply is matched to the oldest request of its action: the original server never
    answers a successful `join_room`, so replies need not come for every request.
    """

    def __init__(self) -> None:
        self._pending: deque[Request] = deque()
        self.answered = asyncio.Event()  # set while no request waits for its reply
        self.answered.set()
        self.replies = 0  # replies received, to tell a server that stopped answering

    def add(self, request: Message, purpose: Purpose) -> None:
        self._pending.append(Request(request, purpose))
        self.answered.clear()

    def match(self, action: object) -> Request:
        self.replies += 1
        found = Request({}, Purpose.USER)
        for index, pending in enumerate(self._pending):
            if pending.message.get("action") == action:
                found = pending
                del self._pending[index]
                break
        if not self._pending:
            self.answered.set()
        return found

    def waiting_for(self, purpose: Purpose) -> bool:
        return any(p == purpose for _, p in self._pending)

    def clear(self) -> None:
        """A new connection: nothing sent on the old one will be answered."""
        self._pending.clear()
        self.answered.set()


class Seen:
    """The chat messages shown, by room and id, and the last one of each room."""

    def __init__(self) -> None:
        self._ids: OrderedDict[tuple[str, str], int] = OrderedDict()  # -> when, in `count`
        self.count = 0  # messages noted so far
        self.last: dict[str, str] = {}  # room -> id of the newest message shown

    def first_time(self, room: str, id: object, *, newest: bool = True) -> bool:
        """Note message `id` of `room`, the newest shown unless not `newest` (`/more`);
        whether it is new. Messages without an id always are."""
        if not isinstance(id, str):
            return True
        if newest:
            self.last[room] = id
        key = (room, id)
        if key in self._ids:
            return False
        self.count += 1
        self._ids[key] = self.count
        if len(self._ids) > SEEN_IDS:
            self._ids.popitem(last=False)
        return True

    def since(self, room: str, id: object, count: int) -> bool:
        """Whether message `id` of `room` was first shown after `count` messages were."""
        return self._ids.get((room, id) if isinstance(id, str) else ("", ""), 0) > count


class Paging:
    """Where `/more` goes on from, in each room: the oldest message of the run back through
    its history (which entering the room or `/history` starts; else the first message shown
    live), and whether the server keeps nothing older."""

    def __init__(self) -> None:
        self._rooms: dict[str, tuple[str | None, bool]] = {}

    def where(self, room: str) -> tuple[str | None, bool]:
        """The oldest message shown in `room` (None: none yet), and whether it is the first."""
        return self._rooms.get(room, (None, False))

    def start(self, room: str, messages: list[Message], complete: bool) -> None:
        """The last `messages` of `room` were shown; `complete`: all that it keeps."""
        self._rooms[room] = (_id_of(messages[0]) if messages else None, complete)

    def live(self, room: str, id: object) -> None:
        """Message `id` was shown as it came: the run starts there if none had."""
        oldest, first = self.where(room)
        if oldest is None and isinstance(id, str):
            self._rooms[room] = (id, first)

    def earlier(self, room: str, messages: list[Message], complete: bool) -> None:
        """`/more` showed `messages`; nothing older is kept if `complete`, or if there were
        none (the server no longer keeps the message it was asked to go back from)."""
        oldest, _ = self.where(room)
        if messages:
            oldest = _id_of(messages[0]) or oldest
        self._rooms[room] = (oldest, complete or not messages)


def _id_of(message: Message) -> str | None:
    id = message.get("id")
    return id if isinstance(id, str) and id else None


def _listed(value: object) -> list[Message]:
    """The objects of a list in a reply (anything else, from a broken server: none)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


class ChatView:
    """Formats server messages; knows the nick, the room and what was shown.

    Each connection asks for the nick and room the user wants (`wish`): in the handshake,
    to a server that speaks protocol 1.2, which says at once if it refused either; with
    `set_nick` and `join_room` requests to one that does not (the original), which
    `received` returns when `connecting` shows the server is one of those. The greeting
    (`Connected to ROOM as NICK`) waits for that answer, so that it names where the user
    ended up; then the view asks for the room's history: its recent messages, or after a
    reconnect those missed since the last one shown. Until the greeting, `entered` is not
    set and nothing typed is sent. If `strict` (piped input), a refused nick or room is
    `failed`, and the greeting never comes.

    A chat message that mentions you (`mentions.is_mention`, by your nick at the time) is
    shown in `mention_style` (an SGR sequence from `client_console.MENTION_STYLES`; "":
    plain), with the terminal bell before it if `bell` and it is new to you: live, or
    missed while away (not when history you asked for shows it again).
    """

    def __init__(
        self,
        *,
        strict: bool = False,
        times: bool = False,
        width: Callable[[], int] | None = None,
        offer: Callable[[str], None] | None = None,
        mention_style: str = "",
        bell: bool = False,
    ) -> None:
        self.mention_style = mention_style
        self.bell = bell
        self.members = Members()  # of the current room, for nick completion
        self.paging = Paging()
        self.pages = True  # the server pages back through history (protocol 1.2)
        self.times = times  # live lines show when they were sent
        self.width = width  # of the terminal, to wrap long lines to (None: not wrapped)
        self.offer = offer  # puts a line in the input row, for Enter to send
        self.nick: str | None = None
        self.room: str | None = None
        self.token: str | None = None  # to resume the connection with (protocol 1.2)
        self.limits: Message = {}  # the connection's, as `connecting` announced them
        self.strict = strict
        self.failed: str | None = None  # why it cannot go on (strict: a refused wish)
        self.ask_nick = False  # the wished nick was refused: the next line typed is one
        self.refused = 0  # requests the user made that the server refused
        self.entered = asyncio.Event()  # greeted: what is typed may be sent
        self.requests = Requests()
        self.seen = Seen()
        self._asked: dict[str, int] = {}  # room -> `seen.count` when its history was asked
        self._wish: tuple[str | None, str | None] = (None, None)
        self._in_handshake = False
        self._first = True
        self._unsent = 0  # requests for the wish, returned but not yet sent: enter after
        self._greeting_due = False
        self._resumed = False

    @property
    def answered(self) -> asyncio.Event:
        return self.requests.answered

    def connected(
        self,
        *,
        resumed: bool,
        nick: str | None = None,
        room: str | None = None,
        in_handshake: bool = False,
    ) -> None:
        """A new connection starts (`resumed`: after a lost one), for `nick` and `room`
        (None: any), asked for in its handshake (`query`) if `in_handshake`."""
        self.requests.clear()
        self.entered.clear()
        self._wish = (nick or None, None if room == protocol.DEFAULT_ROOM else room or None)
        self._in_handshake = in_handshake
        self._first = True  # no message yet on this connection
        self._unsent = 0
        self._resumed = resumed
        self._greeting_due = False

    def query(self) -> dict[str, str]:
        """What the handshake URL asks for (a server before protocol 1.2 ignores it)."""
        nick, room = self._wish
        fields = {"nick": nick, "room": room, "resume": self.token}
        return {key: value for key, value in fields.items() if value is not None}

    def sent(self, request: Message, purpose: Purpose = Purpose.USER) -> None:
        """`request` went out. Once the requests for the wish have (a server that answers
        them late, or never: the original's `join_room`, must not hold it back), what is
        typed may follow."""
        self.requests.add(request, purpose)
        if purpose is Purpose.STARTUP and self._unsent:
            self._unsent -= 1
            if not self._unsent:
                self.entered.set()

    def received(self, message: Any) -> Received:
        """What `message` from the server shows, and the requests to make for it."""
        asks: list[Request] = []
        if not isinstance(message, dict):
            return Received(f"??? {escape(message)}", asks)
        if "success" not in message:
            return Received(self._event(message, asks), asks)
        request, purpose = self.requests.match(message.get("action"))
        if isinstance(token := message.get("resume"), str):
            self.token = token
        if not message.get("success"):
            if purpose in QUIET:
                return Received(None, asks)  # a server without history (the original)
            text: str | None = f"!!! {typed(request, message.get('action'))}: "
            text = f"{text}{escape(message.get('message'))}"
            if existing := self._alike_room(message):
                text = f"{text}\n{join_offer(existing)}"
            if purpose is Purpose.USER:
                self.refused += 1
            elif purpose is Purpose.STARTUP:
                self._refused_at_start(request, message.get("message"))
        else:
            text = self._reply(message, request, purpose, asks)
            if purpose is Purpose.STARTUP:
                text = None  # the greeting says it
        if (
            self._greeting_due
            and not self.requests.waiting_for(Purpose.STARTUP)
            and not self.failed
        ):
            text = _joined_lines(text, self._greet(asks))
        return Received(text, asks)

    def _alike_room(self, refusal: Message) -> str | None:
        """The existing room a refused `join_room` named as alike to the one asked for
        (protocol 1.2), offered in the input row; else None."""
        why = refusal.get("message")
        if refusal.get("action") != protocol.JOIN_ROOM or not isinstance(why, str):
            return None
        existing = protocol.alike_room_of(why)
        try:  # a room name, or not offered: from a hostile server, it could be anything
            if existing is None or protocol.validate_room(existing) != existing:
                return None
        except protocol.ProtocolError:
            return None
        if self.offer is not None:
            self.offer(join_command(existing))
        return existing

    def _refused_at_start(self, request: Message, why: object) -> None:
        """A wished nick or room was refused: strict, the end; else the nick is asked again."""
        nick = request.get("action") == protocol.SET_NICK
        if self.strict and not self._resumed:  # (a nick taken while away is no mistake)
            option, name = ("--nick", "nick") if nick else ("--room", "room")
            self.failed = wish_refused(option, request.get(name), why)
        elif nick:
            self.ask_nick = True

    def _greet(self, asks: list[Request]) -> str:
        """The greeting, once the connection's first requests are answered; then history."""
        self._greeting_due = False
        self.entered.set()
        room, nick = escape(self.room), escape(self.nick)
        if self.room is not None:  # who is there, to complete their nicks
            asks.append(self._members_request(self.room))
        if self.room is not None and (after := self.seen.last.get(self.room)) and self._resumed:
            asks.append(self._history_request(self.room, Purpose.CATCH_UP, after=after))
        elif self.room is not None:
            asks.append(self._history_request(self.room, Purpose.RECENT_ON_ENTRY, limit=RECENT))
        if self._resumed:
            greeting = f"*** Reconnected: in {room} as {nick}."
        else:
            greeting = f"*** Connected to {room} as {nick}. Type /help for commands."
        if self.ask_nick:
            greeting += f"\n{ASK_NICK_AGAIN.format(nick=nick)}"
        return greeting

    def _members_request(self, room: str) -> Request:
        return Request({"action": protocol.USER_LIST, "room": room}, Purpose.MEMBERS)

    def nicks(self) -> list[str]:
        """The nicks to complete, in the order to offer them: the room's members but you,
        who spoke most recently first (`client_completion`)."""
        return self.members.ranked(own=self.nick)

    def more(self, limit: int = RECENT) -> Message | str:
        """What `/more` does: the request for the `limit` messages before the oldest shown
        in the room (the last ones, if none was), or the text to show instead."""
        room = str(self.room)
        if not self.pages:
            return cannot_page(room)
        oldest, first = self.paging.where(room)
        if first:
            return beginning(room)
        before = {} if oldest is None else {"before": oldest}
        return {"action": protocol.HISTORY, "room": room, **before, "limit": limit}

    def _history_request(self, room: str, purpose: Purpose, **fields: object) -> Request:
        self._asked[room] = self.seen.count  # what was shown by then
        return Request({"action": protocol.HISTORY, "room": room, **fields}, purpose)

    def _expect_wish(self, asks: list[Request], *, in_handshake: bool) -> None:
        """What the server will say about the nick and room wished: with protocol 1.2, the
        refusal that follows `connecting` if it did not grant them (only one: the room's,
        if both); else the answers to the requests for them (in `asks`), room first (nicks
        are unique per room: asked for where it will be used)."""
        nick, room = self._wish
        room_request = {"action": protocol.JOIN_ROOM, "room": room}
        nick_request = {"action": protocol.SET_NICK, "nick": nick}
        if in_handshake:
            if room is not None and room != self.room:
                self.requests.add(room_request, Purpose.STARTUP)
            elif nick is not None and nick != self.nick:
                self.requests.add(nick_request, Purpose.STARTUP)
            return
        if room is not None and room != self.room:
            asks.append(Request(room_request, Purpose.STARTUP))
        if nick is not None and nick != self.nick:
            asks.append(Request(nick_request, Purpose.STARTUP))
        self._unsent = len(asks)

    def _reply(
        self, reply: Message, request: Message, purpose: Purpose, asks: list[Request]
    ) -> str | None:
        action = reply.get("action")
        if action == protocol.SET_NICK:
            self.nick = str(request.get("nick", self.nick))
            return f"*** You are now known as {escape(self.nick)}"
        if action == protocol.JOIN_ROOM:
            self.room = str(request.get("room", self.room))
            self.members.clear()
            if purpose is Purpose.USER:
                asks.append(self._members_request(self.room))
                asks.append(self._history_request(self.room, Purpose.RECENT_ON_ENTRY, limit=RECENT))
            return f"*** You are now in {escape(self.room)}"
        if action == protocol.USER_LIST:
            users = reply.get("users")
            users = users if isinstance(users, list) else []
            if reply.get("room") == self.room:
                self.members.reset(users)
            if purpose is Purpose.MEMBERS:
                return None
            room = escape(reply.get("room"))
            if not users:
                return f"*** Nobody is in {room}"
            line = f"*** In {room}: {', '.join(escape(user) for user in users)}"
            count = reply.get("count")  # a big room's first page: the others are not shown
            if type(count) is int and count > len(users):
                line += "\n" + more_members(reply.get("room"), len(users), count)
            return line
        if action == protocol.CHAT_MESSAGE:
            self.seen.first_time(str(self.room), reply.get("id"))
            self.paging.live(str(self.room), reply.get("id"))
            return self._live({**reply, "user": self.nick})  # as the others see it
        if action == protocol.HISTORY:
            return self._history(reply, request, purpose)
        if action == protocol.ROOM_LIST:
            rooms = [
                (room["room"], room["users"])
                for room in _listed(reply.get("rooms"))
                if isinstance(room.get("room"), str) and type(room.get("users")) is int
            ]
            return rooms_lines(rooms, self.room)
        return None

    def _history(self, reply: Message, request: Message, purpose: Purpose) -> str | None:
        room = str(reply.get("room"))
        messages = _listed(reply.get("messages"))
        complete = reply.get("complete") is True
        before = request.get("before") if purpose is Purpose.USER else None
        if before is not None and any(m.get("id") == before for m in messages):
            self.pages = False  # it ignored `before`: a server that cannot page back
            return cannot_page(room)
        if purpose is not Purpose.CATCH_UP and room == self.room:  # who spoke before
            self.members.heard([m.get("user") for m in messages])
        if purpose is Purpose.CATCH_UP:
            self.paging.live(room, _id_of(messages[0]) if messages else None)
        elif before is not None:
            self.paging.earlier(room, messages, complete)
        else:
            self.paging.start(room, messages, complete)
        if purpose is Purpose.RECENT_ON_ENTRY:  # not what was shown live since it was asked
            asked = self._asked.pop(room, self.seen.count)
            messages = [m for m in messages if not self.seen.since(room, m.get("id"), asked)]
        new = [self.seen.first_time(room, m.get("id"), newest=before is None) for m in messages]
        if purpose is Purpose.CATCH_UP:  # each message once: skip what was shown live meanwhile
            messages = [m for m, first in zip(messages, new, strict=True) if first]
            for m in messages:  # said while away: since the last noted
                self.members.spoke(m.get("user"), live=False)
        mentions = [self._mentions(m) for m in messages]
        lines = [
            self._styled(history_line(m, width=self._columns()), mention)
            for m, mention in zip(messages, mentions, strict=True)
        ]
        if purpose is Purpose.RECENT_ON_ENTRY and any(new) and not all(new):  # back in a room
            lines.insert(new.index(True), NEW_SINCE)
        footer = None
        if purpose is Purpose.CATCH_UP:
            header = missed_header(room) if lines else None
            if not complete:
                footer = MAYBE_MISSING
            if self.bell and any(mentions) and header is not None:
                header = BELL + header  # missed while away: new to you
        elif purpose is Purpose.RECENT_ON_ENTRY:
            header = recent_header(room) if lines else None
        elif before is not None:
            header = history_header(room, earlier=True) if lines else None
            if complete:
                footer = beginning(room)
            elif not lines:
                footer = nothing_earlier(room)
        else:
            header = history_header(room, earlier=False) if lines else None
            header = header or none_kept(room)
        return _joined_lines(header, *lines, footer)

    def _event(self, event: Message, asks: list[Request]) -> str | None:
        action = event.get("action")
        room, user = escape(event.get("room")), escape(event.get("user"))
        first, self._first = self._first, False
        if action == "join" and first:  # the original's greeting (to all, the newcomer too)
            self.pages = False
            self.nick, self.room = str(event.get("user")), str(event.get("room"))
            self._expect_wish(asks, in_handshake=False)
            if not asks:  # (it says no more: no greeting to wait for)
                self.entered.set()
            asks.append(self._members_request(self._wish[1] or self.room))  # after the wish
            return f"*** {user} joined {room}"
        if action == "connecting":
            if self.room != event.get("room"):
                self.members.clear()
            self.pages = "protocol" in event  # paging came with protocol 1.2
            self.nick, self.room = str(event.get("user")), str(event.get("room"))
            self.token = token if isinstance(token := event.get("resume"), str) else None
            limits = event.get("limits")
            self.limits = limits if isinstance(limits, dict) else {}
            self._greeting_due = True
            self._expect_wish(asks, in_handshake=self._in_handshake and "protocol" in event)
            if self.requests.waiting_for(Purpose.STARTUP) or asks:
                return None
            return self._greet(asks)
        here = event.get("room") == self.room
        if action in ("joined", "join"):  # join: the original server's greeting, to all
            if here:
                self.members.joined(event.get("user"))
            return f"*** {user} joined {room}"
        if action == "left":
            if here:
                self.members.left(event.get("user"))
            how = " (connection lost)" if event.get("shame") else ""
            return f"*** {user} left {room}{how}"
        if action == "nick_changed":
            if here:
                self.members.renamed(event.get("from_user"), event.get("to_user"))
            old, new = escape(event.get("from_user")), escape(event.get("to_user"))
            return f"*** {old} is now known as {new}"
        if action == protocol.CHAT_MESSAGE:
            if not self.seen.first_time(str(self.room), event.get("id")):
                return None  # already shown, from the history
            self.members.spoke(event.get("user"))
            self.paging.live(str(self.room), event.get("id"))
            return self._live(event)
        return f"??? {escape(event)}"

    def _live(self, message: Message) -> str:
        """A message as it comes; a mention is styled, after the bell if it rings."""
        mention = self._mentions(message)
        text = self._styled(live_line(message, times=self.times, width=self._columns()), mention)
        return BELL + text if mention and self.bell else text

    def _mentions(self, message: Message) -> bool:
        return is_mention(message.get("user"), message.get("message"), self.nick)

    def _styled(self, text: str, mention: bool) -> str:
        return highlighted(text, self.mention_style) if mention else text

    def _columns(self) -> int | None:
        return self.width() if self.width is not None else None


def _joined_lines(*texts: str | None) -> str | None:
    return "\n".join(text for text in texts if text is not None) or None
