"""One /chat connection: its nick and room, and the answer to each of its requests.

On a single server nothing here waits: the registry move, the broadcast and the reply are
decided in one step of the event loop, so no other connection can see a half-done move. With
a `Cluster` (several servers sharing Redis), Redis decides first what must be global (nicks,
user lists) and carries the broadcasts to the other nodes; the local registry follows. The
view (in `server.py`) only feeds frames in and writes the replies out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import protocol, utils
from .history import MemoryHistory
from .metrics import Stats
from .protocol import Message, ProtocolError
from .utils import Registry
from .wire import ChatSocket

if TYPE_CHECKING:
    from .cluster import Cluster

logger = logging.getLogger(__name__)


class ChatSession:
    """The state of one connection registered as `nick` in `room`."""

    __slots__ = (
        "cluster",
        "history",
        "max_message_chars",
        "nick",
        "room",
        "rooms",
        "socket",
        "stats",
    )

    def __init__(
        self,
        rooms: Registry[ChatSocket],
        socket: ChatSocket,
        nick: str,
        *,
        room: str = protocol.DEFAULT_ROOM,
        max_message_chars: int = protocol.DEFAULT_MAX_MESSAGE_CHARS,
        history: MemoryHistory | None = None,
        cluster: Cluster | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.rooms = rooms
        self.socket = socket
        self.nick = nick
        self.room = room
        self.max_message_chars = max_message_chars
        self.history = MemoryHistory() if history is None else history  # unused with a cluster
        self.cluster = cluster
        self.stats = Stats() if stats is None else stats

    # ------------------------------------------------------------------ lifecycle

    async def enter(self) -> None:
        """Register in the room, greet this socket first, then tell the others."""
        utils.add_member(self.rooms, self.room, self.nick, self.socket)
        if self.cluster is not None:
            self.cluster.sessions[self.socket] = self
        self.socket.send_payload_nowait(protocol.encode(protocol.connecting(self.room, self.nick)))
        await self._broadcast(protocol.joined(self.room, self.nick), required=False)

    def leave(self, *, shame: bool) -> None:
        """Unregister and tell the room; safe to call whatever state the connection is in."""
        if not utils.remove_member(self.rooms, self.room, self.nick, self.socket):
            return
        message = protocol.encode(protocol.left(self.room, self.nick, shame=shame))
        self._deliver(self.room, message)
        if self.cluster is not None:
            self.cluster.sessions.pop(self.socket, None)
            self.cluster.forget(self.room, self.nick, message)

    def log_fields(self, address: str) -> dict[str, str]:
        """What a log line about this connection names (see `logs.py`)."""
        return {"address": address, "nick": self.nick, "room": self.room}

    # ------------------------------------------------------------------ requests

    async def handle_text(self, text: str) -> bytes:
        """The serialized reply to one text frame. Never raises for anything a client sends."""
        try:
            request = protocol.parse_request(text)
        except ProtocolError as exc:
            self.stats.request(None, "refused")
            return protocol.encode(protocol.fail(None, exc.text))
        action: Any = request.get("action")
        handler = _HANDLERS.get(action) if isinstance(action, str) else None
        if handler is None:
            logger.debug("%s: action not allowed", self.nick)
            self.stats.request(action, "refused")
            return encode_failure(action, protocol.NOT_ALLOWED)
        try:
            reply = await handler(self, request)
        except ProtocolError as exc:
            reply = protocol.fail(action, exc.text)
        self.stats.request(action, "ok" if reply["success"] else "refused")
        logger.debug("%s: %s -> %s", self.nick, action, reply["success"])
        return protocol.encode(reply)

    async def set_nick(self, request: Message) -> Message:
        new = protocol.validate_nick(request.get("nick"))
        old = self.nick
        if self.cluster is not None:
            if new in self.rooms[self.room]:
                raise ProtocolError(protocol.NICK_TAKEN)
            await self.cluster.rename(self.room, old, new)
        utils.change_nick(self.rooms, self.room, old, new)
        self.nick = new
        await self._broadcast(protocol.nick_changed(self.room, old, new), required=False)
        return protocol.ok(protocol.SET_NICK)

    async def join_room(self, request: Message) -> Message:
        new = protocol.validate_room(request.get("room"))
        old = self.room
        if self.cluster is not None:
            if self.nick in self.rooms.get(new, {}):
                raise ProtocolError(protocol.NICK_TAKEN_IN_ROOM)
            await self.cluster.move(self.nick, old, new)
        utils.change_room(self.rooms, old, new, self.nick)
        self.room = new
        await self._broadcast(protocol.left(old, self.nick, shame=False), old, required=False)
        await self._broadcast(protocol.joined(new, self.nick), required=False)
        return protocol.ok(protocol.JOIN_ROOM)

    async def chat_message(self, request: Message) -> Message:
        text = protocol.validate_chat_message(request.get("message"), self.max_message_chars)
        stamp = protocol.format_time(time.time())
        if self.cluster is not None:  # Redis gives the id, and tells the other nodes
            payload, id = await self.cluster.publish_chat(self.room, self.nick, text, stamp)
        else:
            id = self.history.append(self.room, self.nick, text, stamp)
            payload = protocol.encode(protocol.chat_broadcast(text, self.nick, id, stamp))
        self._deliver(self.room, payload)
        self.stats.chat_messages += 1
        return protocol.chat_reply(text, id, stamp)

    async def user_list(self, request: Message) -> Message:
        room = request.get("room")
        if room is None:
            room = self.room
        elif not isinstance(room, str):
            raise ProtocolError(protocol.ROOM_INVALID)
        if self.cluster is not None:
            users = await self.cluster.users(room)
        else:
            users = utils.list_users(self.rooms, room)
        return protocol.user_list_reply(room, users)

    async def history_request(self, request: Message) -> Message:
        room, after, limit = protocol.validate_history(request, self.room)
        self.stats.history_requests += 1
        if self.cluster is not None:
            messages, complete = await self.cluster.read_history(room, after, limit)
        else:
            messages, complete = self.history.read(room, after, limit)
        return protocol.history_reply(room, messages, complete)

    # ------------------------------------------------------------------ helpers

    async def _broadcast(
        self, message: Message, room: str | None = None, *, required: bool = True
    ) -> None:
        """Tell the room, on every node. With `required`, nothing is delivered unless the
        other nodes could be told (raises `Unavailable`); otherwise they may miss it."""
        room = self.room if room is None else room
        payload = protocol.encode(message)
        if self.cluster is not None:
            try:
                await self.cluster.publish(room, payload)
            except protocol.Unavailable:
                if required:
                    raise
        self._deliver(room, payload)

    def _deliver(self, room: str, payload: bytes) -> None:
        """Tell this node's members of `room`, the sender excepted."""
        members = self.rooms.get(room)
        if members:
            self.stats.deliveries += utils.broadcast(members.values(), payload, exclude=self.socket)


_HANDLERS: dict[str, Callable[[ChatSession, Message], Awaitable[Message]]] = {
    protocol.SET_NICK: ChatSession.set_nick,
    protocol.JOIN_ROOM: ChatSession.join_room,
    protocol.CHAT_MESSAGE: ChatSession.chat_message,
    protocol.USER_LIST: ChatSession.user_list,
    protocol.HISTORY: ChatSession.history_request,
}


def encode_failure(action: object, text: str) -> bytes:
    """A failure naming the action as sent; `null` if that cannot be serialized (too deep)."""
    try:
        return protocol.encode(protocol.fail(action, text))
    except ValueError:
        return protocol.encode(protocol.fail(None, text))
