"""The registry moves, on plain objects in place of sockets."""

import random
from collections import defaultdict

import pytest

from aiohttp_chat import utils
from aiohttp_chat.protocol import ProtocolError

from .conftest import exactly

Registry = utils.Registry[object]


def make(**rooms: dict[str, object]) -> Registry:
    registry: Registry = defaultdict(dict)
    registry.update({room: dict(members) for room, members in rooms.items()})
    return registry


def test_add_and_remove_forgets_empty_rooms() -> None:
    registry, a = make(), object()
    utils.add_member(registry, "room", "alice", a)
    assert registry == {"room": {"alice": a}}
    with pytest.raises(ProtocolError, match=exactly("Name already in use in this room.")):
        utils.add_member(registry, "room", "alice", object())
    assert not utils.remove_member(registry, "room", "alice", object())  # not the holder
    assert utils.remove_member(registry, "room", "alice", a)
    assert registry == {}
    assert not utils.remove_member(registry, "room", "alice", a)
    assert registry == {}


def test_change_nick() -> None:
    a, b = object(), object()
    registry = make(room={"alice": a, "bob": b})
    utils.change_nick(registry, "room", "alice", "carol")
    assert registry["room"] == {"carol": a, "bob": b}
    for taken in ("bob", "carol"):
        with pytest.raises(ProtocolError, match=exactly("Name already in use.")):
            utils.change_nick(registry, "room", "carol", taken)
    assert registry["room"] == {"carol": a, "bob": b}


def test_change_room() -> None:
    a, b = object(), object()
    registry = make(one={"alice": a}, two={"alice": b})
    with pytest.raises(ProtocolError, match=exactly("Name already in use in this room.")):
        utils.change_room(registry, "one", "two", "alice")
    with pytest.raises(ProtocolError, match=exactly("Name already in use in this room.")):
        utils.change_room(registry, "one", "one", "alice")
    assert registry == {"one": {"alice": a}, "two": {"alice": b}}
    utils.change_room(registry, "one", "three", "alice")
    assert registry == {"two": {"alice": b}, "three": {"alice": a}}


def test_list_users_does_not_create_rooms() -> None:
    registry = make(room={"alice": 1, "bob": 2})
    assert utils.list_users(registry, "room") == ["alice", "bob"]
    assert utils.list_users(registry, "elsewhere") == []
    assert "elsewhere" not in registry


def test_free_default_nick_draws_again_on_collision() -> None:
    first = random.Random(7).randint(0, 999_999)
    registry = make(Default={f"User{first}": 1})
    nick = utils.free_default_nick(registry, "Default", rng=random.Random(7))
    assert nick is not None and nick != f"User{first}"
    assert nick.startswith("User") and str(int(nick[4:])) == nick[4:]  # no padding
    assert 0 <= int(nick[4:]) <= 999_999


def test_free_default_nick_gives_up_after_attempts() -> None:
    class Always:
        def randint(self, low: int, high: int) -> int:
            return 5

    registry = make(Default={"User5": 1})
    assert utils.free_default_nick(registry, "Default", rng=Always()) is None  # type: ignore[arg-type]
    assert utils.free_default_nick(make(), "Default", rng=Always()) == "User5"  # type: ignore[arg-type]
