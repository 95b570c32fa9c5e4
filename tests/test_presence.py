"""Rooms of thousands (protocol 1.2, `presence.py`): a room at `--announce-limit` hears no
arrivals or departures, on one server and across nodes; `user_list` of a big room comes in
pages, every name once, sorted, each frame under 60,000 bytes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from aiohttp_chat import presence, protocol
from aiohttp_chat.presence import PAGE_BYTES, PAGE_NAMES, Roster
from aiohttp_chat.server import Settings

from .support.checks import eventually, stamped
from .support.peers import TIMEOUT, Connect, Peer, open_peer
from .support.processes import ClientProcess
from .support.servers import StartNode


def joined(room: str, user: str) -> dict[str, Any]:
    return {"action": "joined", "room": room, "user": user}


def left(room: str, user: str) -> dict[str, Any]:
    return {"action": "left", "room": room, "user": user, "shame": False}


def long_name(index: int) -> str:
    """A nick of 20 characters of four bytes each (CJK Extension B letters), one per index."""
    return chr(0x20000 + index % 1000) + chr(0x20400 + index // 1000) + chr(0x21000) * 18


def every_page(room: str, roster: Roster) -> list[dict[str, Any]]:
    pages = [presence.page(room, roster, None)]
    while "next" in pages[-1]:
        pages.append(presence.page(room, roster, pages[-1]["next"]))
    return pages


# ------------------------------------------------------------------------ the rules


def test_a_room_is_quiet_from_the_limit_on_counting_the_one_who_comes_or_goes() -> None:
    assert [presence.quiet(size, 3) for size in (1, 2, 3, 4)] == [False, False, True, True]
    assert not presence.quiet(1_000_000, 0)  # 0: always announced, as the original


@pytest.mark.parametrize(
    "names",
    [
        [long_name(i) for i in range(2000)],
        [long_name(i) for i in range(10_000)],
        [f"User{i}" for i in range(10_000)],  # short names: cut by count
        [f'"\\{i:05}"' for i in range(3000)],  # escaped in JSON: counted as sent
    ],
    ids=["2000-long", "10000-long", "10000-short", "escaped"],
)
def test_pages_hold_every_name_once_sorted_within_the_frame_limit(names: list[str]) -> None:
    pages = every_page("Stadium", Roster(reversed(names)))
    listed = [name for page in pages for name in page["users"]]
    assert listed == sorted(names)
    for page in pages:
        assert page["count"] == len(names)
        assert 0 < len(page["users"]) <= PAGE_NAMES
        assert len(protocol.encode(page)) < PAGE_BYTES
    assert all(page["next"] == page["users"][-1] for page in pages[:-1])
    if names[0].startswith("User"):
        assert [len(page["users"]) for page in pages] == [PAGE_NAMES] * 10


def test_a_page_starts_after_any_name_given() -> None:
    roster = Roster(["b", "d", "c", "a"])
    assert presence.page("Hall", roster, "bb")["users"] == ["c", "d"]
    assert presence.page("Hall", roster, "zz") == protocol.user_list_reply("Hall", [], 4)
    assert presence.fits("Hall", ["a"] * PAGE_NAMES)
    assert not presence.fits("Hall", ["a"] * (PAGE_NAMES + 1))
    assert not presence.fits("Hall", [long_name(i) for i in range(800)])  # by bytes


# ------------------------------------------------------------------------ quiet rooms


@pytest.mark.parametrize("settings", [Settings(announce_limit=3)])
async def test_a_room_at_the_limit_hears_no_arrivals_or_departures(connect: Connect) -> None:
    alice, bob, carol, dave = [await connect() for _ in range(4)]  # sizes 1, 2, 3, 4
    assert await alice.broadcasts() == [joined("Default", bob.nick)]  # at 2: heard
    assert await bob.broadcasts() == await carol.broadcasts() == []  # at 3 and 4: quiet
    await dave.ask(action="chat_message", message="still heard")
    for peer in (alice, bob, carol):  # everything else as ever
        assert [stamped(m) for m in await peer.broadcasts()] == [
            {"action": "chat_message", "message": "still heard", "user": dave.nick}
        ]
    was = dave.nick
    await dave.set_nick("Dave")
    for peer in (alice, bob, carol):
        assert await peer.broadcasts() == [
            {"action": "nick_changed", "room": "Default", "from_user": was, "to_user": "Dave"}
        ]
    await dave.join("Elsewhere")  # leaves a room of 4: quiet
    await carol.ws.close()  # of 3: quiet
    await bob.ws.close()  # of 2: heard
    assert await alice.recv() == {**left("Default", bob.nick), "shame": False}
    await alice.assert_quiet()


@pytest.mark.parametrize("settings", [Settings(announce_limit=0)])
async def test_a_limit_of_zero_announces_every_arrival(connect: Connect) -> None:
    first, *others = [await connect() for _ in range(5)]
    assert await first.broadcasts() == [joined("Default", peer.nick) for peer in others]


async def test_below_the_limit_rooms_hear_everything(connect: Connect) -> None:
    alice, bob, carol = [await connect() for _ in range(3)]  # the default limit: 1000
    assert await alice.broadcasts() == [joined("Default", p.nick) for p in (bob, carol)]
    await carol.join("Attic")
    assert await bob.broadcasts() == [joined("Default", carol.nick), left("Default", carol.nick)]


@pytest.fixture
def redis_server(each_redis: Any) -> Any:
    """The cluster tests here run on one Redis and on a three-master Redis Cluster."""
    return each_redis


async def test_across_nodes_the_size_is_the_rooms_on_all_of_them(node: StartNode) -> None:
    one, two = await node(announce_limit=3), await node(announce_limit=3)
    alice = await open_peer(one)
    others = [await open_peer(two) for _ in range(3)]  # sizes 2, 3 and 4, on all nodes
    for peer in (alice, *others):
        await peer.join("Hall")

    async def members() -> set[str]:
        return set((await alice.ask(action="user_list", room="Hall"))["users"])

    bob, carol, dave = others
    for peer in (dave, carol):  # leave rooms of 4 and 3: quiet; node two made each change
        await peer.ws.close()

        async def released(nick: str = peer.nick) -> bool:
            return nick not in await members()

        await eventually(released, TIMEOUT)
    await bob.ws.close()  # of 2: heard on node one
    heard = []  # node two published each room's events in order: bob's left comes last
    while not heard or heard[-1]["action"] != "left":
        message = await alice.recv()  # (and what Default heard before she moved)
        if message["action"] in ("joined", "left") and message["room"] == "Hall":
            heard.append(message)
    assert heard == [joined("Hall", bob.nick), left("Hall", bob.nick)]
    await alice.assert_quiet()


# ------------------------------------------------------------------------ paged user_list


async def fill(
    client: TestClient[Any, Any], session: aiohttp.ClientSession, n: int, start: int = 0
) -> list[Any]:
    """`n` members of Stadium with 20-character names of four bytes each, entered in one step."""
    members = []
    for index in range(start, start + n):
        url = client.make_url("/chat").with_query(nick=long_name(index), room="Stadium")
        ws = await session.ws_connect(url)
        first = await ws.receive_json(timeout=TIMEOUT)
        assert first["user"] == long_name(index), first
        members.append(ws)
    return members


async def pages_of(peer: Peer, room: str) -> list[dict[str, Any]]:
    """Every page of `room`'s user_list, each frame's size checked."""
    pages: list[dict[str, Any]] = []
    while not pages or "next" in pages[-1]:
        after = {"after": pages[-1]["next"]} if pages else {}
        await peer.send(action="user_list", room=room, **after)
        while "success" not in (reply := json.loads(frame := await peer.ws.receive_str())):
            pass
        assert len(frame.encode()) < PAGE_BYTES
        pages.append(reply)
    return pages


@pytest.mark.parametrize(
    "settings", [Settings(max_connections_per_ip=0, rate_limit=0, announce_limit=100)]
)
async def test_a_big_rooms_user_list_comes_in_pages(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    watcher = await connect()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        members = await fill(client, session, 800)  # two pages: cut by bytes
        names = sorted(long_name(i) for i in range(800))
        pages = await pages_of(watcher, "Stadium")
        assert len(pages) == 2
        assert [name for page in pages for name in page["users"]] == names
        assert {page["count"] for page in pages} == {800}
        assert {page["room"] for page in pages} == {"Stadium"}
        await members.pop().close()  # the names kept are made anew after a change

        async def one_less() -> bool:
            return (await pages_of(watcher, "Stadium"))[0]["count"] == 799

        await eventually(one_less, TIMEOUT)
        assert [n for p in await pages_of(watcher, "Stadium") for n in p["users"]] == sorted(
            long_name(i) for i in range(799)
        )


@pytest.mark.parametrize("settings", [Settings(max_connections_per_ip=0, rate_limit=0)])
async def test_the_terminal_client_shows_a_first_page_and_how_many_more(
    client: TestClient[Any, Any],
    connect: Connect,
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    watcher = await connect()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        crowd = await fill(client, session, 800)
        carol = await start_client(str(client.make_url("/chat")), "--nick", "Carol",
                                   "--room", "Stadium")  # fmt: skip
        await carol.expect("*** Connected to Stadium as Carol.")
        shown = len((await pages_of(watcher, "Stadium"))[0]["users"])
        await carol.type("/users")
        await carol.expect(f"*** ... and {801 - shown:,} more: 801 people are in Stadium.")
        assert len(crowd) == 800  # held open until here


async def test_after_pages_a_small_room_and_must_be_a_name(connect: Connect) -> None:
    alice = await connect()
    for nick in ("Zed", "Amy", "Moe"):
        peer = await connect()
        await peer.set_nick(nick)
    reply = await alice.ask(action="user_list", after="Bob")
    assert reply == {
        "action": "user_list",
        "success": True,
        "room": "Default",
        "users": sorted(["Moe", "Zed", alice.nick]),
        "count": 4,
    }
    for after in ("", 0, 5, ["Amy"], {"x": 1}, True):
        assert await alice.ask(action="user_list", after=after) == {
            "action": "user_list",
            "success": False,
            "message": "After must be a name from a user_list answer.",
        }
    assert protocol.USERS_AFTER_INVALID == "After must be a name from a user_list answer."


async def test_a_big_rooms_pages_on_redis_hold_every_node_s_members(node: StartNode) -> None:
    one, two = await node(max_connections_per_ip=0), await node(max_connections_per_ip=0)
    watcher = await open_peer(one)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        members = [*await fill(one, session, 400), *await fill(two, session, 350, start=400)]
        pages = await pages_of(watcher, "Stadium")
        assert len(pages) == 2
        assert [name for page in pages for name in page["users"]] == sorted(
            long_name(i) for i in range(750)
        )
        assert {page["count"] for page in pages} == {750}
        await members.pop().close()  # on node two: node one sees it within a second

        async def one_less() -> bool:
            return (await pages_of(watcher, "Stadium"))[0]["count"] == 749

        await eventually(one_less, TIMEOUT)


async def test_a_big_rooms_names_are_sorted_again_only_after_a_change() -> None:
    names = [f"User{i}" for i in range(PAGE_NAMES + 1)]
    fetched: list[str] = []

    async def fetch(room: str) -> list[str]:
        fetched.append(room)
        return list(names)

    rosters = presence.Rosters(fetch)
    first = await rosters.answer("Hall", None)
    assert await rosters.answer("Hall", first["next"]) == {
        **protocol.user_list_reply("Hall", [max(names)], PAGE_NAMES + 1)
    }
    assert fetched == ["Hall"]  # once: the second page is of the names kept
    names.append("Zoe")
    rosters.changed("Hall")
    assert (await rosters.answer("Hall", first["next"]))["users"] == [max(names[:-1]), "Zoe"]
    assert fetched == ["Hall", "Hall"]
    small = [f"User{i}" for i in range(3)]
    names[:] = small  # it shrank: answered as ever, and no longer kept
    rosters.changed("Hall")
    assert (await rosters.answer("Hall", None))["count"] == 3  # from the names fetched anew
    assert await rosters.answer("Hall", None) == protocol.user_list_reply("Hall", small)
