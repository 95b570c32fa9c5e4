import socket

import pytest
from aiohttp import ClientConnectorError, ServerDisconnectedError, WSServerHandshakeError
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aiohttp_chat.console import (
    CATCH_UP,
    RECENT_ON_ENTRY,
    STARTUP,
    ChatView,
    Quit,
    Show,
    cell_width,
    chat_line,
    escape,
    local_time,
    parse_line,
    unreachable,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("\x1b[2Jboom", "\\x1b[2Jboom"),
        ("nul\x00", "nul\\x00"),
        ("bell\x07del\x7f", "bell\\x07del\\x7f"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("line\nbreak\ttab", "line\\x0abreak\\x09tab"),
        ("csi\x9b", "csi\\x9b"),
        ("emoji 😀 and é", "emoji 😀 and é"),
        ("nbsp\u00a0ok", "nbsp\u00a0ok"),
        ("lone\ud800", "lone\\ud800"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


def test_escape_of_non_strings() -> None:
    assert escape(None) == "None"
    assert escape(42) == "42"


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("hello", {"action": "chat_message", "message": "hello"}),
        ("  spaced  ", {"action": "chat_message", "message": "  spaced  "}),
        ("//slash", {"action": "chat_message", "message": "/slash"}),
        ("/nick Alice", {"action": "set_nick", "nick": "Alice"}),
        ("/join Lounge", {"action": "join_room", "room": "Lounge"}),
        ("/users", {"action": "user_list"}),
        ("/users Lounge", {"action": "user_list", "room": "Lounge"}),
        ("/quit", Quit()),
        ("/exit", Quit()),
        ("command close", Quit()),
        ("", None),
        ("   ", None),
    ],
)
def test_parse_line(line: str, action: object) -> None:
    assert parse_line(line) == action


def test_parse_line_local_answers() -> None:
    help_text = parse_line("/help")
    assert isinstance(help_text, Show) and "/nick NAME" in help_text.text
    assert parse_line("/nick") == Show("Usage: /nick NAME")
    assert parse_line("/join  ") == Show("Usage: /join ROOM")
    unknown = parse_line("/frobnicate \x1b")
    assert isinstance(unknown, Show) and "Unknown command /frobnicate" in unknown.text


def test_view_words_replies_by_their_requests() -> None:
    view = ChatView()
    assert view.answered.is_set()
    greeting = view.show({"action": "connecting", "room": "Default", "user": "User1"})
    assert greeting == "*** Connected to Default as User1. Type /help for commands."
    view.sent({"action": "set_nick", "nick": "Alice"})
    view.sent({"action": "join_room", "room": "Lounge"})
    view.sent({"action": "chat_message", "message": "hi"})
    view.sent({"action": "set_nick", "nick": "Bob"})
    view.sent({"action": "chat_message", "message": "x" * 30})
    view.sent({"action": "user_list", "room": "Kitchen"})
    assert not view.answered.is_set()
    assert view.show({"action": "set_nick", "success": True, "message": ""}) == (
        "*** You are now known as Alice"
    )
    assert view.show({"action": "joined", "room": "Lounge", "user": "x"}) == "*** x joined Lounge"
    assert view.show({"action": "join_room", "success": True, "message": ""}) == (
        "*** You are now in Lounge"
    )
    ack = {"action": "chat_message", "success": True, "message": "hi"}
    assert view.show(ack) == ">>>Alice: hi"  # your own message, as the others see it
    failure = {"action": "set_nick", "success": False, "message": "Name already in use."}
    assert view.show(failure) == "!!! /nick Bob: Name already in use."
    too_long = {"action": "chat_message", "success": False, "message": "Too long."}
    assert view.show(too_long) == f'!!! "{"x" * 20}…": Too long.'
    slow = {"action": "user_list", "success": False, "message": "Slow down."}
    assert view.show(slow) == "!!! /users Kitchen: Slow down."
    assert (view.nick, view.room) == ("Alice", "Lounge")
    assert view.answered.is_set()


def test_greeting_names_where_the_startup_requests_ended() -> None:
    view = ChatView()
    view.sent({"action": "set_nick", "nick": "Alice"}, STARTUP)
    view.sent({"action": "join_room", "room": "Lounge"}, STARTUP)
    assert view.show({"action": "connecting", "room": "Default", "user": "User7"}) is None
    assert view.show({"action": "set_nick", "success": True, "message": ""}) is None
    assert view.show({"action": "join_room", "success": True, "message": ""}) == (
        "*** Connected to Lounge as Alice. Type /help for commands."
    )


def test_greeting_after_a_refused_startup_nick_names_the_default_nick() -> None:
    view = ChatView()
    view.sent({"action": "set_nick", "nick": "Alice"}, STARTUP)
    assert view.show({"action": "connecting", "room": "Default", "user": "User7"}) is None
    refused = {"action": "set_nick", "success": False, "message": "Name already in use."}
    assert view.show(refused) == (
        "!!! /nick Alice: Name already in use.\n"
        "*** Connected to Default as User7. Type /help for commands."
    )


def test_chat_lines_keep_line_breaks_under_the_sender() -> None:
    indent = " " * len(">>>bob: ")
    assert chat_line("bob", "one\ntwo\r\n\tthree\x1b[2J\rfour") == (
        f">>>bob: one\n{indent}two\n{indent}    three\\x1b[2J\\x0dfour"
    )
    assert chat_line("漢字", "a\nb") == ">>>漢字: a\n" + " " * 9 + "b"  # 2 columns each


@pytest.mark.parametrize(
    ("text", "width"), [("abc", 3), ("漢字", 4), ("e\u0301", 1), ("😀", 2), ("", 0)]
)
def test_cell_width(text: str, width: int) -> None:
    assert cell_width(text) == width


def _handshake_error(status: int) -> WSServerHandshakeError:
    url = URL("ws://127.0.0.1:1/chat")
    info = RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    return WSServerHandshakeError(info, (), status=status, message="Invalid response status")


def _connector_error(error: OSError) -> ClientConnectorError:
    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return ClientConnectorError(key, error)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            _connector_error(ConnectionRefusedError(111, "Connect call failed")),
            "connection refused",
        ),
        (_connector_error(socket.gaierror(-2, "Name or service not known")), "unknown host"),
        (_connector_error(TimeoutError()), "no answer (timed out)"),
        (_connector_error(OSError(113, "No route to host")), "no route to host"),
        (ServerDisconnectedError(), "the server closed the connection"),
    ],
)
def test_unreachable_in_plain_words(error: BaseException, said: str) -> None:
    assert unreachable("ws://h:1/chat", error) == f"cannot reach ws://h:1/chat: {said}"


def test_a_refused_handshake_names_the_status() -> None:
    assert unreachable("ws://h:1/x", _handshake_error(404)) == (
        "cannot connect to ws://h:1/x: the server answered HTTP 404 Not Found"
    )


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ({"action": "chat_message", "message": "hi", "user": "bob"}, ">>>bob: hi"),
        ({"action": "chat_message", "message": "\x1b[31m", "user": "b"}, ">>>b: \\x1b[31m"),
        ({"action": "left", "room": "R", "user": "bob", "shame": False}, "*** bob left R"),
        (
            {"action": "left", "room": "R", "user": "bob", "shame": True},
            "*** bob left R (connection lost)",
        ),
        (
            {"action": "nick_changed", "room": "R", "from_user": "a", "to_user": "b"},
            "*** a is now known as b",
        ),
        ({"action": "surprise"}, "??? {'action': 'surprise'}"),
        ([1, 2], "??? [1, 2]"),
    ],
)
def test_view_events(message: object, line: str) -> None:
    assert ChatView().show(message) == line


def test_view_user_lists() -> None:
    view = ChatView()
    view.sent({"action": "user_list"})
    reply = {"action": "user_list", "success": True, "room": "R", "users": ["a", "b\x1b"]}
    assert view.show(reply) == "*** In R: a, b\\x1b"
    view.sent({"action": "user_list", "room": "Empty"})
    empty = {"action": "user_list", "success": True, "room": "Empty", "users": []}
    assert view.show(empty) == "*** Nobody is in Empty"


def _entry(id: str, user: str, message: str) -> dict[str, str]:
    return {"id": id, "time": "2020-01-02T03:04:05.678Z", "user": user, "message": message}


def test_parse_history_command() -> None:
    assert parse_line("/history") == {"action": "history", "limit": 20}
    assert parse_line("/history 5") == {"action": "history", "limit": 5}
    for bad in ("/history 0", "/history 101", "/history x"):
        assert parse_line(bad) == Show("Usage: /history [N], N from 1 to 100")


def test_recent_history_on_entering_then_live_messages_once() -> None:
    view = ChatView()
    greeting = view.show({"action": "connecting", "room": "Default", "user": "User1"})
    assert greeting is not None and greeting.startswith("*** Connected to Default")
    assert view.to_send == [
        ({"action": "history", "room": "Default", "limit": 20}, RECENT_ON_ENTRY)
    ]
    for request, purpose in view.to_send:
        view.sent(request, purpose)
    live = {"action": "chat_message", "message": "b", "user": "bob", "id": "e-2", "time": ""}
    assert view.show(live) == ">>>bob: b"  # came before the history reply
    reply = {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [_entry("e-1", "ann", "a"), _entry("e-2", "bob", "b")],
        "complete": True,
    }
    shown = view.show(reply)
    assert shown is not None
    header, *lines = shown.split("\n")
    assert header == "*** Recent messages in Default:"
    assert len(lines) == 1 and lines[0].startswith("  [") and lines[0].endswith("] ann: a")
    assert view.show(live) is None  # shown already
    assert view.seen.last["Default"] == "e-2"


def test_catch_up_after_a_reconnect_warns_when_incomplete() -> None:
    view = ChatView()
    view.show({"action": "connecting", "room": "Default", "user": "User1"})
    view.to_send.clear()
    view.show({"action": "chat_message", "message": "a", "user": "bob", "id": "e-1"})
    view.connected(resumed=True)
    view.sent({"action": "set_nick", "nick": "User1"}, STARTUP)
    assert view.show({"action": "connecting", "room": "Default", "user": "User9"}) is None
    ok = {"action": "set_nick", "success": True, "message": ""}
    assert view.show(ok) == "*** Reconnected: in Default as User1."
    ((request, purpose),) = view.to_send
    assert (request, purpose) == (
        {"action": "history", "room": "Default", "after": "e-1"},
        CATCH_UP,
    )
    view.sent(request, purpose)
    reply = {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [_entry("e-5", "bob", "one\nmore")],
        "complete": False,
    }
    assert view.show(reply) == (
        "*** Missed in Default while away:\n"
        "  [Jan 02 03:04] bob: one\n"
        "                      more\n"
        "*** Earlier messages may be missing."
    ).replace("Jan 02 03:04", local_time(reply["messages"][0]))


def test_a_refused_automatic_history_is_quiet_and_a_typed_one_is_not() -> None:
    view = ChatView()
    view.sent({"action": "history", "limit": 20}, RECENT_ON_ENTRY)
    refused = {"action": "history", "success": False, "message": "Not allowed."}
    assert view.show(refused) is None
    view.sent({"action": "history", "limit": 5})
    assert view.show(refused) == "!!! /history 5: Not allowed."
