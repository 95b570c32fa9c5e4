"""What the terminal client shows and what its commands mean: pure functions, no I/O.

Every piece of text from peers is escaped (`escape`) so that nobody can drive your terminal
with escape sequences; `chat_line` and `history_line` lay messages out (never cutting a
URL), `highlighted` styles a mention (after escaping), `rooms_lines` lays out `/rooms`,
`typed` names the command behind a request. `parse_line` turns what the user typed into a
request, a local action or a chat message. (`client_view.ChatView` decides what to show,
with these.)
`unreachable` says in plain words why a connection could not be made, `bad_url` why a URL
cannot be one, `not_a_chat` that the server reached is not a chat, `closed` why the server
ended one (from `CLOSINGS`).
"""

from __future__ import annotations

import http
import re
import socket
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from aiohttp import (
    ClientConnectorCertificateError,
    ClientSSLError,
    ServerDisconnectedError,
    WSCloseCode,
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
  /more [N]      show the N messages before those shown (default: 20); again...
  /rooms         list the rooms with people in them, and how many
  /help          show this help
  /quit          leave (so do Ctrl-D, Ctrl-C and the original's `command close`)
Anything else is sent as a chat message; // sends one that starts with /."""

QUIT_WORDS: Final = frozenset({"/quit", "/exit", "command close"})
TAB_SIZE: Final = 4  # a tab in a peer's message, in spaces
QUOTED_CHARS: Final = 20  # of a refused chat message, shown to say which one it was
RECENT: Final = 20  # messages shown on entering a room, and by /history and /more
ASK_NICK: Final = "Nick (random if not provided): "
ASK_ROOM: Final = f"Room ({protocol.DEFAULT_ROOM} if not provided): "
NEW_SINCE: Final = "*** New since you were last here:"  # in a room's recent messages
ASK_NICK_AGAIN: Final = "*** Type another nick, or an empty line to stay {nick}:"


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


def chat_line(
    user: object, message: object, prefix: str = ">>>", *, width: int | None = None
) -> str:
    """`>>>user: message`; its line breaks (and tabs) kept, indented under the first line,
    and (with a `width`) long lines wrapped at spaces, indented the same; a URL is never cut
    (`_wrapped`)."""
    prefix = f"{prefix}{escape(user)}: "
    indent = " " * cell_width(prefix)
    text = str(message).replace("\r\n", "\n")
    lines = [escape(line.expandtabs(TAB_SIZE)) for line in text.split("\n")]
    if width is not None and width > len(indent) + 10:  # else wrapping would only hurt
        lines = [part for line in lines for part in _wrapped(line, width - len(indent))]
    return prefix + "".join(f"\n{indent}{line}" if n else line for n, line in enumerate(lines))


URL: Final = re.compile(r"https?://", re.IGNORECASE)  # where a URL starts, to keep it whole


def _wrapped(line: str, width: int) -> list[str]:
    """`line` in pieces at most `width` columns wide, cut at spaces where it can be.

    A word longer than the row is cut, unless a URL (`http://`, `https://`) starts in it
    before the cut: then the word stays whole on a piece of its own, longer than the row,
    for the terminal to wrap. Cut by a line break of ours, a URL is two lines that no
    terminal can take for one link; wrapped by the terminal, it is one line, which those
    that detect links open whole.
    """
    parts: list[str] = []
    while cell_width(line) > width:
        cut = width
        while cell_width(line[:cut]) > width:
            cut -= 1
        space = line.rfind(" ", 0, cut + 1)
        if space > 0:
            parts.append(line[:space])
            line = line[space + 1 :]
            continue
        end = line.find(" ")
        end = len(line) if end < 0 else end
        if (url := URL.search(line, 0, end)) is not None and url.start() < cut:
            if end == len(line):  # one word longer than the row, with a URL: kept whole
                break
            parts.append(line[:end])
            line = line[end + 1 :]
        else:  # one word longer than the row: cut it
            parts.append(line[:cut])
            line = line[cut:]
    return [*parts, line]


def live_line(entry: Message, *, times: bool = True, width: int | None = None) -> str:
    """A message as it arrives: `[07:33] >>>bob: hi` (without its time if not `times`)."""
    prefix = f"[{local_time(entry)}] >>>" if times and entry.get("time") else ">>>"
    return chat_line(entry.get("user"), entry.get("message"), prefix, width=width)


def history_line(entry: Message, *, width: int | None = None) -> str:
    """A message from the history: `  [07:33] bob: hi`, its time in local time."""
    prefix = f"  [{local_time(entry)}] "
    return chat_line(entry.get("user"), entry.get("message"), prefix, width=width)


def local_time(entry: Message) -> str:
    """When `entry` was sent, in local time: `07:33`, or `Nov 23 07:33` on another day."""
    try:
        sent = datetime.fromisoformat(str(entry.get("time"))).astimezone()
    except ValueError:
        return escape(entry.get("time"))
    if sent.date() == datetime.now().astimezone().date():
        return sent.strftime("%H:%M")
    return sent.strftime("%b %d %H:%M")


# ------------------------------------------------------------------------ mentions

# How a mention (`mentions.is_mention`) looks at a terminal: SGR sequences, by the name
# `--mention-style` takes. Piped, the client prints no escape sequence at all, and marks a
# mention with nothing either: its output is a transcript that scripts read line by line
# as `>>>user: text`, which a mark would change for some lines only (and a `*` would look
# like the `***` of the client's own notices); the nick is in the text for grep to find.
MENTION_STYLES: Final = {"reverse": "\x1b[7m", "bold": "\x1b[1m", "none": ""}
DEFAULT_MENTION_STYLE: Final = "reverse"  # a background of its own, as the page gives one
STYLE_END: Final = "\x1b[0m"
BELL: Final = "\a"  # rung (printed) with a mention that is new: live or missed while away


def highlighted(text: str, style: str) -> str:
    """`text`, lines already escaped (`chat_line`), in the SGR `style` ("" : as it is).

    Each line is styled on its own and ends plain, so that no style reaches the input row
    the terminal draws under it; the text is escaped before, so nothing in it can end or
    change the style."""
    if not style:
        return text
    return "\n".join(f"{style}{line}{STYLE_END}" for line in text.split("\n"))


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
class More:
    """`/more`: the `limit` messages before the oldest shown (the view knows which)."""

    limit: int = RECENT


@dataclass(frozen=True, slots=True)
class Show:
    """Text for the user only; nothing is sent."""

    text: str


Action = Message | Quit | More | Show | None


def parse_line(line: str) -> Action:
    """What a typed line means: a request to send, Quit, More (a request the view makes),
    Show (local text) or None (nothing)."""
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
    if command in ("/history", "/more"):
        if not argument:
            limit = RECENT
        elif argument.isdigit() and 1 <= int(argument) <= protocol.HISTORY_LIMIT_MAX:
            limit = int(argument)
        else:
            return Show(f"Usage: {command} [N], N from 1 to {protocol.HISTORY_LIMIT_MAX}")
        return More(limit) if command == "/more" else {"action": protocol.HISTORY, "limit": limit}
    if command == "/rooms":
        return {"action": protocol.ROOM_LIST}
    if command == "/users":
        return {"action": protocol.USER_LIST, **({"room": argument} if argument else {})}
    if command in ("/nick", "/join"):
        if not argument:
            return Show(f"Usage: {command} {'NAME' if command == '/nick' else 'ROOM'}")
        if command == "/nick":
            return {"action": protocol.SET_NICK, "nick": argument}
        return {"action": protocol.JOIN_ROOM, "room": argument}
    return Show(f"Unknown command {escape(command)}; /help lists the commands.")


def typed(request: Message, action: object) -> str:
    """What the user typed to make `request`, to name it in a refusal."""
    if action == protocol.SET_NICK:
        return f"/nick {escape(request.get('nick'))}"
    if action == protocol.JOIN_ROOM:
        return f"/join {escape(request.get('room'))}"
    if action == protocol.USER_LIST:
        return " ".join(["/users", *(escape(request[key]) for key in ("room",) if key in request)])
    if action == protocol.HISTORY:
        command = "/more" if "before" in request else "/history"
        limit = request.get("limit", RECENT)
        return command if limit == RECENT else f"{command} {escape(limit)}"
    if action == protocol.ROOM_LIST:
        return "/rooms"
    if action == protocol.CHAT_MESSAGE:
        text = escape(request.get("message", ""))
        return f'"{text[:QUOTED_CHARS]}…"' if len(text) > QUOTED_CHARS else f'"{text}"'
    return escape(action)


# ------------------------------------------------------------------------ history, rooms


MAYBE_MISSING: Final = "*** Earlier messages may be missing."  # after a catch-up cut short


def missed_header(room: object) -> str:
    """Before the messages that came in `room` while the connection was lost."""
    return f"*** Missed in {escape(room)} while away:"


def recent_header(room: object) -> str:
    """Before the recent messages shown on entering `room`."""
    return f"*** Recent messages in {escape(room)}:"


def none_kept(room: object) -> str:
    """`/history` in a room whose history the server keeps nothing of."""
    return f"*** No messages kept in {escape(room)}."


def history_header(room: object, *, earlier: bool) -> str:
    """Before the messages `/history` (or, `earlier`, `/more`) shows."""
    return f"*** {'Earlier' if earlier else 'Last'} messages in {escape(room)}:"


def beginning(room: object) -> str:
    """`/more` reached the oldest message the server keeps for `room`."""
    return f"*** Beginning of the history kept for {escape(room)}."


def nothing_earlier(room: object) -> str:
    """`/more` from a message the server no longer keeps: it has nothing older to show."""
    return f"*** Nothing earlier is kept in {escape(room)}."


def cannot_page(room: object) -> str:
    """`/more` to a server that cannot page back through a room's history."""
    return (
        f"*** This server cannot show what came before in {escape(room)}; "
        "/history N shows its last N messages."
    )


def more_members(room: object, shown: int, count: int) -> str:
    """After the names of a room too big for one answer (protocol 1.2's paged `user_list`):
    how many were not shown."""
    return f"*** ... and {count - shown:,} more: {count:,} people are in {escape(room)}."


def rooms_lines(rooms: list[tuple[str, int]], here: str | None) -> str:
    """`/rooms`: the rooms with their member counts, one a line, as the server ordered them
    (most people first); `here` is marked."""
    if not rooms:
        return "*** No room has anyone in it."
    header = "*** Rooms, most people first:"
    if len(rooms) >= protocol.ROOM_LIST_MAX:
        header = f"*** The {len(rooms)} largest rooms:"
    names = [escape(room) for room, _ in rooms]
    column = max(cell_width(name) for name in names) + 2
    lines = [
        f"  {name}{' ' * (column - cell_width(name))}{users} {'person' if users == 1 else 'people'}"
        + (" (you are here)" if room == here else "")
        for name, (room, users) in zip(names, rooms, strict=True)
    ]
    return "\n".join([header, *lines])


# ------------------------------------------------------------------------ connecting


REFUSED_STATUSES: Final = {  # what a refused handshake means, by status
    403: "the server refused this client",
    429: "the server takes no more connections from your address",
    503: "the server is full, try again later",
}
INSECURE_WARNING: Final = (
    "--insecure: the server's certificate is not checked; "
    "anyone on the way could read or change the chat."
)


URL_SCHEMES: Final = ("ws", "wss", "http", "https")


def bad_url(url: str) -> str | None:
    """Why `url` cannot name a chat server, or None."""
    scheme, found, rest = url.partition("://")
    if not found or scheme.lower() not in URL_SCHEMES or not rest.split("/", 1)[0]:
        return f"must start with ws:// or wss:// (wss for TLS), as in ws://{_bare(url)}/chat"
    return None


def _bare(url: str) -> str:
    host = url.partition("://")[2] if "://" in url else url
    return host.split("/", 1)[0] or "127.0.0.1:8080"


def join_command(room: str) -> str:
    return f"/join {room}"


def join_offer(room: str) -> str:
    """After a `join_room` refused for a name alike to an existing room's: go there?"""
    return f"*** {escape(room)} exists: {escape(join_command(room))} to enter it."


def wish_refused(option: str, name: object, why: object) -> str:
    """A nick or room asked for at start (`--nick`, `--room`) that is not allowed."""
    return f"{option} {escape(name)}: {escape(why)}"


def reconnecting_in(seconds: int) -> str:
    """The input row's prompt while reconnecting: the countdown to the next try."""
    return f"reconnecting in {seconds} s" if seconds else "reconnecting now"


def pending(line: str) -> str:
    """A line typed while disconnected: kept, and sent once the client is back."""
    return f"*** Not connected: sent once reconnected: {escape(line)}"


def refused_lines(count: int) -> str:
    """Why a piped run fails although it reached its end."""
    return f"the server refused {count} line{'' if count == 1 else 's'} (shown above with !!!)"


@dataclass(frozen=True, slots=True)
class Closing:
    """How a close by the server is told ({detail}: `code 1001: Server shutdown`), and
    whether it is `final`: coming back would only be refused again."""

    text: str = "The server closed the connection ({detail})."
    final: bool = False


CLOSINGS: Final[dict[tuple[int, str | None], Closing]] = {  # by code and reason (None: any)
    (WSCloseCode.ABNORMAL_CLOSURE, None): Closing(
        "The server closed the connection (without a close frame)."
    ),
    # A policy close means "stop doing that" (Flooding): coming back would do it again.
    (WSCloseCode.POLICY_VIOLATION, None): Closing(final=True),
    # Too slow is the exception: the link was slow for a while, not the client at fault.
    (WSCloseCode.POLICY_VIOLATION, protocol.TOO_SLOW_REASON): Closing(),
}


def closed(code: int | None, reason: str | None) -> tuple[str, bool]:
    """Why the server closed the connection with `code` (None: it sent none) and `reason`,
    worded for the user, and whether that is final (`CLOSINGS`; any other close: retried,
    told by its code and reason)."""
    code = WSCloseCode.ABNORMAL_CLOSURE if code is None else code
    how = CLOSINGS.get((code, reason or None)) or CLOSINGS.get((code, None)) or Closing()
    detail = f"code {code}: {escape(reason)}" if reason else f"code {code}"
    return how.text.format(detail=detail), how.final


def connection_lost(error: BaseException) -> str:
    """A send or a ping that failed on a connection that was open."""
    return f"The connection was lost ({escape(error) or type(error).__name__})."


def not_a_chat(answer: str | None) -> str:
    """What the client says when the server it reached speaks something else than the chat
    (its `/echo` endpoint, say): its first message has no `action`, or it sent none."""
    said = "it sent no greeting" if answer is None else f"it answered {answer[:80]}"
    return f"this is not a chat endpoint: {said} (the chat is at /chat)"


def unreachable(url: str, error: BaseException) -> str:
    """Why connecting to `url` failed, in plain words, on one line."""
    if isinstance(error, WSServerHandshakeError):
        answer = f"HTTP {error.status}{_status_phrase(error.status)}"
        if error.status in REFUSED_STATUSES:
            return f"cannot connect to {url}: {REFUSED_STATUSES[error.status]} ({answer})"
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
        if url.lower().startswith("ws://"):  # what a TLS server does with a plain request
            reason += " (if it serves TLS, the URL starts with wss://)"
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
