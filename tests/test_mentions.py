"""The rule of a mention: a message that names your nick, as a word, alike by the server's
rule; never your own."""

import pytest

from aiohttp_chat.mentions import forms, is_mention, names


@pytest.mark.parametrize(
    "message",
    [
        "Alice",
        "hi alice",
        "@alice, look",
        "ALICE: there?",
        "thanks (Alice)!",
        "\u0410lice?",  # a Cyrillic A: alike, by the server's skeleton
        "\uff21lice",  # a fullwidth A
        "A1ice",
        "line one\nand @Alice.",
        "tab\tAlice",
        "ideographic\u3000space\u3000Alice",  # every White_Space character parts words
        "nbsp\u00a0Alice",
        "«Alice»",  # guillemets are punctuation (Pi, Pf)
        "@@alice",  # all the punctuation at its start removed
    ],
)
def test_a_message_that_names_alice(message: str) -> None:
    assert names(message, "Alice")
    assert is_mention("Bob", message, "Alice")


@pytest.mark.parametrize(
    "message",
    [
        "",
        "Alicent",
        "Alice's",  # a word is a word, not part of one
        "al-ice",
        "Alice-Marie",
        "malice",
        "$Alice",  # $ is a symbol, not punctuation
        "Al ice",
        "Alice\u200bX",  # a zero-width space is no White_Space: one word
    ],
)
def test_a_message_that_does_not(message: str) -> None:
    assert not names(message, "Alice")


@pytest.mark.parametrize(
    ("message", "nick"),
    [
        ("bob_: hi", "bob_"),  # a nick may hold punctuation: only the last `:` goes
        ("@bob_:", "bob_"),
        ("[Bob], hi", "[Bob]"),
        ("(@[Bob])", "Bob"),  # all of it, either end
        ("Bob!", "Bob!"),
        ("Bob!", "Bob"),
        ("hey -x-.", "-x-"),
        ("Mr.T?", "Mr.T"),
    ],
)
def test_nicks_with_punctuation_of_their_own(message: str, nick: str) -> None:
    assert names(message, nick)


def test_the_forms_of_a_word() -> None:
    assert forms("alice") == {"alice"}
    assert forms("@alice,") == {"@alice,", "@alice", "alice,", "alice"}
    assert forms("(@bob_):") == {
        "(@bob_):", "(@bob_)", "(@bob",
        "@bob_):", "@bob_)", "@bob",
        "bob_):", "bob_)", "bob",
    }  # fmt: skip
    assert forms("...") == {"..."}  # all punctuation: the word only
    assert forms("a") == {"a"}


def test_your_own_messages_never_mention_you() -> None:
    assert not is_mention("Alice", "as Alice I say", "Alice")
    assert is_mention("alice", "Alice!", "Alice")  # someone else (in the history, say)
    assert not is_mention("Bob", "Alice", None)  # no nick yet
    assert not is_mention("Bob", None, "Alice")  # no text (a broken server)
    assert not is_mention("Bob", ["Alice"], "Alice")
