import pytest

from aiohttp_chat import protocol
from aiohttp_chat.protocol import ProtocolError

from .conftest import exactly


@pytest.mark.parametrize("nick", ["abc", "a" * 20, "Jonas", "😀😀😀", "名前です", "a b"])
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
