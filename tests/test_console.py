import io

import pytest

from aiohttp_chat.console import ChatView, Quit, Show, escape, parse_line, print_above_input


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
    assert not view.answered.is_set()
    assert view.show({"action": "set_nick", "success": True, "message": ""}) == (
        "*** You are now known as Alice"
    )
    assert view.show({"action": "joined", "room": "Lounge", "user": "x"}) == "*** x joined Lounge"
    assert view.show({"action": "join_room", "success": True, "message": ""}) == (
        "*** You are now in Lounge"
    )
    assert view.show({"action": "chat_message", "success": True, "message": "hi"}) is None
    failure = {"action": "set_nick", "success": False, "message": "Name already in use."}
    assert view.show(failure) == "!!! set_nick: Name already in use."
    assert (view.nick, view.room) == ("Alice", "Lounge")
    assert view.answered.is_set()


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


def test_print_above_input_keeps_the_input_line() -> None:
    stream = io.StringIO()
    print_above_input(">>>bob: hi", stream)
    # save cursor, new line, up, insert line, text, restore cursor, down
    assert stream.getvalue() == "\x1b7\n\x1b[A\x1b[L>>>bob: hi\n\x1b8\x1b[B"
