"""The client's view: which text each server message becomes, and the history it asks for."""

import pytest

from aiohttp_chat.client_console import local_time
from aiohttp_chat.client_view import ChatView, Purpose


def test_view_words_replies_by_their_requests() -> None:
    view = ChatView()
    assert view.answered.is_set()
    greeting = view.received({"action": "connecting", "room": "Default", "user": "User1"}).text
    assert greeting == "*** Connected to Default as User1. Type /help for commands."
    view.sent({"action": "set_nick", "nick": "Alice"})
    view.sent({"action": "join_room", "room": "Lounge"})
    view.sent({"action": "chat_message", "message": "hi"})
    view.sent({"action": "set_nick", "nick": "Bob"})
    view.sent({"action": "chat_message", "message": "x" * 30})
    view.sent({"action": "user_list", "room": "Kitchen"})
    assert not view.answered.is_set()
    assert view.received({"action": "set_nick", "success": True, "message": ""}).text == (
        "*** You are now known as Alice"
    )
    assert (
        view.received({"action": "joined", "room": "Lounge", "user": "x"}).text
        == "*** x joined Lounge"
    )
    assert view.received({"action": "join_room", "success": True, "message": ""}).text == (
        "*** You are now in Lounge"
    )
    ack = {"action": "chat_message", "success": True, "message": "hi"}
    assert view.received(ack).text == ">>>Alice: hi"  # your own message, as the others see it
    failure = {"action": "set_nick", "success": False, "message": "Name already in use."}
    assert view.received(failure).text == "!!! /nick Bob: Name already in use."
    too_long = {"action": "chat_message", "success": False, "message": "Too long."}
    assert view.received(too_long).text == f'!!! "{"x" * 20}…": Too long.'
    slow = {"action": "user_list", "success": False, "message": "Slow down."}
    assert view.received(slow).text == "!!! /users Kitchen: Slow down."
    assert (view.nick, view.room) == ("Alice", "Lounge")
    assert view.answered.is_set()


def test_greeting_names_where_the_startup_requests_ended() -> None:
    view = ChatView()
    view.sent({"action": "set_nick", "nick": "Alice"}, Purpose.STARTUP)
    view.sent({"action": "join_room", "room": "Lounge"}, Purpose.STARTUP)
    assert view.received({"action": "connecting", "room": "Default", "user": "User7"}).text is None
    assert view.received({"action": "set_nick", "success": True, "message": ""}).text is None
    assert view.received({"action": "join_room", "success": True, "message": ""}).text == (
        "*** Connected to Lounge as Alice. Type /help for commands."
    )


def test_greeting_after_a_refused_startup_nick_names_the_default_nick() -> None:
    view = ChatView()
    view.sent({"action": "set_nick", "nick": "Alice"}, Purpose.STARTUP)
    assert view.received({"action": "connecting", "room": "Default", "user": "User7"}).text is None
    refused = {"action": "set_nick", "success": False, "message": "Name already in use."}
    assert view.received(refused).text == (
        "!!! /nick Alice: Name already in use.\n"
        "*** Connected to Default as User7. Type /help for commands.\n"
        "*** Type another nick, or an empty line to stay User7:"
    )
    assert view.ask_nick and view.entered.is_set()


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
    assert ChatView().received(message).text == line


def test_view_user_lists() -> None:
    view = ChatView()
    view.sent({"action": "user_list"})
    reply = {"action": "user_list", "success": True, "room": "R", "users": ["a", "b\x1b"]}
    assert view.received(reply).text == "*** In R: a, b\\x1b"
    view.sent({"action": "user_list", "room": "Empty"})
    empty = {"action": "user_list", "success": True, "room": "Empty", "users": []}
    assert view.received(empty).text == "*** Nobody is in Empty"


def _entry(id: str, user: str, message: str) -> dict[str, str]:
    return {"id": id, "time": "2020-01-02T03:04:05.678Z", "user": user, "message": message}


def test_recent_history_on_entering_then_live_messages_once() -> None:
    view = ChatView()
    greeting, requests = view.received({"action": "connecting", "room": "Default", "user": "User1"})
    assert greeting is not None and greeting.startswith("*** Connected to Default")
    assert requests == [
        ({"action": "history", "room": "Default", "limit": 20}, Purpose.RECENT_ON_ENTRY)
    ]
    for request, purpose in requests:
        view.sent(request, purpose)
    live = {"action": "chat_message", "message": "b", "user": "bob", "id": "e-2", "time": ""}
    assert view.received(live).text == ">>>bob: b"  # came before the history reply
    reply = {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [_entry("e-1", "ann", "a"), _entry("e-2", "bob", "b")],
        "complete": True,
    }
    shown = view.received(reply).text
    assert shown is not None
    header, *lines = shown.split("\n")
    assert header == "*** Recent messages in Default:"
    assert len(lines) == 1 and lines[0].startswith("  [") and lines[0].endswith("] ann: a")
    assert view.received(live).text is None  # shown already
    assert view.seen.last["Default"] == "e-2"


def test_catch_up_after_a_reconnect_warns_when_incomplete() -> None:
    view = ChatView()
    view.received({"action": "connecting", "room": "Default", "user": "User1"})
    view.received({"action": "chat_message", "message": "a", "user": "bob", "id": "e-1"})
    view.connected(resumed=True)
    view.sent({"action": "set_nick", "nick": "User1"}, Purpose.STARTUP)
    assert view.received({"action": "connecting", "room": "Default", "user": "User9"}).text is None
    ok = {"action": "set_nick", "success": True, "message": ""}
    text, requests = view.received(ok)
    assert text == "*** Reconnected: in Default as User1."
    ((request, purpose),) = requests
    assert (request, purpose) == (
        {"action": "history", "room": "Default", "after": "e-1"},
        Purpose.CATCH_UP,
    )
    view.sent(request, purpose)
    reply = {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [_entry("e-5", "bob", "one\nmore")],
        "complete": False,
    }
    assert view.received(reply).text == (
        "*** Missed in Default while away:\n"
        "  [Jan 02 03:04] bob: one\n"
        "                      more\n"
        "*** Earlier messages may be missing."
    ).replace("Jan 02 03:04", local_time(reply["messages"][0]))


def test_a_refused_automatic_history_is_quiet_and_a_typed_one_is_not() -> None:
    view = ChatView()
    view.sent({"action": "history", "limit": 20}, Purpose.RECENT_ON_ENTRY)
    refused = {"action": "history", "success": False, "message": "Not allowed."}
    assert view.received(refused).text is None
    view.sent({"action": "history", "limit": 5})
    assert view.received(refused).text == "!!! /history 5: Not allowed."


def test_back_in_a_room_its_recent_messages_show_again_with_a_mark_before_the_new() -> None:
    view = ChatView()
    view.received({"action": "connecting", "room": "Lounge", "user": "Ann"})  # (not asked)
    for id, text in (("e-1", "first"), ("e-2", "second")):  # seen live in Lounge
        view.received({"action": "chat_message", "message": text, "user": "bob", "id": id})
    view.sent({"action": "join_room", "room": "Other"})
    view.received({"action": "join_room", "success": True, "message": ""})
    view.sent({"action": "join_room", "room": "Lounge"})  # and back
    _, requests = view.received({"action": "join_room", "success": True, "message": ""})
    for request, purpose in requests:
        view.sent(request, purpose)
    shown = view.received(
        {
            "action": "history",
            "success": True,
            "room": "Lounge",
            "messages": [_entry(f"e-{n}", "bob", f"m{n}") for n in (1, 2, 3)],
            "complete": True,
        }
    ).text
    assert shown is not None
    lines = shown.split("\n")
    assert lines[0] == "*** Recent messages in Lounge:"
    assert [line.rsplit("] ", 1)[-1] for line in lines[1:]] == [
        "bob: m1",
        "bob: m2",
        "*** New since you were last here:",
        "bob: m3",
    ]


def test_live_lines_show_their_time_unless_turned_off_and_wrap_under_the_text() -> None:
    message = {"action": "chat_message", "message": "one two three four five six seven",
               "user": "bob", "id": "e-1", "time": "2020-01-02T03:04:05.678Z"}  # fmt: skip
    assert ChatView().received(message).text == ">>>bob: one two three four five six seven"
    timed = ChatView(times=True).received(message).text
    assert timed is not None and timed.endswith("] >>>bob: one two three four five six seven")
    assert timed.startswith("[")
    narrow = ChatView(width=lambda: 28).received(message).text
    assert narrow == (
        ">>>bob: one two three four\n        five six seven"
    )  # at spaces, each piece indented under the text


def test_a_room_alike_to_an_existing_one_is_offered() -> None:
    offered: list[str] = []
    view = ChatView(offer=offered.append)
    view.sent({"action": "join_room", "room": "the lounge"})
    refusal = {
        "action": "join_room",
        "success": False,
        "message": "Room name looks like an existing room: The Lounge.",
    }
    assert view.received(refusal).text == (
        "!!! /join the lounge: Room name looks like an existing room: The Lounge.\n"
        "*** The Lounge exists: /join The Lounge to enter it."
    )
    assert offered == ["/join The Lounge"]
    other = {
        "action": "join_room",
        "success": False,
        "message": "Too many room changes, slow down.",
    }
    view.sent({"action": "join_room", "room": "Kitchen"})
    assert view.received(other).text == "!!! /join Kitchen: Too many room changes, slow down."
    assert offered == ["/join The Lounge"]


def test_a_server_before_1_2_is_asked_for_the_wish_and_typing_waits_until_that_went_out() -> None:
    view = ChatView()
    view.connected(resumed=False, nick="Alice", room="Lounge", in_handshake=True)
    text, requests = view.received({"action": "connecting", "room": "Default", "user": "User7"})
    assert text is None
    assert requests == [
        ({"action": "join_room", "room": "Lounge"}, Purpose.STARTUP),
        ({"action": "set_nick", "nick": "Alice"}, Purpose.STARTUP),
    ]
    view.sent(*requests[0])
    assert not view.entered.is_set()
    view.sent(*requests[1])
    assert view.entered.is_set()  # (the original never answers a successful join_room)
