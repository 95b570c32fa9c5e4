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


def test_a_big_rooms_first_page_says_how_many_more() -> None:
    view = ChatView()
    _entered(view)
    page = {"action": "user_list", "success": True, "room": "Lounge", "users": ["Ann", "Bo"],
            "count": 10_000, "next": "Bo"}  # fmt: skip
    assert view.received(page).text is None  # asked on entering, for completion: quiet
    assert view.nicks() == ["Ann", "Bo"]  # completion: what it got
    view.sent({"action": "user_list"})
    assert view.received(page).text == (
        "*** In Lounge: Ann, Bo\n*** ... and 9,998 more: 10,000 people are in Lounge."
    )
    last = {**page, "users": ["Zed"], "count": 1}  # everyone shown: no more to say
    del last["next"]
    view.sent({"action": "user_list"})
    assert view.received(last).text == "*** In Lounge: Zed"


def _entry(id: str, user: str, message: str) -> dict[str, str]:
    return {"id": id, "time": "2020-01-02T03:04:05.678Z", "user": user, "message": message}


def test_recent_history_on_entering_then_live_messages_once() -> None:
    view = ChatView()
    greeting, requests = view.received({"action": "connecting", "room": "Default", "user": "User1"})
    assert greeting is not None and greeting.startswith("*** Connected to Default")
    assert requests == [  # who is there (for Tab), then what they said
        ({"action": "user_list", "room": "Default"}, Purpose.MEMBERS),
        ({"action": "history", "room": "Default", "limit": 20}, Purpose.RECENT_ON_ENTRY),
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
    members, (request, purpose) = requests
    assert members == ({"action": "user_list", "room": "Default"}, Purpose.MEMBERS)
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


REVERSE = "\x1b[7m"


def _entered(view: ChatView, room: str = "Lounge", nick: str = "Alice", **more: object) -> None:
    """`view` greeted in `room` as `nick` by a 1.2 server; its requests sent."""
    greeting = {"action": "connecting", "room": room, "user": nick, "protocol": "1.2", **more}
    for request, purpose in view.received(greeting).requests:
        view.sent(request, purpose)


def _history(room: str, messages: list[dict[str, str]], complete: bool) -> dict[str, object]:
    return {"action": "history", "success": True, "room": room, "messages": messages,
            "complete": complete}  # fmt: skip


def _said(user: str, message: str, id: str) -> dict[str, str]:
    return {"action": "chat_message", "message": message, "user": user, "id": id}


def test_a_live_mention_is_styled_and_rings_the_bell() -> None:
    view = ChatView(mention_style=REVERSE, bell=True)
    _entered(view)
    assert view.received(_said("Bob", "hi @alice!", "e-1")).text == (
        f"\a{REVERSE}>>>Bob: hi @alice!\x1b[0m"
    )
    assert view.received(_said("Bob", "hi all", "e-2")).text == ">>>Bob: hi all"
    assert view.received(_said("Bob", "malice", "e-3")).text == ">>>Bob: malice"
    view.sent({"action": "chat_message", "message": "Alice here"})
    own = {"action": "chat_message", "success": True, "message": "Alice here", "id": "e-4"}
    assert view.received(own).text == ">>>Alice: Alice here"  # never your own
    view.sent({"action": "set_nick", "nick": "Alicia"})
    view.received({"action": "set_nick", "success": True, "message": ""})
    assert view.received(_said("Bob", "Alice?", "e-5")).text == ">>>Bob: Alice?"  # not now
    assert view.received(_said("Bob", "ALICIA:", "e-6")).text == (
        f"\a{REVERSE}>>>Bob: ALICIA:\x1b[0m"
    )


def test_a_peer_cannot_style_or_ring_through_a_mention() -> None:
    view = ChatView(mention_style=REVERSE, bell=True)
    _entered(view)
    text = view.received(_said("Bob\x07", "Alice \x1b[0m\x07\x1b[31m", "e-1")).text
    assert text == f"\a{REVERSE}>>>Bob\\x07: Alice \\x1b[0m\\x07\\x1b[31m\x1b[0m"
    assert text.count("\x1b") == 2 and text.count("\a") == 1  # ours only


def test_mentions_without_a_style_or_a_bell_are_plain() -> None:
    view = ChatView()  # piped: plain text, as scripts read it
    _entered(view)
    assert view.received(_said("Bob", "Alice: hi", "e-1")).text == ">>>Bob: Alice: hi"
    view = ChatView(mention_style="", bell=True)  # --mention-style none
    _entered(view)
    assert view.received(_said("Bob", "Alice: hi", "e-1")).text == "\a>>>Bob: Alice: hi"


def test_mentions_in_the_history_are_styled_and_ring_only_when_missed() -> None:
    view = ChatView(mention_style=REVERSE, bell=True)
    _entered(view)
    recent = [_entry("e-1", "Bob", "Alice, hi"), _entry("e-2", "Bob", "bye")]
    text = view.received(_history("Lounge", recent, True)).text
    assert text is not None and "\a" not in text  # seen before, maybe: no bell
    _, mention, plain = text.split("\n")
    assert mention.startswith(f"{REVERSE}  [") and mention.endswith("] Bob: Alice, hi\x1b[0m")
    assert plain.endswith("] Bob: bye") and "\x1b" not in plain

    view.connected(resumed=True, nick="Alice", room="Lounge", in_handshake=True)
    _entered(view)
    missed = [_entry("e-3", "Bob", "@Alice?")]
    text = view.received({**_history("Lounge", missed, True), "messages": missed}).text
    assert text is not None and text.startswith("\a*** Missed in Lounge while away:")
    assert text.split("\n")[1].startswith(REVERSE)


def test_the_members_of_the_room_for_completion() -> None:
    view = ChatView()
    _entered(view)
    view.received({"action": "user_list", "success": True, "room": "Lounge",
                   "users": ["Alice", "Bob", "carol", "Dan"]})  # fmt: skip
    assert view.nicks() == ["Bob", "carol", "Dan"]  # not yourself; by name until they speak
    view.received(_history("Lounge", [_entry("e-1", "Dan", "x")], True))
    assert view.nicks() == ["Dan", "Bob", "carol"]
    view.received(_said("carol", "hello", "e-2"))
    assert view.nicks() == ["carol", "Dan", "Bob"]
    view.received({"action": "joined", "room": "Lounge", "user": "Eve"})
    view.received({"action": "left", "room": "Lounge", "user": "Bob", "shame": True})
    view.received({"action": "nick_changed", "room": "Lounge", "from_user": "Dan",
                   "to_user": "Daniel"})  # fmt: skip
    assert view.nicks() == ["carol", "Daniel", "Eve"]
    view.sent({"action": "user_list"})  # typed: shown, and the members refreshed
    text = view.received({"action": "user_list", "success": True, "room": "Lounge",
                          "users": ["Alice", "carol"]}).text  # fmt: skip
    assert text == "*** In Lounge: Alice, carol"
    assert view.nicks() == ["carol"]
    view.sent({"action": "user_list", "room": "Kitchen"})  # another room: not ours
    view.received({"action": "user_list", "success": True, "room": "Kitchen", "users": ["Z"]})
    assert view.nicks() == ["carol"]

    view.sent({"action": "join_room", "room": "Kitchen"})
    _, requests = view.received({"action": "join_room", "success": True, "message": ""})
    assert view.nicks() == []  # another room: its members are asked for, then its history
    assert [(r["action"], p) for r, p in requests] == [
        ("user_list", Purpose.MEMBERS),
        ("history", Purpose.RECENT_ON_ENTRY),
    ]
    for request, purpose in requests:
        view.sent(request, purpose)
    members = {"action": "user_list", "success": True, "room": "Kitchen", "users": ["Zed"]}
    assert view.received(members).text is None  # asked for completion only: quiet
    assert view.nicks() == ["Zed"]


def test_a_refused_members_request_is_quiet() -> None:
    view = ChatView()
    view.sent({"action": "user_list", "room": "Lounge"}, Purpose.MEMBERS)
    refused = {"action": "user_list", "success": False, "message": "Too many requests."}
    assert view.received(refused).text is None
    assert view.refused == 0


def test_more_goes_back_from_the_oldest_shown_until_the_beginning() -> None:
    view = ChatView()
    _entered(view)
    entry = [_entry(f"e-{n}", "Bob", f"m{n}") for n in (30, 31)]
    view.received(_history("Lounge", entry, False))
    request = view.more()
    assert request == {"action": "history", "room": "Lounge", "before": "e-30", "limit": 20}
    assert isinstance(request, dict)
    view.sent(request)
    earlier = [_entry(f"e-{n}", "Bob", f"m{n}") for n in (10, 11)]
    text = view.received(_history("Lounge", earlier, False)).text
    assert text is not None
    header, *lines = text.split("\n")
    assert header == "*** Earlier messages in Lounge:"
    assert [line.rsplit("] ", 1)[1] for line in lines] == ["Bob: m10", "Bob: m11"]
    assert view.seen.last["Lounge"] == "e-31"  # still the newest, for a catch-up
    request = view.more(5)
    assert request == {"action": "history", "room": "Lounge", "before": "e-10", "limit": 5}
    view.sent(request)
    text = view.received(_history("Lounge", [_entry("e-9", "Bob", "m9")], True)).text
    assert text is not None
    assert text.split("\n")[-1] == "*** Beginning of the history kept for Lounge."
    assert view.more() == "*** Beginning of the history kept for Lounge."  # no request


def test_history_starts_the_run_back_again_and_a_refused_more_says_so() -> None:
    view = ChatView()
    _entered(view)
    assert view.more() == {"action": "history", "room": "Lounge", "limit": 20}  # none shown
    view.received(_said("Bob", "live", "e-7"))  # the oldest shown so far
    assert view.more() == {"action": "history", "room": "Lounge", "before": "e-7", "limit": 20}
    view.received(_history("Lounge", [_entry(f"e-{n}", "Bob", "x") for n in (6, 7)], False))
    assert view.more() == {"action": "history", "room": "Lounge", "before": "e-6", "limit": 20}
    view.sent({"action": "history", "limit": 3})  # /history 3
    view.received(_history("Lounge", [_entry(f"e-{n}", "Bob", "x") for n in (5, 6, 7)], False))
    request = view.more()
    assert request == {"action": "history", "room": "Lounge", "before": "e-5", "limit": 20}
    view.sent(request)
    refused = {"action": "history", "success": False, "message": "Before must be a message id."}
    assert view.received(refused).text == "!!! /more: Before must be a message id."
    view.sent(request)
    gone = view.received(_history("Lounge", [], False)).text  # e-5 is no longer kept
    assert gone == "*** Nothing earlier is kept in Lounge."
    assert view.more() == "*** Beginning of the history kept for Lounge."
    view.sent({"action": "history", "limit": 2})  # the last ones again: a new run back
    view.received(_history("Lounge", [_entry(f"e-{n}", "Bob", "x") for n in (6, 7)], False))
    assert view.more() == {"action": "history", "room": "Lounge", "before": "e-6", "limit": 20}
    view.sent({"action": "history", "limit": 20})  # all of it, this time
    view.received(_history("Lounge", [_entry("e-1", "Bob", "x")], True))
    assert view.more() == "*** Beginning of the history kept for Lounge."


def test_a_server_that_cannot_page_back_is_told_apart() -> None:
    cannot = (
        "*** This server cannot show what came before in Lounge; "
        "/history N shows its last N messages."
    )
    view = ChatView()  # protocol 1.1: history, but no `before`
    for request, purpose in view.received(
        {"action": "connecting", "room": "Lounge", "user": "Alice"}
    ).requests:
        view.sent(request, purpose)
    assert view.more() == cannot
    view = ChatView()
    _entered(view)
    view.received(_history("Lounge", [_entry("e-8", "Bob", "x")], False))
    request = view.more()
    assert isinstance(request, dict)
    view.sent(request)
    ignored = _history("Lounge", [_entry("e-7", "Bob", "x"), _entry("e-8", "Bob", "x")], True)
    assert view.received(ignored).text == cannot  # it answered as if `before` was not there
    assert view.more() == cannot


def test_the_rooms_listed() -> None:
    view = ChatView()
    _entered(view)
    view.sent({"action": "room_list"})
    reply = {"action": "room_list", "success": True, "rooms": [
        {"room": "Lounge", "users": 2}, {"room": "Default", "users": 1},
        {"room": 5, "users": 1}, {"room": "Odd", "users": "many"}, "junk",
    ]}  # fmt: skip
    assert view.received(reply).text == (
        "*** Rooms, most people first:\n  Lounge   2 people (you are here)\n  Default  1 person"
    )
    view.sent({"action": "room_list"})
    refused = {"action": "room_list", "success": False, "message": "Not allowed."}
    assert view.received(refused).text == "!!! /rooms: Not allowed."


@pytest.mark.parametrize("junk", [5, "text", None, {"a": 1}, [1, None, ["x"]]])
def test_a_broken_server_s_lists_crash_nothing(junk: object) -> None:
    view = ChatView()
    _entered(view)
    for action, field in (("room_list", "rooms"), ("history", "messages"),
                          ("user_list", "users")):  # fmt: skip
        view.sent({"action": action})
        view.received({"action": action, "success": True, "room": "Lounge", field: junk})
    assert view.nicks() == []
