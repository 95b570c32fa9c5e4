"""One /chat connection: its nick and room, and the answer to each of its requests.

Handling a request is synchronous: the registry move, the broadcast and the reply are decided
in one step of the event loop, so no other connection can see a half-done move. The view
(in `server.py`) only feeds frames in and writes the replies out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import protocol, utils
from .protocol import Message, ProtocolError
from .utils import Registry
from .wire import ChatSocket

logger = logging.getLogger(__name__)


class ChatSession:
    """The state of one connection registered as `nick` in `room`."""

    __slots__ = ("max_message_chars", "nick", "room", "rooms", "socket")

    def __init__(
        self,
        rooms: Registry[ChatSocket],
        socket: ChatSocket,
        nick: str,
        *,
        room: str = protocol.DEFAULT_ROOM,
        max_message_chars: int = protocol.DEFAULT_MAX_MESSAGE_CHARS,
    ) -> None:
        self.rooms = rooms
        self.socket = socket
        self.nick = nick
        self.room = room
        self.max_message_chars = max_message_chars

    # ------------------------------------------------------------------ lifecycle

    def enter(self) -> None:
        """Register in the room, greet this socket first, then tell the others."""
        utils.add_member(self.rooms, self.room, self.nick, self.socket)
        self._send(protocol.connecting(self.room, self.nick))
        self._broadcast(protocol.joined(self.room, self.nick))

    def leave(self, *, shame: bool) -> None:
        """Unregister and tell the room; safe to call whatever state the connection is in."""
        if utils.remove_member(self.rooms, self.room, self.nick, self.socket):
            self._broadcast(protocol.left(self.room, self.nick, shame=shame))

    # ------------------------------------------------------------------ requests

    def handle_text(self, text: str) -> bytes:
        """The serialized reply to one text frame. Never raises for anything a client sends."""
        try:
            request = protocol.parse_request(text)
        except ProtocolError as exc:
            return protocol.encode(protocol.fail(None, exc.text))
        action: Any = request.get("action")
        handler = _HANDLERS.get(action) if isinstance(action, str) else None
        if handler is None:
            logger.debug("%s: action not allowed", self.nick)
            return _encode_failure(action, protocol.NOT_ALLOWED)
        try:
            reply = handler(self, request)
        except ProtocolError as exc:
            reply = protocol.fail(action, exc.text)
        logger.debug("%s: %s -> %s", self.nick, action, reply["success"])
        return protocol.encode(reply)

    def set_nick(self, request: Message) -> Message:
        new = protocol.validate_nick(request.get("nick"))
        old = self.nick
        utils.change_nick(self.rooms, self.room, old, new)
        self.nick = new
        self._broadcast(protocol.nick_changed(self.room, old, new))
        return protocol.ok(protocol.SET_NICK)

    def join_room(self, request: Message) -> Message:
        new = protocol.validate_room(request.get("room"))
        old = self.room
        utils.change_room(self.rooms, old, new, self.nick)
        self._broadcast(protocol.left(old, self.nick, shame=False), room=old)
        self.room = new
        self._broadcast(protocol.joined(new, self.nick))
        return protocol.ok(protocol.JOIN_ROOM)

    def chat_message(self, request: Message) -> Message:
        text = protocol.validate_chat_message(request.get("message"), self.max_message_chars)
        self._broadcast(protocol.chat_broadcast(text, self.nick))
        return protocol.ok(protocol.CHAT_MESSAGE, text)

    def user_list(self, request: Message) -> Message:
        room = request.get("room")
        if room is None:
            room = self.room
        elif not isinstance(room, str):
            raise ProtocolError(protocol.ROOM_INVALID)
        return protocol.user_list_reply(room, utils.list_users(self.rooms, room))

    # ------------------------------------------------------------------ helpers

    def _send(self, message: Message) -> None:
        self.socket.send_payload_nowait(protocol.encode(message))

    def _broadcast(self, message: Message, *, room: str | None = None) -> None:
        members = self.rooms.get(self.room if room is None else room)
        if members:
            utils.broadcast(members.values(), message, exclude=self.socket)


_HANDLERS: dict[str, Callable[[ChatSession, Message], Message]] = {
    protocol.SET_NICK: ChatSession.set_nick,
    protocol.JOIN_ROOM: ChatSession.join_room,
    protocol.CHAT_MESSAGE: ChatSession.chat_message,
    protocol.USER_LIST: ChatSession.user_list,
}


def _encode_failure(action: object, text: str) -> bytes:
    """A failure naming the action as sent; `null` if that cannot be serialized (too deep)."""
    try:
        return protocol.encode(protocol.fail(action, text))
    except ValueError:
        return protocol.encode(protocol.fail(None, text))
