import socket

import pytest
from aiohttp import ClientConnectorError, ServerDisconnectedError, WSServerHandshakeError
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aiohttp_chat.client_console import (
    MENTION_STYLES,
    STYLE_END,
    More,
    Quit,
    Show,
    cell_width,
    chat_line,
    closed,
    escape,
    highlighted,
    parse_line,
    rooms_lines,
    typed,
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
        (
            ServerDisconnectedError(),
            "the server closed the connection (if it serves TLS, the URL starts with wss://)",
        ),
    ],
)
def test_unreachable_in_plain_words(error: BaseException, said: str) -> None:
    assert unreachable("ws://h:1/chat", error) == f"cannot reach ws://h:1/chat: {said}"


def test_a_wss_url_closed_on_gets_no_tls_hint() -> None:
    assert unreachable("wss://h:1/chat", ServerDisconnectedError()) == (
        "cannot reach wss://h:1/chat: the server closed the connection"
    )


def test_a_refused_handshake_names_the_status() -> None:
    assert unreachable("ws://h:1/x", _handshake_error(404)) == (
        "cannot connect to ws://h:1/x: the server answered HTTP 404 Not Found"
    )


def test_parse_history_command() -> None:
    assert parse_line("/history") == {"action": "history", "limit": 20}
    assert parse_line("/history 5") == {"action": "history", "limit": 5}
    for bad in ("/history 0", "/history 101", "/history x"):
        assert parse_line(bad) == Show("Usage: /history [N], N from 1 to 100")


def test_parse_more_and_rooms_commands() -> None:
    assert parse_line("/more") == More(20)  # the view knows the message to go back from
    assert parse_line("/more 50") == More(50)
    for bad in ("/more 0", "/more 101", "/more x"):
        assert parse_line(bad) == Show("Usage: /more [N], N from 1 to 100")
    assert parse_line("/rooms") == {"action": "room_list"}
    help_text = parse_line("/help")
    assert isinstance(help_text, Show)
    assert "  /more [N]" in help_text.text and "  /rooms " in help_text.text


def test_a_refusal_names_the_command_typed() -> None:
    assert typed({"action": "history", "before": "e-1", "limit": 20}, "history") == "/more"
    assert typed({"action": "history", "before": "e-1", "limit": 5}, "history") == "/more 5"
    assert typed({"action": "history", "limit": 20}, "history") == "/history"
    assert typed({"action": "room_list"}, "room_list") == "/rooms"


def test_the_rooms_one_a_line_with_their_counts() -> None:
    assert rooms_lines([("Lounge", 3), ("Default", 1), ("漢字", 2)], "Default") == (
        "*** Rooms, most people first:\n"
        "  Lounge   3 people\n"
        "  Default  1 person (you are here)\n"
        "  漢字     2 people"  # aligned by the columns a name takes
    )
    assert rooms_lines([("Evil\x1b[2J", 1)], None) == (
        "*** Rooms, most people first:\n  Evil\\x1b[2J  1 person"
    )
    assert rooms_lines([], "Default") == "*** No room has anyone in it."
    largest = rooms_lines([(f"Room{n:03}", 1) for n in range(100)], None)
    assert largest.startswith("*** The 100 largest rooms:\n")


LINK = "https://example.com/a/very/long/path?query=1&other=%20two#fragment"


@pytest.mark.parametrize(
    "message",
    [
        LINK,
        f"see {LINK} now",
        f"see {LINK}",
        f"(link:{LINK}).",
        f"{'x' * 30}{LINK}",  # the URL starts after where the row ends: cut before it
        f"HTTP://EXAMPLE.COM/{'A' * 60}",
        f"http://example.com/{'a' * 60} and {LINK} too",
    ],
)
def test_a_url_is_never_cut_by_the_wrapping(message: str) -> None:
    line = chat_line("bob", message, width=40)
    rows = line.split("\n")
    for url in (word for word in message.split() if "://" in word):
        url = url[url.lower().index("http") :].rstrip(").")
        assert any(url in row for row in rows), rows  # whole, on one line, as sent
    assert all(len(row) <= 40 or "://" in row for row in rows), rows  # the rest wraps


def test_long_words_without_a_url_are_still_cut_and_urls_wrap_with_the_rest() -> None:
    assert chat_line("bob", "y" * 50, width=40).split("\n") == [
        ">>>bob: " + "y" * 32,
        " " * 8 + "y" * 18,
    ]
    assert chat_line("bob", f"a b {LINK} c", width=40).split("\n") == [
        ">>>bob: a b",
        f"        {LINK}",  # longer than the row: the terminal wraps it
        "        c",
    ]
    assert chat_line("bob", "ftp://example.com/" + "z" * 40, width=40).count("\n") == 1


@pytest.mark.parametrize("style", ["reverse", "bold"])
def test_a_mention_is_styled_line_by_line_after_escaping(style: str) -> None:
    sgr = MENTION_STYLES[style]
    line = chat_line("bob", "Alice: \x1b[0m\x1b[8mhidden\nsecond")
    assert highlighted(line, sgr) == (
        f"{sgr}>>>bob: Alice: \\x1b[0m\\x1b[8mhidden{STYLE_END}\n{sgr}        second{STYLE_END}"
    )  # the peer's escapes are text; each line ends plain, the input row stays unstyled
    assert highlighted(line, MENTION_STYLES["none"]) == line


LOST = "The server closed the connection ({})."


@pytest.mark.parametrize(
    ("code", "reason", "text", "final"),
    [
        (None, None, LOST.format("without a close frame"), False),
        (1006, "", LOST.format("without a close frame"), False),
        (1001, "Server shutdown", LOST.format("code 1001: Server shutdown"), False),
        (1008, "Flooding", LOST.format("code 1008: Flooding"), True),
        (1008, "", LOST.format("code 1008"), True),  # any policy close but one
        (1008, "Too slow", LOST.format("code 1008: Too slow"), False),
        (4001, "Resumed elsewhere", LOST.format("code 4001: Resumed elsewhere"), False),
        (1011, "{detail}\x1b[2J", LOST.format("code 1011: {detail}\\x1b[2J"), False),
    ],
)
def test_a_close_by_the_server_is_told_and_judged_by_one_table(
    code: int | None, reason: str | None, text: str, final: bool
) -> None:
    assert closed(code, reason) == (text, final)
