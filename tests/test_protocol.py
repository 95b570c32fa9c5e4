import functools
import unicodedata
from typing import Final

import pytest

from aiohttp_chat import confusables, protocol
from aiohttp_chat.protocol import ProtocolError

from .support.checks import exactly


@pytest.mark.parametrize("nick", ["abc", "a" * 20, "Jonas", "x😀😀", "名前です"])
def test_valid_nicks(nick: str) -> None:
    assert protocol.validate_nick(nick) == nick
    assert protocol.validate_room(nick) == nick


@pytest.mark.parametrize("value", [None, 123, ["abc"], {"a": 1}, True, "ab", "a" * 21, ""])
def test_invalid_names(value: object) -> None:
    with pytest.raises(ProtocolError) as nick_error:
        protocol.validate_nick(value)
    assert nick_error.value.text == "Name must be a string and between 3-20 chars."
    with pytest.raises(ProtocolError) as room_error:
        protocol.validate_room(value)
    assert room_error.value.text == "Room name must be a string and between 3-20 chars."


@pytest.mark.parametrize(
    "value",
    [
        "\x1b[31mred",
        "nul\x00x",
        "del\x7fx",
        "evil\u202etxt",
        "zero\u200dwidth",
        "tab\tx",
        "ab\ud800",
        "😀😀😀",  # no letter or digit
    ],
)
def test_names_with_control_or_format_characters(value: str) -> None:
    with pytest.raises(
        ProtocolError, match=exactly("Name contains characters that are not allowed.")
    ):
        protocol.validate_nick(value)
    with pytest.raises(
        ProtocolError, match=exactly("Room name contains characters that are not allowed.")
    ):
        protocol.validate_room(value)


NFD: Final = functools.partial(unicodedata.normalize, "NFD")
NICK_REFUSED: Final = "Name contains characters that are not allowed."
ROOM_REFUSED: Final = "Room name contains characters that are not allowed."

# Names tried as an impersonator would, beside `Alice` (or the room `Default`): each is
# either refused for what it holds, or alike to the name it imitates.
IMPERSONATIONS: Final = [
    # (name, what it imitates, the refusal as a nick, as a room; None: alike but allowed)
    ("alice", "Alice", None, None),
    ("ALICE", "Alice", None, None),
    ("\u0410lice", "Alice", None, None),  # Cyrillic capital A
    ("\uff21lice", "Alice", None, None),  # fullwidth A
    ("A1ice", "Alice", None, None),  # the digit one for an l
    ("AIice", "Alice", None, None),  # a capital I for an l, which folding makes an i
    ("DefauIt", "Default", None, None),
    ("A\u0406ice", "Alice", None, None),  # Cyrillic capital byelorussian-ukrainian I
    ("\u13b7ary", "Mary", None, None),  # Cherokee MI maps to M, which folds to m, then rn
    ("Alice\ufe0f", "Alice", None, None),  # a variation selector, which NFKC_CF drops
    ("Alice\u034f", "Alice", None, None),  # the combining grapheme joiner, likewise
    ("\u13aalice", "Alice", None, None),  # Cherokee GO maps to a capital A
    ("\u0251lice", "Alice", None, None),  # Latin small alpha
    ("Alic\u0435", "Alice", None, None),  # Cyrillic small ie
    ("\U0001d400lice", "Alice", None, None),  # mathematical bold A
    ("Pa\u0443Pal", "PayPal", None, None),  # Cyrillic u, UTS #39's own kind of example
    ("paypa1", "PayPal", None, None),
    ("rnark", "mark", None, None),  # rn for m
    ("C\u043e\u043e\u0440er", "Cooper", None, None),  # Cyrillic o, o, r
    ("G\u043e\u043egle", "Google", None, None),
    ("\u0455cope", "scope", None, None),  # Cyrillic dze
    ("\u0399van", "Ivan", None, None),  # Greek capital iota
    ("N\u0399CK", "NICK", None, None),
    ("default", "Default", None, None),
    ("DEFAULT", "Default", None, None),
    ("Alice ", "Alice", NICK_REFUSED, ROOM_REFUSED),
    (" Alice", "Alice", NICK_REFUSED, ROOM_REFUSED),
    ("Default ", "Default", NICK_REFUSED, ROOM_REFUSED),
    ("Alice\u00a0", "Alice", NICK_REFUSED, ROOM_REFUSED),  # no-break space
    ("Ali ce", "ALI CE", NICK_REFUSED, None),  # a space: refused in a nick, not in a room
    ("Ali  ce", "Ali ce", NICK_REFUSED, ROOM_REFUSED),  # two spaces
    ("Ali\u3000ce", "Ali ce", NICK_REFUSED, ROOM_REFUSED),  # ideographic space
    ("Ali\u2009ce", "Ali ce", NICK_REFUSED, ROOM_REFUSED),  # thin space
    ("Alice\u2028", "Alice", NICK_REFUSED, ROOM_REFUSED),  # line separator
    ("Alice\u2029", "Alice", NICK_REFUSED, ROOM_REFUSED),  # paragraph separator
    ("Ali\u200bce", "Alice", NICK_REFUSED, ROOM_REFUSED),  # zero-width space
    ("Ali\u00adce", "Alice", NICK_REFUSED, ROOM_REFUSED),  # soft hyphen
    ("\u202eecilA", "Alice", NICK_REFUSED, ROOM_REFUSED),  # right-to-left override
    ("Alice\U000e0041", "Alice", NICK_REFUSED, ROOM_REFUSED),  # a tag character
    ("\u3000\u3000\u3000", "", NICK_REFUSED, ROOM_REFUSED),  # three ideographic spaces
    ("\u0301\u0301\u0301", "", NICK_REFUSED, ROOM_REFUSED),  # combining marks only
    ("\u0301Alice", "Alice", NICK_REFUSED, ROOM_REFUSED),  # starts with a combining mark
    ("\u3164\u3164\u3164", "", NICK_REFUSED, ROOM_REFUSED),  # Hangul filler
    ("Alice\u3164", "Alice", NICK_REFUSED, ROOM_REFUSED),
    ("\u115fAlice", "Alice", NICK_REFUSED, ROOM_REFUSED),  # Hangul choseong filler
    ("Alice\uffa0", "Alice", NICK_REFUSED, ROOM_REFUSED),  # halfwidth Hangul filler
    ("\u2800\u2800\u2800", "", NICK_REFUSED, ROOM_REFUSED),  # braille blank
    ("Alice\u2800", "Alice", NICK_REFUSED, ROOM_REFUSED),
    ("\ue000\ue001\ue002", "", NICK_REFUSED, ROOM_REFUSED),  # private use
    ("Alice\U000f0000", "Alice", NICK_REFUSED, ROOM_REFUSED),  # private use, plane 15
    ("Alice\u0378", "Alice", NICK_REFUSED, ROOM_REFUSED),  # unassigned
    ("---", "", NICK_REFUSED, ROOM_REFUSED),  # no letter or digit
]


@pytest.mark.parametrize(("name", "imitated", "as_nick", "as_room"), IMPERSONATIONS)
def test_impersonations_are_refused_or_alike(
    name: str, imitated: str, as_nick: str | None, as_room: str | None
) -> None:
    for validate, refusal in ((protocol.validate_nick, as_nick), (protocol.validate_room, as_room)):
        if refusal is None:
            assert validate(name) == name
            assert protocol.skeleton(name) == protocol.skeleton(imitated)
        else:
            with pytest.raises(ProtocolError, match=exactly(refusal)):
                validate(name)


@pytest.mark.parametrize(
    "name",
    ["Bob", "Zoë", "李小龍", "Ærø", "Владимир", "O'Brien", "user_42", "Jean-Luc", "Ñandú",
     "Ελένη", "محمد", "שלום", "नमस्ते", "한국어", "ひらがな", "Łukasz", "Zoë2", "x😀😀"],
)  # fmt: skip
def test_real_names_are_accepted_as_written(name: str) -> None:
    assert protocol.validate_nick(name) == name
    assert protocol.validate_room(name) == name
    assert protocol.skeleton(name) != protocol.skeleton("Alice")


def test_a_decomposed_name_is_taken_composed() -> None:
    assert NFD("Zoë") != "Zoë"
    assert protocol.validate_nick(NFD("Zoë")) == "Zoë"
    assert protocol.validate_room(NFD("Zoë Café")) == "Zoë Café"
    assert protocol.skeleton(NFD("Zoë")) == protocol.skeleton("Zoë")
    # lengths count the composed code points: 20 letters with accents are 40 decomposed
    assert protocol.validate_nick(NFD("é" * 20)) == "é" * 20
    with pytest.raises(ProtocolError, match=exactly(protocol.NICK_INVALID)):
        protocol.validate_nick(NFD("é" * 21))


def test_names_that_are_not_alike() -> None:
    for first, second in [("Alice", "Alicia"), ("Zoë", "Zoe"), ("Bob", "Rob"), ("Ann", "Anne")]:
        assert protocol.skeleton(first) != protocol.skeleton(second)


def test_room_spaces_between_words() -> None:
    assert protocol.validate_room("The Lounge") == "The Lounge"
    assert protocol.skeleton("The Lounge") == protocol.skeleton("the lounge")
    with pytest.raises(ProtocolError, match=exactly(NICK_REFUSED)):
        protocol.validate_nick("The Lounge")


def test_the_alike_room_refusal_names_the_room() -> None:
    text = protocol.room_alike_text("Default")
    assert text == "Room name looks like an existing room: Default."
    assert protocol.alike_room_of(text) == "Default"
    assert protocol.alike_room_of(protocol.room_alike_text("The. Lounge")) == "The. Lounge"
    assert protocol.alike_room_of(protocol.ROOM_FORBIDDEN_CHARS) is None
    assert protocol.alike_room_of("Room name looks like an existing room: .") is None


def test_a_skeleton_is_its_own_skeleton() -> None:
    """Mapped all the way: no character's skeleton changes when taken again."""
    for point in [*confusables.PROTOTYPES, *range(0x20, 0x3000)]:
        once = protocol.skeleton(chr(point))
        assert protocol.skeleton(once) == once, hex(point)


def test_the_confusables_are_those_of_pythons_unicode() -> None:
    assert unicodedata.unidata_version == confusables.VERSION
    assert len(confusables.PROTOTYPES) > 6000


def test_chat_message_limits() -> None:
    assert protocol.validate_chat_message("x" * 4096, 4096) == "x" * 4096
    assert protocol.validate_chat_message("😀" * 10, 10) == "😀" * 10  # code points, not bytes
    for bad in ("", "x" * 4097, None, 5, ["hi"]):
        with pytest.raises(ProtocolError) as error:
            protocol.validate_chat_message(bad, 4096)
        assert error.value.text == (
            "Message must be a non-empty string of at most 4096 characters."
        )
    with pytest.raises(
        ProtocolError, match=exactly("Message must be a non-empty string of at most 10 characters.")
    ):
        protocol.validate_chat_message("x" * 11, 10)


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '"a string"', "42", "null", "[" * 100_000],
    ids=["word", "list", "string", "number", "null", "deep"],
)
def test_parse_request_needs_a_json_object(text: str) -> None:
    with pytest.raises(ProtocolError, match=exactly("Message must be a JSON object.")):
        protocol.parse_request(text)


def test_parse_request() -> None:
    assert protocol.parse_request('{"action": "x"}') == {"action": "x"}


def test_encode_is_compact_utf8() -> None:
    assert protocol.encode({"a": "é", "b": [1, None]}) == '{"a":"é","b":[1,null]}'.encode()


@pytest.mark.parametrize(
    ("value", "encoded"),
    [("lone \ud800", b'"lone \\ud800"'), (2**70 + 1, b"1180591620717411303425")],
    ids=["lone-surrogate", "big-int"],
)
def test_encode_falls_back_for_what_orjson_refuses(value: object, encoded: bytes) -> None:
    assert protocol.encode(value) == encoded
    assert protocol.decode_exact(encoded.decode()) == value


@pytest.mark.parametrize("value", [-(2**63) - 1, 2**64, [10**30, "x"], {"a": -(10**19)}])
def test_decode_exact_keeps_integers_beyond_64_bits(value: object) -> None:
    decoded = protocol.decode_exact(protocol.encode(value).decode())
    assert decoded == value and repr(decoded) == repr(value)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1e999]", '{"a": NaN}'])
def test_decode_is_strict_json(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.decode(text)


def test_message_shapes() -> None:
    limits = protocol.limits(10.0, 20, 4096)
    assert protocol.connecting("Default", "User1", "T0k3n", limits) == {
        "action": "connecting",
        "room": "Default",
        "user": "User1",
        "protocol": "1.2",
        "resume": "T0k3n",
        "limits": {"rate": 10, "burst": 20, "max_message_chars": 4096},
    }
    assert protocol.limits(0, 20, 99) == {"rate": 0, "burst": 0, "max_message_chars": 99}
    assert protocol.limits(2.5, 5, 99)["rate"] == 2.5
    assert protocol.left("r", "u", shame=True) == {
        "action": "left",
        "room": "r",
        "user": "u",
        "shame": True,
    }
    assert protocol.nick_changed("r", "a", "b") == {
        "action": "nick_changed",
        "room": "r",
        "from_user": "a",
        "to_user": "b",
    }
    assert protocol.chat_broadcast("hi", "u", "e-1", "2026-11-24T07:33:40.992Z") == {
        "action": "chat_message",
        "message": "hi",
        "user": "u",
        "id": "e-1",
        "time": "2026-11-24T07:33:40.992Z",
    }
    assert protocol.fail(None, "Not allowed.") == {
        "action": None,
        "success": False,
        "message": "Not allowed.",
    }


def test_the_largest_rooms_by_members_then_name() -> None:
    counts = [("b", 2), ("a", 2), ("empty", 0), ("c", 5), ("A", 2)]
    assert protocol.largest_rooms(counts) == [("c", 5), ("A", 2), ("a", 2), ("b", 2)]
    many = [(f"r{i:03}", i % 7) for i in range(500)]
    largest = protocol.largest_rooms(many)
    assert len(largest) == protocol.ROOM_LIST_MAX
    assert largest == sorted((c for c in many if c[1]), key=lambda c: (-c[1], c[0]))[:100]
    assert protocol.room_list_reply([("Lounge", 3)]) == {
        "action": "room_list",
        "success": True,
        "rooms": [{"room": "Lounge", "users": 3}],
    }
