"""The registry moves, on plain objects in place of sockets."""

import random

import pytest

from aiohttp_chat import utils
from aiohttp_chat.protocol import Clash, ProtocolError, skeleton

from .support.checks import exactly

Registry = utils.Registry[object]


def make(**rooms: dict[str, object]) -> Registry:
    registry: Registry = utils.Registry()
    for room, members in rooms.items():
        for nick, member in members.items():
            utils.add_member(registry, room, nick, member)
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


def test_free_default_nick_is_the_first_free_draw_and_attempts_count_draws() -> None:
    """A seeded rng's draws are known beforehand: the nick is the first of them free in the
    room (one held in another room is free), and `attempts` is how many are drawn."""
    seed = 22
    rng = random.Random(seed)
    first, second, third = (f"User{rng.randint(0, 999_999)}" for _ in range(3))
    registry = make(Default={first: 1, second: 2}, Other={third: 3})

    def draw(attempts: int) -> str | None:
        rng = random.Random(seed)
        return utils.free_default_nick(registry, "Default", attempts=attempts, rng=rng)

    assert draw(attempts=2) is None
    assert draw(attempts=3) == third
    assert utils.free_default_nick(registry, "Other", rng=random.Random(seed)) == first


ALIKE_IN_ROOM = "Name looks like one already in use in this room."


def test_a_nick_alike_to_a_members_is_refused_and_freed_when_they_go() -> None:
    a = object()
    registry = make(room={"Alice": a})
    for alike in ("alice", "ALICE", "\u0410lice", "A1ice"):
        with pytest.raises(ProtocolError, match=exactly(ALIKE_IN_ROOM)):
            utils.add_member(registry, "room", alike, object())
    assert utils.clash(registry["room"], "Alice") is Clash.SAME
    assert utils.clash(registry["room"], "alice") is Clash.ALIKE
    assert utils.clash(registry["room"], "Bob") is None
    assert utils.clash(registry.get("elsewhere"), "alice") is None
    utils.remove_member(registry, "room", "Alice", a)
    utils.add_member(registry, "room", "alice", a)  # free again
    assert registry["room"].alike == {skeleton("alice"): "alice"}


def test_a_member_may_change_the_case_of_its_own_nick_but_not_take_anothers_look() -> None:
    a, b = object(), object()
    registry = make(room={"alice": a, "Bob": b})
    utils.change_nick(registry, "room", "alice", "Alice")
    assert registry["room"] == {"Alice": a, "Bob": b}
    with pytest.raises(ProtocolError, match=exactly("Name looks like one already in use.")):
        utils.change_nick(registry, "room", "Alice", "BOB")
    assert registry["room"].alike == {skeleton("alice"): "Alice", skeleton("bob"): "Bob"}


def test_moving_into_a_room_with_an_alike_nick_is_refused() -> None:
    a, b = object(), object()
    registry = make(one={"alice": a}, two={"Alice": b})
    with pytest.raises(ProtocolError, match=exactly(ALIKE_IN_ROOM)):
        utils.change_room(registry, "one", "two", "alice")
    assert registry == {"one": {"alice": a}, "two": {"Alice": b}}


def test_the_registry_knows_its_rooms_by_skeleton_while_they_have_members() -> None:
    a = object()
    registry = make(Lounge={"alice": a})
    assert utils.alike_room(registry, "lounge") == "Lounge"
    assert utils.alike_room(registry, "L\u043eunge") == "Lounge"  # Cyrillic o
    assert utils.alike_room(registry, "Lounge") is None  # the very room is not "alike"
    assert utils.alike_room(registry, "Kitchen") is None
    utils.change_room(registry, "Lounge", "Kitchen", "alice")
    assert utils.alike_room(registry, "lounge") is None
    assert utils.alike_room(registry, "KITCHEN") == "Kitchen"


def test_a_default_nick_is_never_alike_to_a_members() -> None:
    registry = make(room={"user1": object()})
    rng = random.Random(0)
    draws = iter([1, 1, 2])
    rng.randint = lambda low, high: next(draws)  # type: ignore[method-assign]
    assert utils.free_default_nick(registry, "room", rng=rng) == "User2"
