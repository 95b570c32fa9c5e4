"""The chat protocol: every message body, every user-visible text and the validation rules.

Pure functions on plain data (no I/O), so the rules can be tested without a socket.
The views only call these; they never spell out a dict literal or an error string.
"""

from __future__ import annotations

import enum
import functools
import heapq
import json
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

import orjson

from . import confusables

Message = dict[str, Any]

DEFAULT_ROOM: Final = "Default"
NAME_MIN: Final = 3
NAME_MAX: Final = 20
DEFAULT_MAX_MESSAGE_CHARS: Final = 4096
PROTOCOL: Final = "1.2"  # told in `connecting`: the additions of 1.1 and 1.2 are understood

# Actions a client may request on /chat.
SET_NICK: Final = "set_nick"
JOIN_ROOM: Final = "join_room"
CHAT_MESSAGE: Final = "chat_message"
USER_LIST: Final = "user_list"
HISTORY: Final = "history"
ROOM_LIST: Final = "room_list"
ACTIONS: Final = (SET_NICK, JOIN_ROOM, CHAT_MESSAGE, USER_LIST, HISTORY, ROOM_LIST)  # requests

HISTORY_LIMIT_MAX: Final = 100
HISTORY_LIMIT_DEFAULT: Final = 50
ROOM_LIST_MAX: Final = 100  # rooms in a `room_list` reply: the largest

# User-visible texts (part of the API: clients match on them).
NICK_INVALID: Final = "Name must be a string and between 3-20 chars."
NICK_FORBIDDEN_CHARS: Final = "Name contains characters that are not allowed."
NICK_TAKEN: Final = "Name already in use."
ROOM_INVALID: Final = "Room name must be a string and between 3-20 chars."
ROOM_FORBIDDEN_CHARS: Final = "Room name contains characters that are not allowed."
NICK_TAKEN_IN_ROOM: Final = "Name already in use in this room."
NICK_ALIKE: Final = "Name looks like one already in use."
NICK_ALIKE_IN_ROOM: Final = "Name looks like one already in use in this room."
NOT_ALLOWED: Final = "Not allowed."
NOT_A_JSON_OBJECT: Final = "Message must be a JSON object."
NOT_JSON: Final = "Message must be valid JSON."
BINARY_NOT_SUPPORTED: Final = "Binary frames are not supported."
NICK_UNAVAILABLE_REASON: Final = "Username already in use"
UNAVAILABLE: Final = "Service temporarily unavailable, try again."  # shared state unreachable
RATE_LIMITED: Final = "Too many requests, slow down."
FLOODING_REASON: Final = "Flooding"  # the close reason, with 1008
TOO_SLOW_REASON: Final = "Too slow"  # the same, for a peer that does not read what it is sent
SERVER_FULL: Final = "Server full, try again later."
RETRY_AFTER: Final = 5  # seconds, with SERVER_FULL
TOO_MANY_CONNECTIONS: Final = "Too many connections from your address."
ORIGIN_NOT_ALLOWED: Final = "Origin not allowed."
LIMIT_INVALID: Final = f"Limit must be an integer between 1 and {HISTORY_LIMIT_MAX}."
AFTER_INVALID: Final = "After must be a message id."
BEFORE_INVALID: Final = "Before must be a message id."
USERS_AFTER_INVALID: Final = "After must be a name from a user_list answer."
ROOM_CHANGES_LIMITED: Final = "Too many room changes, slow down."
RESUMED_REASON: Final = "Resumed elsewhere"  # the close reason, with 4001
RESUMED_CODE: Final = 4001


def room_alike_text(existing: str) -> str:
    return f"Room name looks like an existing room: {existing}."


def alike_room_of(text: str) -> str | None:
    """The existing room a `room_alike_text` refusal names; None for any other text."""
    head, tail = room_alike_text("\0").split("\0")
    if text.startswith(head) and text.endswith(tail) and len(text) > len(head) + len(tail):
        return text[len(head) : -len(tail)]
    return None


def message_invalid_text(limit: int) -> str:
    return f"Message must be a non-empty string of at most {limit} characters."


class ProtocolError(ValueError):
    """A request that breaks a rule; its text is what the client is told. `outcome` is
    how /metrics counts the refusal."""

    def __init__(self, text: str, outcome: str = "refused") -> None:
        super().__init__(text)
        self.text = text
        self.outcome = outcome


class Clash(enum.Enum):
    """What keeps a nick from a room: a member has that very nick, or one alike to it."""

    SAME = (NICK_TAKEN, NICK_TAKEN_IN_ROOM)
    ALIKE = (NICK_ALIKE, NICK_ALIKE_IN_ROOM)

    def text(self, action: str) -> str:
        """The refusal's text: for `set_nick`, or for `join_room` (in this room)."""
        return self.value[action == JOIN_ROOM]

    def refusal(self, action: str) -> ProtocolError:
        return ProtocolError(self.text(action))


class Unavailable(ProtocolError):
    """What the request needs (the servers' shared state, Redis) cannot be reached now."""

    def __init__(self) -> None:
        super().__init__(UNAVAILABLE)


# ---------------------------------------------------------------------------- validation

# What a name may hold (protocol 1.2): no whitespace of any kind (a room allows single spaces
# between words); none of Cc (controls), Cf (invisible formatting: bidi overrides, zero-width
# joiners, tags), Co (private use), Cn (unassigned), Cs (lone surrogates), Zl, Zp; none of the
# invisible fillers that are letters or symbols; at least one letter or digit; and it may not
# start with a combining mark, which would fuse with whatever is shown before it.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
_FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _allowed(name: str, *, spaces: bool) -> bool:
    """Whether `name` (NFC) holds only what a name may (see above)."""
    if spaces and (name.startswith(" ") or name.endswith(" ") or "  " in name):
        return False
    return (
        unicodedata.category(name[0])[0] != "M"
        and any(char.isalnum() for char in name)
        and not any(
            (char.isspace() and not (spaces and char == " "))
            or char in _FILLERS
            or unicodedata.category(char) in _FORBIDDEN_CATEGORIES
            for char in name
        )
    )


def _validate_name(value: object, invalid: str, forbidden: str, *, spaces: bool) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError(invalid)
    name = unicodedata.normalize("NFC", value)  # lengths count the composed form
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise ProtocolError(invalid)
    if not _allowed(name, spaces=spaces):
        raise ProtocolError(forbidden)
    return name


def validate_nick(value: object) -> str:
    """`value` as a nick, in NFC, or raise `ProtocolError` with the text to answer."""
    return _validate_name(value, NICK_INVALID, NICK_FORBIDDEN_CHARS, spaces=False)


def validate_room(value: object) -> str:
    """`value` as a room name, in NFC, or raise `ProtocolError` with the text to answer."""
    return _validate_name(value, ROOM_INVALID, ROOM_FORBIDDEN_CHARS, spaces=True)


# Default-ignorable code points (Unicode's Default_Ignorable_Code_Point), which NFKC_Casefold
# removes and a name may still hold: the characters of Cf and Cn among them are refused
# above, the variation selectors, the combining grapheme joiner and the Khmer inherent vowels
# (all combining marks) are not, and the fillers go too, whatever a caller passes.
_IGNORABLE_RANGES: Final = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
_DROP_IGNORABLE: Final[dict[int, None]] = {
    point: None for first, last in _IGNORABLE_RANGES for point in range(first, last + 1)
}
_PROTOTYPES: Final = confusables.PROTOTYPES


@functools.lru_cache(maxsize=8192)  # a nick's is needed at each step of its entry and exit
def skeleton(name: str) -> str:
    """The confusable skeleton of `name` (Unicode Technical Standard #39) after NFKC case
    folding: two names with the same skeleton are *alike*, and may be taken for each other
    (`Alice`, `alice`, `A1ice`, and `Alice` with a Cyrillic or a fullwidth `A`).

    Two steps go beyond the standard's, each making more names alike, never fewer. The
    prototypes are folded and mapped again, so that one mapped to a capital meets its
    folded twin (Cherokee GO, U+13AA, maps to `A`; Cherokee MI to `M`, which folds to `m`,
    whose prototype is `rn`); one more pass changes no name. And `i` is taken for `l`: the
    folding makes the capital `I` an `i` before its prototype (`l`) is looked up, so that
    `AIice` would otherwise pass for a different person from `Alice`."""
    mapped = name
    for _ in range(_PASSES):
        folded = unicodedata.normalize("NFKC", mapped.translate(_DROP_IGNORABLE)).casefold()
        folded = unicodedata.normalize("NFKC", folded).translate(_DROP_IGNORABLE)
        mapped = unicodedata.normalize("NFD", folded).translate(_PROTOTYPES)
    return unicodedata.normalize("NFD", mapped.casefold()).replace("i", "l")


_PASSES: Final = 2  # enough for every code point: a third changes none (tested)


def skeleton_rules() -> dict[str, Any]:
    """What `skeleton` uses, as JSON-ready data, so that the page's own port of it
    (static/mentions.js) compares names as this one does: the passes, the default-ignorable
    ranges, the prototypes, and the case foldings that differ from lowering a single
    code point (`ß` to `ss`, a final sigma to a sigma, a small Cherokee letter to its capital),
    which is all that JavaScript's `toLowerCase` lacks of `casefold`; keys are code points
    in decimal."""
    chars = (chr(point) for point in range(0x110000) if not 0xD800 <= point < 0xE000)
    return {
        "confusables": confusables.VERSION,
        "unicode": unicodedata.unidata_version,
        "passes": _PASSES,
        "ignorable": [list(pair) for pair in _IGNORABLE_RANGES],
        "folds": {str(ord(c)): c.casefold() for c in chars if c.casefold() != c.lower()},
        "prototypes": {str(point): text for point, text in _PROTOTYPES.items()},
    }


def validate_chat_message(value: object, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ProtocolError(message_invalid_text(limit))
    return value


class Page(NamedTuple):
    """What a `history` request asks for: a room, at most `limit` of its newest messages
    after the message `after` names and before the one `before` names (None: no bound)."""

    room: str
    after: str | None
    before: str | None
    limit: int


def validate_history(request: Message, current_room: str) -> Page:
    """What a `history` request asks for, or `ProtocolError` with the text to answer."""
    room = request.get("room")
    room = current_room if room is None else validate_room(room)
    limit = request.get("limit", HISTORY_LIMIT_DEFAULT)
    if type(limit) is not int or not 1 <= limit <= HISTORY_LIMIT_MAX:  # bool is no limit
        raise ProtocolError(LIMIT_INVALID)
    return Page(
        room,
        _message_id(request, "after", AFTER_INVALID),
        _message_id(request, "before", BEFORE_INVALID),
        limit,
    )


def validate_user_list(request: Message, current_room: str) -> tuple[str, str | None]:
    """The room a `user_list` request asks about and the name its page starts after (None:
    the first page), or `ProtocolError` with the text to answer."""
    room = request.get("room")
    room = current_room if room is None else validate_room(room)
    return room, _message_id(request, "after", USERS_AFTER_INVALID)


def _message_id(request: Message, field: str, invalid: str) -> str | None:
    value = request.get(field)
    if value is not None and (not isinstance(value, str) or not value):
        raise ProtocolError(invalid)
    return value


class Wish:
    """What a client asked for in its handshake URL's query (protocol 1.2): a nick, a room,
    a token to resume a lost connection with. Unchecked: `None` for what it left out."""

    __slots__ = ("nick", "resume", "room")

    def __init__(
        self, nick: str | None = None, room: str | None = None, resume: str | None = None
    ) -> None:
        self.nick, self.room, self.resume = nick, room, resume or None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Wish:
        return cls(query.get("nick"), query.get("room"), query.get("resume"))


# ---------------------------------------------------------------------------- time

_last_second: int = -1
_last_second_stamp: str = ""
_last_milli: int = -1
_last_stamp: str = ""


def format_time(seconds: float) -> str:
    """`seconds` since the epoch in UTC with milliseconds: `2026-11-24T07:33:40.992Z`."""
    global _last_second, _last_second_stamp, _last_milli, _last_stamp
    milli = int(seconds * 1000)
    if milli == _last_milli:  # under load, many messages share a millisecond
        return _last_stamp
    whole = milli // 1000
    if whole != _last_second:  # one strftime per second, not per message
        _last_second = whole
        _last_second_stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    _last_milli = milli
    _last_stamp = f"{_last_second_stamp}.{milli % 1000:03d}Z"
    return _last_stamp


# ---------------------------------------------------------------------------- encoding


# orjson is 20x faster than the standard library at encoding our messages and 6x at
# decoding them (measured on chat messages); the standard library takes over for the few
# values orjson refuses: lone surrogates (which it then escapes) and integers over 64 bits.
# Since orjson 3.11 the latter no longer fail but come back as floats, inexact. That changes
# nothing for /chat, whose requests hold no such numbers (a huge `limit` is refused either
# way), but /echo must answer the very value sent: `decode_exact` reads any text with 19
# digits in a row (every integer out of orjson's range has as many) with the standard
# library. The scan costs more than orjson's parse, so /chat does without it.
# orjson's output is an oversized buffer shrunk in place; kept as is, those buffers
# fragment the heap between long-lived connection objects (+4.3 KiB of RSS per idle
# connection, measured), so it is copied at once into an exactly sized object.


def encode(message: object) -> bytes:
    """One message as compact UTF-8 JSON. Raises `ValueError` if it cannot be (too deep)."""
    try:
        return bytes(memoryview(orjson.dumps(message)))  # see above: a copy, on purpose
    except TypeError:
        try:
            return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


_LONG_NUMBER: Final = re.compile(r"[0-9]{19}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a double")
    return value


def decode(text: str | bytes) -> Any:
    """Parse one JSON text, strictly (no NaN, no Infinity); `ValueError` for anything else."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # maybe a lone surrogate, or nesting orjson finds too deep: ask the stdlib
    return _decode_slowly(text)


def decode_exact(text: str) -> Any:
    """As `decode`, with integers beyond 64 bits kept exact."""
    if _LONG_NUMBER.search(text) is None:
        return decode(text)
    return _decode_slowly(text)


def _decode_slowly(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def action_of(text: str | bytes) -> object:
    """The action a frame names, for a refusal that must say which; None if it names none."""
    try:
        request = decode(text)
    except ValueError:
        return None
    return request.get("action") if isinstance(request, dict) else None


def parse_request(text: str) -> Message:
    """Parse a /chat text frame into a request object, or raise `ProtocolError`."""
    try:
        request = decode(text)
    except ValueError:
        raise ProtocolError(NOT_A_JSON_OBJECT) from None
    if not isinstance(request, dict):
        raise ProtocolError(NOT_A_JSON_OBJECT)
    return request


# ---------------------------------------------------------------------------- replies


def ok(action: str, message: str = "") -> Message:
    return {"action": action, "success": True, "message": message}


def moved(action: str, resume: str) -> Message:
    """The success reply to `set_nick` or `join_room`, with the token for the new place."""
    return {"action": action, "success": True, "message": "", "resume": resume}


def fail(action: object, text: str) -> Message:
    return {"action": action, "success": False, "message": text}


def chat_reply(message: str, id: str, time: str) -> Message:
    return {"action": CHAT_MESSAGE, "success": True, "message": message, "id": id, "time": time}


def history_entry(id: str, time: str, user: str, message: str) -> Message:
    return {"id": id, "time": time, "user": user, "message": message}


def history_reply(room: str, messages: list[Message], complete: bool) -> Message:
    return {
        "action": HISTORY,
        "success": True,
        "room": room,
        "messages": messages,
        "complete": complete,
    }


def user_list_reply(
    room: str, users: list[str], count: int | None = None, next: str | None = None
) -> Message:
    """The names in `room`; a page of them (protocol 1.2, `presence.py`) says how many there
    are in all (`count`) and, unless it is the last, the name to ask for the next after."""
    reply: Message = {"action": USER_LIST, "success": True, "room": room, "users": users}
    if count is not None:
        reply["count"] = count
        if next is not None:
            reply["next"] = next
    return reply


def room_list_reply(rooms: list[tuple[str, int]]) -> Message:
    """`rooms` as (name, member count) pairs, in the order given."""
    return {
        "action": ROOM_LIST,
        "success": True,
        "rooms": [{"room": room, "users": users} for room, users in rooms],
    }


def largest_rooms(counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The rooms a `room_list` reply names: those with members, most members first, then by
    name, at most `ROOM_LIST_MAX`."""
    return heapq.nsmallest(ROOM_LIST_MAX, ((r, n) for r, n in counts if n > 0), key=_by_size)


def _by_size(count: tuple[str, int]) -> tuple[int, str]:
    return -count[1], count[0]


def echo_reply(value: object) -> Message:
    return {"echo": value}


def echo_error(text: str) -> Message:
    return {"success": False, "message": text}


# ---------------------------------------------------------------------------- broadcasts


def limits(rate: float, burst: int, max_message_chars: int) -> Message:
    """The connection's limits as `connecting` announces them (rate 0: no rate limit)."""
    return {
        "rate": int(rate) if rate == int(rate) else rate,
        "burst": burst if rate else 0,
        "max_message_chars": max_message_chars,
    }


def connecting(room: str, user: str, resume: str, limits: Message) -> Message:
    """The first frame: where the connection is, under which nick (the original's fields),
    and, since protocol 1.2, the token to resume it with and its limits."""
    return {
        "action": "connecting",
        "room": room,
        "user": user,
        "protocol": PROTOCOL,
        "resume": resume,
        "limits": limits,
    }


def joined(room: str, user: str) -> Message:
    return {"action": "joined", "room": room, "user": user}


def left(room: str, user: str, *, shame: bool) -> Message:
    return {"action": "left", "room": room, "user": user, "shame": shame}


def nick_changed(room: str, from_user: str, to_user: str) -> Message:
    return {"action": "nick_changed", "room": room, "from_user": from_user, "to_user": to_user}


def chat_broadcast(message: str, user: str, id: str, time: str) -> Message:
    return {"action": CHAT_MESSAGE, "message": message, "user": user, "id": id, "time": time}


def chat_broadcast_parts(message: str, user: str, time: str) -> tuple[bytes, bytes]:
    """The serialized broadcast around its id: `prefix + id + suffix` is
    `encode(chat_broadcast(message, user, id, time))`, for an id that Redis gives later."""
    body = encode({"action": CHAT_MESSAGE, "message": message, "user": user})
    return body[:-1] + b',"id":"', b'","time":"' + time.encode() + b'"}'  # ids need no escape
