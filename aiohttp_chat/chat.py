"""One /chat connection: its nick and room, and the answer to each of its requests.

What the rooms are (this process alone, or several sharing Redis) is `rooms.py`'s business:
the session reads the same on both. The view (in `server.py`) only feeds frames in and
writes the replies out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, NamedTuple

from . import protocol
from .frames import ChatSocket
from .metrics import Stats
from .protocol import Message, ProtocolError, Wish
from .rooms import Chat, Rooms

logger = logging.getLogger(__name__)

# Requests of one connection that may wait for a chat message still with Redis; one more
# waits for them before the connection is read on.
MAX_UNANSWERED: Final = 64


class _Unanswered(NamedTuple):
    """A chat message with Redis: what its reply and broadcast need, once it is kept."""

    chat: Chat
    room: str  # where it was said (the sender may have moved on since)
    text: str
    stamp: str


class ChatSession:
    """The state of one connection registered as `nick` in `room` (a `rooms.Member`)."""

    __slots__ = (
        "_drained",
        "_unanswered",
        "max_message_chars",
        "may_change_room",
        "missed",
        "nick",
        "room",
        "rooms",
        "socket",
        "stats",
        "token",
    )

    def __init__(
        self,
        rooms: Rooms,
        socket: ChatSocket,
        nick: str,
        *,
        room: str = protocol.DEFAULT_ROOM,
        max_message_chars: int = protocol.DEFAULT_MAX_MESSAGE_CHARS,
        may_change_room: Callable[[], bool] | None = None,
    ) -> None:
        self.rooms = rooms
        self.socket = socket
        self.nick = nick
        self.room = room
        self.max_message_chars = max_message_chars
        self.may_change_room = may_change_room  # the budget of the client's address
        self.missed: str | None = None  # a room whose messages it may have missed
        self.token: str | None = None  # to resume it with (`resume.py`)
        self.stats: Stats = rooms.stats
        # Replies waiting, in order, behind a chat message still with Redis (None: none is).
        self._unanswered: deque[_Unanswered | bytes] | None = None
        self._drained: asyncio.Future[None] | None = None  # set once they are all answered

    # ------------------------------------------------------------------ lifecycle

    async def enter(self, wish: Wish, limits: Message) -> bool:
        """Register where the handshake asked (`wish`: resumed, or in its room under its
        nick, as far as the rules allow; else a default nick in `Default`, as the original),
        greet this socket first, then tell the others. False if no free default nick was
        found (then it is not registered)."""
        resumed = await self.rooms.resume(self, wish.resume) if wish.resume else None
        refusal = None if resumed is not None else await self._place(wish)
        if not self.nick:
            return False
        # Greeted before it is registered: nothing said in the room may come first.
        token = await self.rooms.issue_token(self)
        self.socket.reply(protocol.encode(protocol.connecting(self.room, self.nick, token, limits)))
        if refusal is not None:  # what it asked for and did not get, before anything else
            self.socket.reply(protocol.encode(refusal))
        if resumed is not None and resumed.replacing is not None:
            self.rooms.replace(resumed.replacing, self)
        else:
            await self.rooms.enter(self)
        heard = resumed is None or resumed.heard  # else it is back before it was missed
        if heard and not self.rooms.quiet(self.room):
            await self._broadcast(protocol.joined(self.room, self.nick))
        return True

    async def _place(self, wish: Wish) -> Message | None:
        """Choose the room and nick to enter with (a default nick if the wished one is not
        free); the refusal to tell if the wish was not granted."""
        refusal = None
        if wish.room is not None:
            try:
                self.room = await self._distinct(protocol.validate_room(wish.room))
            except ProtocolError as exc:
                refusal = protocol.fail(protocol.JOIN_ROOM, exc.text)
        nick = None
        if wish.nick is not None:
            try:
                nick = protocol.validate_nick(wish.nick)
            except ProtocolError as exc:
                refusal = refusal or protocol.fail(protocol.SET_NICK, exc.text)
            if nick is not None and (clash := await self.rooms.take(self.room, nick)):
                refusal = refusal or protocol.fail(protocol.SET_NICK, clash.text(protocol.SET_NICK))
                nick = None
        self.nick = nick or await self.rooms.default_nick(self.room) or ""
        return refusal

    def leave(self, *, shame: bool) -> None:
        """Unregister and tell the room (unless it is quiet, counting this member); safe to
        call whatever state the connection is in."""
        left = protocol.encode(protocol.left(self.room, self.nick, shame=shame))
        self.rooms.leave(self, None if self.rooms.quiet(self.room) else left)

    def log_fields(self, address: str) -> dict[str, str]:
        """What a log line about this connection names (see `logs.py`)."""
        return {"address": address, "nick": self.nick, "room": self.room}

    # ------------------------------------------------------------------ requests

    async def handle_text(self, text: str) -> bytes | None:
        """The serialized reply to one text frame, or None if it comes later: a chat message
        with Redis is answered once Redis has kept it, and meanwhile the connection's next
        requests are read (see `answer`). Never raises for anything a client sends."""
        try:
            request = protocol.parse_request(text)
        except ProtocolError as exc:
            self.stats.request(None, "refused")
            return protocol.encode(protocol.fail(None, exc.text))
        action: Any = request.get("action")
        if action == protocol.CHAT_MESSAGE:
            said = self._chat_message(request)
            if said is None and self._must_wait():
                await self.answered()
            return said
        await self.answered()  # anything else comes after the chat messages sent before it
        handler = _HANDLERS.get(action) if isinstance(action, str) else None
        if handler is None:
            logger.debug("%s: action not allowed", self.nick)
            self.stats.request(action, "refused")
            return encode_failure(action, protocol.NOT_ALLOWED)
        outcome = "ok"
        try:
            reply = await handler(self, request)
        except ProtocolError as exc:
            reply, outcome = protocol.fail(action, exc.text), exc.outcome
        self.stats.request(action, outcome)
        logger.debug("%s: %s -> %s", self.nick, action, reply["success"])
        return protocol.encode(reply)

    async def set_nick(self, request: Message) -> Message:
        new = protocol.validate_nick(request.get("nick"))
        old = self.nick
        await self.rooms.rename(self, new)
        await self._broadcast(protocol.nick_changed(self.room, old, new))
        return await self._moved(protocol.SET_NICK)

    async def join_room(self, request: Message) -> Message:
        new = protocol.validate_room(request.get("room"))
        if self.may_change_room is not None and not self.may_change_room():
            raise ProtocolError(protocol.ROOM_CHANGES_LIMITED, "rate_limited")
        await self._distinct(new)
        old = self.room
        old_quiet = self.rooms.quiet(old)  # counting this member, before it leaves
        await self.rooms.move(self, new)
        if not old_quiet:
            await self._broadcast(protocol.left(old, self.nick, shame=False), old)
        if not self.rooms.quiet(new):
            await self._broadcast(protocol.joined(new, self.nick))
        return await self._moved(protocol.JOIN_ROOM)

    def _chat_message(self, request: Message) -> bytes | None:
        try:
            text = protocol.validate_chat_message(request.get("message"), self.max_message_chars)
        except ProtocolError as exc:
            self.stats.request(protocol.CHAT_MESSAGE, exc.outcome)
            return protocol.encode(protocol.fail(protocol.CHAT_MESSAGE, exc.text))
        stamp = protocol.format_time(time.time())
        chat = self.rooms.chat(self, text, stamp)
        if chat.done and self._unanswered is None:
            return self._kept(chat, self.room, text, stamp)
        if self._unanswered is None:
            self._unanswered = deque()
        self._unanswered.append(_Unanswered(chat, self.room, text, stamp))
        chat.when_done(self._answer_kept)
        return None

    def _must_wait(self) -> bool:
        """Whether the next request waits until the chat messages sent are kept: too many
        of them, or the rooms could keep the next one first."""
        unanswered = self._unanswered
        if unanswered is None:
            return False
        last = unanswered[-1]
        return len(unanswered) > MAX_UNANSWERED or (
            isinstance(last, _Unanswered) and not last.chat.in_order
        )

    def _kept(self, chat: Chat, room: str, text: str, stamp: str) -> bytes:
        """Broadcast a chat message said in `room` here, now that it is kept (and told other
        nodes); its reply."""
        try:
            payload, id = chat.outcome()
        except ProtocolError as exc:
            self.stats.request(protocol.CHAT_MESSAGE, exc.outcome)
            return protocol.encode(protocol.fail(protocol.CHAT_MESSAGE, exc.text))
        except Exception:  # a bug: said, and answered, so that the replies behind it go on
            logger.exception("Internal error keeping a chat message of %s", self.nick)
            self.stats.request(protocol.CHAT_MESSAGE, "refused")
            return protocol.encode(protocol.fail(protocol.CHAT_MESSAGE, protocol.UNAVAILABLE))
        self.rooms.broadcast_here(room, payload, self.socket)
        self.stats.chat_messages += 1
        self.stats.request(protocol.CHAT_MESSAGE, "ok")
        return protocol.encode(protocol.chat_reply(text, id, stamp))

    # ------------------------------------------------------------------ replies in order

    def answer(self, reply: bytes) -> bool:
        """Queue `reply` on the socket, after those of the chat messages still with Redis:
        replies come in the order of the requests. False if the connection must wait for
        them before it reads on (`answered`): it has too many unanswered requests."""
        if self._unanswered is None:
            self.socket.reply(reply)
            return True
        self._unanswered.append(reply)
        return len(self._unanswered) <= MAX_UNANSWERED

    def _answer_kept(self, _: object) -> None:
        """Some chat message is kept: send what is ready at the head of the replies."""
        unanswered = self._unanswered
        while unanswered:
            head = unanswered[0]
            if not isinstance(head, bytes):
                if not head.chat.done:
                    return
                head = self._kept(*head)
            unanswered.popleft()
            self.socket.reply(head)
        self._unanswered = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    async def answered(self) -> None:
        """Return once every chat message sent so far is answered (and broadcast)."""
        while self._unanswered is not None:
            if self._drained is None or self._drained.done():  # (done: a waiter cancelled)
                self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    async def user_list(self, request: Message) -> Message:
        room, after = protocol.validate_user_list(request, self.room)
        return await self.rooms.user_list(room, after)

    async def room_list(self, request: Message) -> Message:
        return protocol.room_list_reply(await self.rooms.room_list())

    async def history_request(self, request: Message) -> Message:
        room, after, before, limit = protocol.validate_history(request, self.room)
        self.stats.history_requests += 1
        messages, complete = await self.rooms.read_history(room, after, limit, before)
        if self.missed == room and before is None:  # told once, when it catches up
            complete, self.missed = False, None
        return protocol.history_reply(room, messages, complete)

    # ------------------------------------------------------------------ helpers

    async def _distinct(self, room: str) -> str:
        """`room`, unless its name is alike to an existing room's: then `ProtocolError`,
        whose text names that room."""
        if (existing := await self.rooms.alike_room(room)) is not None:
            raise ProtocolError(protocol.room_alike_text(existing))
        return room

    async def _moved(self, action: str) -> Message:
        """The success reply to a move, with the resume token for the new place."""
        return protocol.moved(action, await self.rooms.issue_token(self))

    async def _broadcast(self, message: Message, room: str | None = None) -> None:
        """Send `message` to the room, on every node, the sender excepted (`Rooms.broadcast`)."""
        room = self.room if room is None else room
        await self.rooms.broadcast(room, protocol.encode(message), self.socket)


_HANDLERS: dict[str, Callable[[ChatSession, Message], Awaitable[Message]]] = {
    protocol.SET_NICK: ChatSession.set_nick,
    protocol.JOIN_ROOM: ChatSession.join_room,
    protocol.USER_LIST: ChatSession.user_list,
    protocol.HISTORY: ChatSession.history_request,
    protocol.ROOM_LIST: ChatSession.room_list,
}


def encode_failure(action: object, text: str) -> bytes:
    """A failure naming the action as sent; `null` if that cannot be serialized (too deep)."""
    try:
        return protocol.encode(protocol.fail(action, text))
    except ValueError:
        return protocol.encode(protocol.fail(None, text))
