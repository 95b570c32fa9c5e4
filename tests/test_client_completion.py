"""Nick completion's parts: the room's members by activity, and which nicks match."""

from aiohttp_chat.client_completion import Members, completion, line_start, matching, word_start


def test_members_rank_who_spoke_last_first_then_the_others_by_name() -> None:
    members = Members()
    members.reset(["Zed", "bob", "Alice", "Me", 42])  # (a broken server's 42: no nick)
    assert members.ranked(own="Me") == ["Alice", "bob", "Zed"]
    members.spoke("Zed")
    members.spoke("bob")
    assert members.ranked(own="Me") == ["bob", "Zed", "Alice"]
    members.spoke("Zed")
    assert members.ranked(own="Me") == ["Zed", "bob", "Alice"]
    members.spoke("Newcomer")  # heard live: in the room, whether we knew or not
    assert members.ranked(own="Me")[0] == "Newcomer"


def test_members_follow_the_room() -> None:
    members = Members()
    members.reset(["Alice", "Bob"])
    members.spoke("Bob")
    members.joined("Carol")
    members.renamed("Bob", "Robert")  # keeps when Bob spoke
    members.renamed("Nobody", "Ghost")  # not a member: nothing
    assert members.ranked() == ["Robert", "Alice", "Carol"]
    members.left("Robert")
    assert members.ranked() == ["Alice", "Carol"]
    members.spoke("Robert", live=False)  # from the history, and gone: not offered
    assert "Robert" not in members
    members.reset(["Alice", "Dan"])  # a fresh user_list: Carol is gone, Dan came
    assert members.ranked() == ["Alice", "Dan"]
    members.clear()
    assert members.ranked() == []


def test_the_history_ranks_after_what_was_heard_live() -> None:
    members = Members()
    members.reset(["Alice", "Bob", "Carol", "Dan"])
    members.spoke("Dan")  # live, before the history's reply came
    members.heard(["Bob", "Alice", "Dan", "Gone", "Bob"])  # oldest first
    assert members.ranked() == ["Dan", "Bob", "Alice", "Carol"]


def test_matching_nicks_by_casefolded_prefix_in_the_order_given() -> None:
    nicks = ["alan", "Alice", "Bob", "STRASSE", "Al\x1b[2J", "Al\u202e"]
    assert matching("al", nicks) == ["alan", "Alice"]
    assert matching("AL", nicks) == ["alan", "Alice"]
    assert matching("straße", nicks) == ["STRASSE"]  # casefold, not lower
    assert matching("", nicks) == []  # nothing typed: nothing to complete
    assert matching("A", ["A\u00a0b", "A\u200bb", "A\u2028", "A\tb", "Ab"]) == ["Ab"]
    assert matching("x", nicks) == []


def test_what_a_completion_puts_in_place() -> None:
    assert completion("Alice", at_start=True, at=False) == "Alice: "
    assert completion("Alice", at_start=False, at=False) == "Alice "
    assert completion("Alice", at_start=True, at=True) == "@Alice "
    assert completion("Alice", at_start=True, at=False, spaced=True) == "Alice:"
    assert completion("Alice", at_start=False, at=False, spaced=True) == "Alice"


def test_the_word_before_the_cursor() -> None:
    assert word_start("hi Al", 5) == 3
    assert word_start("Al", 2) == 0
    assert word_start("hi ", 3) == 3
    assert word_start("one\ntwo", 7) == 4
    assert word_start("one\u3000two\u00a0x", 7) == 4  # white space of every kind
    assert word_start("one\u3000two\u00a0x", 9) == 8
    assert word_start("a\x1fb", 3) == 0  # a control character is not white space


def test_the_start_of_a_line() -> None:
    assert line_start("Al", 0)
    assert line_start("hi\nAl", 3)
    assert not line_start("hi Al", 3)
