"""Message ids and history: the store's rules (no I/O), then over real sockets and Redis."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from aiohttp_chat import protocol
from aiohttp_chat.history import ROOM_BYTES, MemoryHistory, entry_bytes, split_stream_id
from aiohttp_chat.protocol import UNAVAILABLE
from aiohttp_chat.server import Settings, create_app

from .support.checks import eventually, stamped
from .support.peers import Connect, Peer, open_peer
from .support.redis import RedisServer
from .support.servers import ServerProcess, StartNode, many_people

STAMP = "2026-11-24T07:33:40.992Z"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fill(history: MemoryHistory, room: str, count: int, start: int = 0) -> list[str]:
    return [history.append(room, "bob", f"m{i}", STAMP) for i in range(start, start + count)]


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [message["message"] for message in messages]


# ------------------------------------------------------------------------ the store


def test_ids_are_unique_across_rooms_and_instances() -> None:
    one, two = MemoryHistory(), MemoryHistory()
    ids = fill(one, "a", 3) + fill(one, "b", 3) + fill(two, "a", 3)
    assert len(set(ids)) == 9 and all(ids)


def test_newest_first_cut_by_limit_oldest_first_in_the_reply() -> None:
    history = MemoryHistory()
    fill(history, "r", 5)
    messages, complete = history.read("r", None, 3)
    assert (texts(messages), complete) == (["m2", "m3", "m4"], False)
    messages, complete = history.read("r", None, 5)
    assert (texts(messages), complete) == (["m0", "m1", "m2", "m3", "m4"], True)
    assert messages[0] == {"id": messages[0]["id"], "time": STAMP, "user": "bob", "message": "m0"}
    assert history.read("nobody-here", None, 50) == ([], True)


def test_after_an_id() -> None:
    history = MemoryHistory()
    ids = fill(history, "r", 2) + fill(history, "elsewhere", 2) + fill(history, "r", 4, start=2)
    messages, complete = history.read("r", ids[1], 50)
    assert (texts(messages), complete) == (["m2", "m3", "m4", "m5"], True)
    messages, complete = history.read("r", ids[1], 2)
    assert (texts(messages), complete) == (["m4", "m5"], False)  # the newest, cut
    assert history.read("r", ids[-1], 50) == ([], True)  # nothing since
    for unknown in (ids[2], "nonsense", "x-1", f"{history.epoch}-999", MemoryHistory().epoch):
        messages, complete = history.read("r", unknown, 50)
        assert (len(messages), complete) == (6, False), unknown  # all kept, maybe not all


def test_before_an_id() -> None:
    history = MemoryHistory()
    ids = fill(history, "r", 3) + fill(history, "elsewhere", 2) + fill(history, "r", 5, start=3)
    r = ids[:3] + ids[5:]  # the ids of r's messages m0 to m7
    messages, complete = history.read("r", None, 3, before=r[6])
    assert (texts(messages), complete) == (["m3", "m4", "m5"], False)  # the newest, cut
    messages, complete = history.read("r", None, 50, before=r[6])
    assert (texts(messages), complete) == ([f"m{i}" for i in range(6)], True)
    assert history.read("r", None, 50, before=r[0]) == ([], True)  # nothing older is kept
    messages, complete = history.read("r", r[1], 50, before=r[5])  # between the two
    assert (texts(messages), complete) == (["m2", "m3", "m4"], True)
    messages, complete = history.read("r", r[1], 2, before=r[5])
    assert (texts(messages), complete) == (["m3", "m4"], False)
    assert history.read("r", r[5], 50, before=r[1]) == ([], True)  # nothing between
    # Of this epoch but not r's: placed by its number, so messages may be missing.
    messages, complete = history.read("r", None, 50, before=ids[4])
    assert (texts(messages), complete) == (["m0", "m1", "m2"], False)
    messages, complete = history.read("r", None, 2, before=f"{history.epoch}-999")  # not yet
    assert (texts(messages), complete) == (["m6", "m7"], False)
    for unknown in ("nonsense", "x-1", f"{history.epoch}-1.5", MemoryHistory().epoch + "-3"):
        assert history.read("r", None, 50, before=unknown) == ([], False), unknown


def test_paging_back_reaches_the_beginning_once_each() -> None:
    history = MemoryHistory(per_room=40)
    fill(history, "r", 95)
    pages, before, complete = [], None, False
    while not complete:
        messages, complete = history.read("r", None, 15, before=before)
        pages.append(texts(messages))
        before = messages[0]["id"]
    assert [len(page) for page in pages] == [15, 15, 10]
    assert [text for page in reversed(pages) for text in page] == [f"m{i}" for i in range(55, 95)]
    forgotten = f"{history.epoch}-3"  # m2's: no longer kept, and older than all that is
    assert history.read("r", None, 15, before=forgotten) == ([], False)


def test_retention_by_count() -> None:
    history = MemoryHistory(per_room=3)
    ids = fill(history, "r", 5)
    messages, complete = history.read("r", None, 50)
    assert (texts(messages), complete) == (["m2", "m3", "m4"], True)
    messages, complete = history.read("r", ids[1], 50)  # forgotten: messages may be missing
    assert (texts(messages), complete) == (["m2", "m3", "m4"], False)


def test_zero_keeps_none_but_still_names_every_message() -> None:
    history = MemoryHistory(per_room=0)
    ids = fill(history, "r", 3)
    assert len(set(ids)) == 3
    assert history.read("r", None, 50) == ([], True)


def test_retention_by_time_after_the_last_message() -> None:
    clock = Clock()
    history = MemoryHistory(ttl=60, clock=clock)
    fill(history, "old", 2)
    clock.now += 30
    fill(history, "new", 2)
    clock.now += 29
    fill(history, "old", 1, start=2)  # a new message: the hour starts again
    clock.now += 59
    assert texts(history.read("old", None, 50)[0]) == ["m0", "m1", "m2"]
    assert history.read("new", None, 50) == ([], True)
    clock.now += 1
    assert history.read("old", None, 50) == ([], True)
    assert (history.rooms(), history.bytes) == (0, 0)


def room_bytes(room: str, *messages: tuple[str, str]) -> int:
    """What a room holding `messages` ((user, text) pairs) counts for in the cap."""
    key = protocol.skeleton(room)
    return (
        ROOM_BYTES
        + sys.getsizeof(room)
        + sys.getsizeof(key)
        + sum(entry_bytes(*m) for m in messages)
    )


def test_the_memory_cap_forgets_the_rooms_idle_longest() -> None:
    clock = Clock()
    message = ("bob", "x" * 100)
    cap = sum(room_bytes(room, message) for room in ("first", "second", "third"))
    history = MemoryHistory(max_bytes=cap + entry_bytes(*message), clock=clock)
    for room in ("first", "second", "third"):
        clock.now += 1
        history.append(room, "bob", "x" * 100, STAMP)
    clock.now += 1
    history.append("first", "bob", "x" * 100, STAMP)  # now second is the idlest
    assert history.bytes == history.max_bytes
    history.append("fourth", "bob", "x" * 100, STAMP)
    assert history.read("second", None, 50) == ([], True)
    assert len(history.read("first", None, 50)[0]) == 2
    assert history.bytes == history.max_bytes  # "fourth" costs what "second" did


def test_one_room_over_the_cap_loses_its_oldest() -> None:
    history = MemoryHistory(max_bytes=room_bytes("only", *[("bob", "m10")] * 5))
    fill(history, "only", 20)
    messages, _ = history.read("only", None, 50)
    assert [message["message"] for message in messages] == [f"m{i}" for i in range(15, 20)]
    assert history.bytes <= history.max_bytes


@pytest.mark.parametrize(
    "suffix", ["²", "٣", "007", "1.5", "", str(2**64), "1" * 5000], ids=lambda s: s[:8]
)
def test_an_after_that_only_looks_like_ours_is_unknown(suffix: str) -> None:
    """'²' and '٣' are digits to `str.isdigit`, and `int` refuses the first; '007' is not
    an id we issue; Redis refuses a stream id past 2**64 - 1, and `int` refuses 5,000
    digits. Each is an id the server never gave: unknown, so not complete."""
    history = MemoryHistory()
    (issued,) = fill(history, "room", 1)
    epoch = issued.rpartition("-")[0]
    assert history.read("room", f"{epoch}-{suffix}", 10) == (
        history.read("room", None, 10)[0],
        False,
    )
    assert (
        split_stream_id(f"{epoch}-{suffix}-1") == split_stream_id(f"{epoch}-1-{suffix}") == ("", "")
    )


def test_a_message_bigger_than_the_cap_is_not_kept() -> None:
    history = MemoryHistory(max_bytes=1000)
    fill(history, "small", 1)
    history.append("huge", "bob", "x" * 2000, STAMP)
    assert (history.rooms(), history.bytes) == (0, 0)


def _traced_growth(fill: Callable[[MemoryHistory], None], history: MemoryHistory) -> int:
    """How many bytes `fill(history)` left allocated, by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fill(history)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _rooms_of_one(count: int, text: str = "hi") -> Callable[[MemoryHistory], None]:
    def fill(history: MemoryHistory) -> None:
        for n in range(count):  # every string made here, as a request would make it
            history.append(f"room {n}", f"User{n}", f"{text} {n}", f"2026-12-01T10:{n}Z")

    return fill


@pytest.mark.parametrize(
    ("rooms", "per_room", "text"),
    [
        (50_000, 1, "hi"),  # the attack: many rooms of one tiny message
        (200, 100, "hi"),  # full rooms of tiny messages
        (200, 100, "x" * 1000),
        (200, 100, "é" * 500),  # two bytes a character, as Python stores it
        (200, 100, "😀" * 300),  # four
    ],
)
def test_the_bytes_counted_are_the_bytes_held(rooms: int, per_room: int, text: str) -> None:
    def fill(history: MemoryHistory) -> None:
        for n in range(rooms):
            for m in range(per_room):
                history.append(f"room {n}", f"User{n}", f"{text} {m}", f"10:00:{m:02}.{n:03}Z")

    history = MemoryHistory(max_bytes=1 << 40)
    held = _traced_growth(fill, history)
    assert 0.8 <= held / history.bytes <= 1.25, (held, history.bytes)


def test_the_cap_bounds_what_the_process_holds() -> None:
    """The attack: one message in each of 200,000 rooms, under a 5 MB cap. The memory held
    stays within 1.5x the cap (with only the texts counted, the process grew by 112 MB)."""
    cap = 5_000_000
    history = MemoryHistory(max_bytes=cap)
    held = _traced_growth(_rooms_of_one(200_000), history)
    assert history.bytes <= cap
    assert held <= 1.5 * cap, held
    assert history.rooms() < 200_000  # the idlest were forgotten


# ------------------------------------------------------------------------ over the wire


async def history(peer: Peer, **request: Any) -> Any:
    return await peer.ask(action="history", **request)


async def test_history_of_the_current_room_and_of_another(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.join("Lounge")
    sent = [await alice.ask(action="chat_message", message=f"m{i}") for i in range(3)]
    reply = await history(bob, room="Lounge")
    assert reply == {
        "action": "history",
        "success": True,
        "room": "Lounge",
        "messages": [
            {"id": s["id"], "time": s["time"], "user": alice.nick, "message": f"m{i}"}
            for i, s in enumerate(sent)
        ],
        "complete": True,
    }
    assert await history(bob) == {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [],
        "complete": True,
    }
    after = await history(bob, room="Lounge", after=sent[0]["id"], limit=1)
    assert (texts(after["messages"]), after["complete"]) == (["m2"], False)


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # a burst, on purpose
async def test_history_defaults_to_fifty(connect: Connect) -> None:
    alice = await connect()
    for i in range(60):
        await alice.send(action="chat_message", message=f"m{i}")
    for _ in range(60):
        await alice.reply()
    reply = await history(alice)
    assert texts(reply["messages"]) == [f"m{i}" for i in range(10, 60)]
    assert reply["complete"] is False


@pytest.mark.parametrize(
    ("request_fields", "text"),
    [
        ({"room": "ab"}, "Room name must be a string and between 3-20 chars."),
        ({"room": 5}, "Room name must be a string and between 3-20 chars."),
        ({"room": "bad\x1bname"}, "Room name contains characters that are not allowed."),
        ({"limit": 0}, "Limit must be an integer between 1 and 100."),
        ({"limit": 101}, "Limit must be an integer between 1 and 100."),
        ({"limit": "5"}, "Limit must be an integer between 1 and 100."),
        ({"limit": 5.0}, "Limit must be an integer between 1 and 100."),
        ({"limit": True}, "Limit must be an integer between 1 and 100."),
        ({"after": ""}, "After must be a message id."),
        ({"after": 5}, "After must be a message id."),
        ({"after": ["x"]}, "After must be a message id."),
        ({"before": ""}, "Before must be a message id."),
        ({"before": 7}, "Before must be a message id."),
        ({"before": None, "after": 7}, "After must be a message id."),
    ],
)
async def test_history_refusals(
    connect: Connect, request_fields: dict[str, Any], text: str
) -> None:
    alice = await connect()
    reply = await history(alice, **request_fields)
    assert reply == {"action": "history", "success": False, "message": text}


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # a burst, on purpose
async def test_paging_back_over_a_socket(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    for i in range(130):
        await alice.send(action="chat_message", message=f"m{i}")
    for _ in range(130):
        await alice.reply()
    newest = await history(bob)
    older = await history(bob, before=newest["messages"][0]["id"])
    assert (texts(older["messages"]), older["complete"]) == ([f"m{i}" for i in range(30, 80)], True)
    assert await history(bob, before=older["messages"][0]["id"]) == {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [],
        "complete": True,
    }
    between = await history(
        bob, after=older["messages"][0]["id"], before=newest["messages"][1]["id"], limit=100
    )
    assert (texts(between["messages"]), between["complete"]) == (
        [f"m{i}" for i in range(31, 81)],
        True,
    )


async def test_history_outlives_the_room(connect: Connect) -> None:
    alice, bob = await connect(), await connect()
    await alice.join("Brief")
    sent = await alice.ask(action="chat_message", message="anyone?")
    await alice.ws.close()
    await asyncio.sleep(0.1)
    assert (await bob.ask(action="user_list", room="Brief"))["users"] == []
    messages = (await history(bob, room="Brief"))["messages"]
    assert [m["id"] for m in messages] == [sent["id"]]


@pytest.mark.parametrize("settings", [Settings(history_ttl=0.3)])
async def test_history_expires_after_the_rooms_last_message(connect: Connect) -> None:
    alice = await connect()
    await alice.ask(action="chat_message", message="fleeting")
    assert len((await history(alice))["messages"]) == 1
    await asyncio.sleep(0.4)
    assert await history(alice) == {
        "action": "history",
        "success": True,
        "room": "Default",
        "messages": [],
        "complete": True,
    }


@pytest.mark.parametrize("settings", [Settings(history=2)])
async def test_history_keeps_the_configured_count(connect: Connect) -> None:
    alice = await connect()
    for text in ("one", "two", "three"):
        await alice.ask(action="chat_message", message=text)
    assert texts((await history(alice))["messages"]) == ["two", "three"]


@pytest.mark.parametrize("settings", [Settings(history_max_bytes=1800)])  # two such rooms
async def test_history_memory_cap(connect: Connect) -> None:
    alice = await connect()
    for room in ("Older", "Newer"):
        await alice.join(room)
        await alice.ask(action="chat_message", message="x" * 150)
    await alice.join("Newest")
    await alice.ask(action="chat_message", message="x" * 150)
    assert (await history(alice, room="Older"))["messages"] == []
    assert len((await history(alice, room="Newest"))["messages"]) == 1


async def test_ids_are_not_reused_after_a_restart(
    server_process: Callable[..., ServerProcess],
) -> None:
    ids: list[str] = []
    last = ""
    for _ in range(2):
        server = server_process()
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as ws:
            await ws.receive_json(timeout=5)
            if last:  # the new server does not know the old id: maybe something is missing
                await ws.send_json({"action": "history", "after": last})
                reply = await ws.receive_json(timeout=5)
                assert (reply["messages"], reply["complete"]) == ([], False)
            for i in range(3):
                await ws.send_json({"action": "chat_message", "message": f"m{i}"})
                ids.append((await ws.receive_json(timeout=5))["id"])
            last = ids[-1]
        server.stop()
    assert len(set(ids)) == 6


# ------------------------------------------------------------------------ with Redis


async def test_history_across_nodes_with_one_id_per_message(node: StartNode) -> None:
    one, two = await node(), await node()
    alice, bob = await open_peer(one), await open_peer(two)
    await bob.drain()
    sent = await alice.ask(action="chat_message", message="hello from one")
    received = await bob.recv()
    assert stamped(received) == {
        "action": "chat_message",
        "message": "hello from one",
        "user": alice.nick,
    }
    assert (received["id"], received["time"]) == (sent["id"], sent["time"])
    reply = await history(bob)
    assert reply["messages"] == [
        {"id": sent["id"], "time": sent["time"], "user": alice.nick, "message": "hello from one"}
    ]
    more = [await bob.ask(action="chat_message", message=f"m{i}") for i in range(3)]
    after = await history(alice, after=sent["id"])
    assert [m["id"] for m in after["messages"]] == [m["id"] for m in more]
    assert after["complete"] is True
    cut = await history(alice, after=sent["id"], limit=2)
    assert (texts(cut["messages"]), cut["complete"]) == (["m1", "m2"], False)
    for unknown in ("nonsense", "abc-1-0", sent["id"].split("-")[0] + "-1-0"):
        reply = await history(alice, after=unknown)
        assert (len(reply["messages"]), reply["complete"]) == (4, False), unknown


async def test_redis_history_survives_a_node_and_not_a_lost_redis(
    node: StartNode,
    redis_server: RedisServer,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    first = await node()
    alice = await open_peer(first)
    sent = [await alice.ask(action="chat_message", message=f"m{i}") for i in range(3)]
    await first.close()  # that node is gone; Redis kept what it was told
    second = await node()
    bob = await open_peer(second)
    reply = await history(bob)
    assert ([m["id"] for m in reply["messages"]], reply["complete"]) == (
        [s["id"] for s in sent],
        True,
    )

    redis_server.stop()
    started = time.monotonic()
    assert await history(bob) == {"action": "history", "success": False, "message": UNAVAILABLE}
    assert time.monotonic() - started < 2.0
    redis_server.start()  # empty: the room's history is gone, and so is its epoch

    async def sent_again() -> bool:
        return (await bob.ask(action="chat_message", message="again"))["success"] is True

    await eventually(sent_again, 10)
    reply = await history(bob, after=sent[-1]["id"])
    assert reply["complete"] is False  # the old position no longer exists
    assert texts(reply["messages"])[-1] == "again"
    new_ids = {m["id"] for m in reply["messages"]}
    assert not new_ids & {s["id"] for s in sent}


async def test_redis_history_length_and_time_are_configurable(
    redis_server: RedisServer,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    settings = Settings(redis_url=redis_server.url, history=2, history_ttl=0.5)
    client = await aiohttp_client(create_app(many_people(settings)))
    alice = await open_peer(client)
    for text in ("one", "two", "three"):
        assert (await alice.ask(action="chat_message", message=text))["success"] is True
    assert texts((await history(alice))["messages"]) == ["two", "three"]
    await asyncio.sleep(0.7)
    assert (await history(alice))["messages"] == []
