"""The limits: rules without sockets, then the rate limit, caps and Origin on a real server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from aiohttp_chat import limits
from aiohttp_chat.limits import (
    ROOM_CHANGE_BURST,
    TOO_MANY_FROM_ADDRESS,
    Admission,
    RateLimit,
    address_key,
    same_host,
)
from aiohttp_chat.server import ADMISSION, Settings, create_app

from .support.peers import Connect, open_peer
from .support.processes import run_process
from .support.prometheus import scrape, value
from .support.servers import ServerProcess

SLOW_DOWN = "Too many requests, slow down."


# ------------------------------------------------------------------------ the rules


def test_a_burst_then_the_rate() -> None:
    limit = RateLimit(rate=10, burst=20, now=0.0)
    assert all(limit.allow(0.0) for _ in range(20))
    assert not limit.allow(0.0)
    assert limit.allow(0.1)  # one token back after 1/10 s
    assert not limit.allow(0.1)
    assert all(limit.allow(10.0) for _ in range(20))  # full again, and no more than full
    assert not limit.allow(10.0)


def test_flooding_is_more_than_20_refusals_within_10_seconds() -> None:
    limit = RateLimit(rate=0.01, burst=1, now=0.0)
    limit.allow(0.0)
    for second in range(20):
        assert not limit.allow(second * 0.4)  # refused: 20 times in 8 s
    assert not limit.flooding()
    assert not limit.allow(8.5)
    assert limit.flooding()
    slow = RateLimit(rate=0.01, burst=1, now=0.0)
    slow.allow(0.0)
    for second in range(30):  # refused, but only once a second: not a flood
        slow.allow(second * 1.0)
    assert not slow.flooding()


def test_client_address_behind_trusted_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]
    admission = Admission(trusted_proxies=proxies)
    assert admission.client_address("127.0.0.1", ["203.0.113.7"]) == "203.0.113.7"
    assert admission.client_address("127.0.0.1", ["1.1.1.1, 203.0.113.7, 10.1.2.3"]) == (
        "203.0.113.7"  # the right-most that is not itself a proxy; 1.1.1.1 may be spoofed
    )
    assert admission.client_address("127.0.0.1", ["10.0.0.1, 10.0.0.2"]) == "10.0.0.1"
    assert admission.client_address("198.51.100.1", ["203.0.113.7"]) == "198.51.100.1"  # spoofed
    assert admission.client_address("127.0.0.1", []) == "127.0.0.1"
    assert Admission().client_address("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"
    # The client's own line first, then the one the proxy added: one list, read from the right.
    assert admission.client_address("127.0.0.1", ["9.9.9.9", "8.8.8.8"]) == "8.8.8.8"
    assert admission.client_address("127.0.0.1", ["9.9.9.9", "8.8.8.8, 10.0.0.1"]) == "8.8.8.8"


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://chat.example:8080", "chat.example:8080", True),
        ("https://chat.example", "chat.example", True),
        ("https://chat.example", "chat.example:443", True),
        ("HTTPS://Chat.Example", "chat.example", True),
        ("http://chat.example", "chat.example:8080", False),
        ("https://evil.example", "chat.example", False),
        ("null", "chat.example", False),
        ("not a url", "chat.example", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_host(origin, host) is same


def test_caps_count_open_connections_only() -> None:
    admission = Admission(max_connections=3, max_per_address=2)
    for _ in range(2):
        assert admission.refusal("a", None, None) is None
        admission.opened("a")
    assert admission.refusal("a", None, None) == (
        429,
        "Too many connections from your address.",
        {},
        "per_address",
    )
    admission.opened("b")
    assert admission.refusal("c", None, None) == (
        503,
        "Server full, try again later.",
        {"Retry-After": "5"},
        "full",
    )
    admission.closed("a")
    assert admission.refusal("a", None, None) is None
    admission.closed("a")
    admission.closed("b")
    assert (admission.open, admission.by_address) == (0, {})


def test_an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4() -> None:
    """One subscriber holds a whole /64: its 2**64 addresses share one cap and budget."""
    admission = Admission(max_per_address=2, room_changes=60)
    admission.opened("2001:db8:1:2::1")
    admission.opened("2001:db8:1:2:ffff::9")
    assert admission.refusal("2001:db8:1:2::77", None, None) == TOO_MANY_FROM_ADDRESS
    assert admission.refusal("2001:db8:1:3::1", None, None) is None  # the next /64
    admission.opened("::ffff:192.0.2.1")
    admission.opened("192.0.2.1")
    assert admission.refusal("192.0.2.1", None, None) == TOO_MANY_FROM_ADDRESS
    assert admission.by_address == {"2001:db8:1:2::/64": 2, "192.0.2.1": 2}
    for _ in range(ROOM_CHANGE_BURST):
        assert admission.change_room(f"2001:db8:9:9::{_ + 1}", 0.0)
    assert not admission.change_room("2001:db8:9:9::abcd", 0.0)  # one budget for the /64
    for address in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "::ffff:192.0.2.1", "192.0.2.1"):
        admission.closed(address)
    assert admission.by_address == {}
    assert address_key("unknown") == "unknown" and address_key("fe80::1%eth0") == "fe80::/64"


def test_time_spent_serving_a_request_is_credited_not_charged() -> None:
    """A request that waited on Redis for 10 s: the 67 the client sent meanwhile, at 6.7 a
    second, are read back to back when Redis is back, and none is refused."""
    limit = RateLimit(rate=10, burst=20, now=0.0)
    assert limit.allow(0.0)
    limit.served(10.0)  # answered 10 s later
    assert all(limit.allow(10.0 + n * 1e-5) for n in range(67))
    assert not limit.flooding()
    stale = RateLimit(rate=10, burst=20, now=0.0)
    stale.allow(0.0)
    stale.served(10.0)
    assert stale.allow(12.0)  # credit for the queue, gone once nothing queued is left
    assert sum(stale.allow(12.0) for _ in range(40)) == 19  # the burst, no more


def test_room_changes_have_a_budget_per_address() -> None:
    admission = Admission(room_changes=60)
    assert all(admission.change_room("a", 0.0) for _ in range(10))  # 10 at once
    assert not admission.change_room("a", 0.0)
    assert admission.change_room("b", 0.0)  # another address: its own budget
    assert admission.change_room("a", 1.0)  # one a second
    assert not admission.change_room("a", 1.0)
    assert admission.refusal("a", None, None, enters_room=True, now=1.0) == limits.ROOM_CHANGES
    assert admission.refusal("a", None, None, now=1.0) is None  # /echo enters no room
    assert all(Admission().change_room("a", 0.0) for _ in range(100))  # 0: no budget


def test_a_budget_is_forgotten_once_refilled_and_its_address_gone() -> None:
    admission = Admission(room_changes=60)
    admission.opened("kept")
    for address in ("kept", "refilling", "refilled"):
        admission.change_room(address, 0.0)
    admission.change_room("refilling", 9.5)
    admission.prune(10.0)
    assert set(admission._budgets) == {"kept", "refilling"}  # a reconnect resets nothing


# ------------------------------------------------------------------------ rate limit


async def test_a_burst_within_the_limit_is_all_served(connect: Connect) -> None:
    alice = await connect()
    for i in range(20):
        await alice.send(action="chat_message", message=f"m{i}")
    replies = [await alice.reply() for _ in range(20)]
    assert all(reply["success"] for reply in replies)


async def test_a_flood_is_refused_then_closed_and_the_polite_are_unaffected(
    connect: Connect, client: TestClient[Any, Any]
) -> None:
    polite, flooder = await connect(), await connect()
    await polite.recv()  # flooder joined
    for i in range(60):  # as fast as it can, with any kind of frame
        if i % 3 == 0:
            await flooder.ws.send_bytes(b"\x00")
        elif i % 3 == 1:
            await flooder.ws.send_str("not json")
        else:
            await flooder.send(action="chat_message", message=f"flood {i}")
    replies = []
    while (message := await flooder.ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
        replies.append(message.json())
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert (message.data, message.extra) == (1008, "Flooding")
    refused = [reply for reply in replies if reply.get("message") == SLOW_DOWN]
    assert len(refused) == 21 - 1  # the 21st refusal closed it instead
    assert {reply["action"] for reply in refused} <= {None, "chat_message"}
    assert all(reply["success"] is False for reply in refused)
    assert "chat_message" in {reply["action"] for reply in refused}  # named as sent

    chats = 0
    while (seen := await polite.recv())["action"] == "chat_message":
        chats += 1
    assert seen == {"action": "left", "room": "Default", "user": flooder.nick, "shame": True}
    assert chats <= 7  # only what the bucket let through (20 of 60 frames) reached the room
    for _ in range(15):  # the polite client, at a polite pace, is never refused
        assert (await polite.ask(action="chat_message", message="hi"))["success"] is True
        await asyncio.sleep(0.1)
    assert client.app[ADMISSION].open == 1


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])
async def test_zero_turns_the_rate_limit_off(connect: Connect) -> None:
    alice = await connect()
    for i in range(200):
        await alice.send(action="chat_message", message=f"m{i}")
    assert all([(await alice.reply())["success"] for _ in range(200)])


async def test_echo_is_rate_limited_too(client: TestClient[Any, Any]) -> None:
    ws = await client.ws_connect("/echo")
    for i in range(30):
        await ws.send_json(i)
    replies = [await ws.receive_json(timeout=5) for _ in range(30)]
    assert replies[:20] == [{"echo": i} for i in range(20)]
    assert replies[20:] == [{"success": False, "message": SLOW_DOWN}] * 10
    await ws.close()


# ------------------------------------------------------------------------ caps


async def test_the_257th_connection_from_one_address_gets_429_until_one_closes(
    client: TestClient[Any, Any],
) -> None:
    url = client.make_url("/echo")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [await session.ws_connect(url) for _ in range(256)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url)
        assert refused.value.status == 429
        response = await client.get("/chat", headers={"Upgrade": "websocket", **_HANDSHAKE})
        assert (response.status, await response.text()) == (
            429,
            "Too many connections from your address.",
        )
        await sockets.pop().close()
        await asyncio.sleep(0.05)
        peer = await open_peer(client)  # freed as it closed
        await peer.ws.close()
        for ws in sockets:
            await ws.close()


_HANDSHAKE = {
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.mark.parametrize("settings", [Settings(max_connections=3)])
async def test_a_full_process_answers_503_with_retry_after(client: TestClient[Any, Any]) -> None:
    peers = [await open_peer(client) for _ in range(3)]
    response = await client.get("/chat", headers={"Upgrade": "websocket", **_HANDSHAKE})
    assert (response.status, response.headers["Retry-After"], await response.text()) == (
        503,
        "5",
        "Server full, try again later.",
    )
    await peers[0].ws.close()
    await asyncio.sleep(0.05)
    peers.append(await open_peer(client))
    for peer in peers[1:]:
        await peer.ws.close()


@pytest.mark.parametrize(
    "settings",
    [
        Settings(
            max_connections_per_ip=1,
            trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),),
        )
    ],
)
async def test_forwarded_for_counts_from_a_trusted_proxy(client: TestClient[Any, Any]) -> None:
    one = await open_peer(client, headers={"X-Forwarded-For": "203.0.113.1"})
    two = await open_peer(client, headers={"X-Forwarded-For": "203.0.113.2"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/chat", headers={"X-Forwarded-For": "203.0.113.1"})
    assert refused.value.status == 429
    assert client.app[ADMISSION].by_address == {"203.0.113.1": 1, "203.0.113.2": 1}
    for peer in (one, two):
        await peer.ws.close()


@pytest.mark.parametrize(
    "settings",
    [Settings(max_connections_per_ip=1, trusted_proxies=(ipaddress.ip_network("127.0.0.1"),))],
)
async def test_a_forwarded_for_line_of_the_clients_own_does_not_count(
    client: TestClient[Any, Any],
) -> None:
    """A proxy that adds its own `X-Forwarded-For` line after the client's: the client said
    9.9.9.9 in its line, the proxy says 203.0.113.1 in the last one, and that is the one."""

    def lines(own: str, proxy: str) -> CIMultiDict[str]:
        return CIMultiDict([("X-Forwarded-For", own), ("X-Forwarded-For", proxy)])

    one = await open_peer(client, headers=lines("9.9.9.9", "203.0.113.1"))
    for own in ("9.9.9.9", "198.51.100.2"):  # whatever its own line says, it is 203.0.113.1
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/chat", headers=lines(own, "203.0.113.1"))
        assert refused.value.status == 429
    assert client.app[ADMISSION].by_address == {"203.0.113.1": 1}
    metrics = await client.get("/metrics", headers=lines("127.0.0.1", "8.8.8.8"))
    assert metrics.status == 403  # /metrics is for loopback: the proxy said 8.8.8.8
    await one.ws.close()


@pytest.mark.parametrize("settings", [Settings(max_connections_per_ip=1)])
async def test_forwarded_for_from_anyone_else_is_ignored(client: TestClient[Any, Any]) -> None:
    one = await open_peer(client, headers={"X-Forwarded-For": "203.0.113.1"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # spoofing does not help
        await client.ws_connect("/chat", headers={"X-Forwarded-For": "203.0.113.2"})
    assert refused.value.status == 429
    assert client.app[ADMISSION].by_address == {"127.0.0.1": 1}
    await one.ws.close()


@pytest.mark.parametrize("settings", [Settings(room_changes=6, rate_limit=0)])
async def test_room_changes_past_the_budget_are_refused_with_their_own_text(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    alice = await connect()  # entering Default: the first change of 10
    for n in range(9):
        await alice.join(f"Room {n}")
    assert await alice.ask(action="join_room", room="One more") == {
        "action": "join_room",
        "success": False,
        "message": "Too many room changes, slow down.",
    }
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/chat")  # a new connection enters a room too
    assert refused.value.status == 429
    echo = await client.ws_connect("/echo")  # which /echo does not
    samples = await scrape(client)
    assert value(samples, "requests_total", action="join_room", outcome="rate_limited") == 1
    assert value(samples, "handshakes_refused_total", reason="room_changes") == 1
    await echo.close()


async def test_a_churn_of_polite_clients_cannot_drown_a_room(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """20 clients from one address, each within its request rate, entering and leaving rooms
    as fast as it may: a member of the room, elsewhere, hears at most the address's budget."""
    client = await aiohttp_client(create_app(Settings()))  # every limit at its default
    url = client.make_url("/chat")
    elsewhere = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=elsewhere) as session:
        watcher = await session.ws_connect(url)
        await watcher.receive_json(timeout=5)
        await watcher.send_json({"action": "join_room", "room": "Lounge"})
        await watcher.receive_json(timeout=5)
        churners = []
        for _ in range(20):
            try:
                churners.append(await client.ws_connect("/chat"))
            except aiohttp.WSServerHandshakeError as refused:
                assert refused.status == 429  # the budget: 10 at once
        assert len(churners) == 10

        async def churn(ws: Any) -> None:
            for n in range(30):  # 10 a second: the request rate
                await ws.send_json({"action": "join_room", "room": ("Lounge", "Kitchen")[n % 2]})
                await asyncio.sleep(0.1)

        heard = 0

        async def listen() -> None:
            nonlocal heard
            while True:
                message = await watcher.receive_json()
                heard += message["action"] in ("joined", "left")

        listening = asyncio.create_task(listen())
        await asyncio.gather(*(churn(ws) for ws in churners))
        await asyncio.sleep(0.2)
        listening.cancel()
        # In 3 s the address had no room change left but those refilling, one a second.
        assert heard <= 2 * 4, heard
        for ws in churners:
            await ws.close()
        await watcher.close()


# ------------------------------------------------------------------------ Origin


@pytest.mark.parametrize(
    ("allowed", "origin", "accepted"),
    [
        ((), None, True),
        ((), "same", True),
        ((), "https://evil.example", False),
        ((), "null", False),
        (("https://friend.example",), "https://friend.example", True),
        (("https://friend.example",), "https://Friend.example/", True),
        (("https://friend.example",), "https://evil.example", False),
        (("*",), "https://evil.example", True),
    ],
)
async def test_origins(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    allowed: tuple[str, ...],
    origin: str | None,
    accepted: bool,
) -> None:
    client = await aiohttp_client(create_app(Settings(allowed_origins=allowed)))
    headers = {}
    if origin == "same":
        headers["Origin"] = f"http://{client.host}:{client.port}"
    elif origin is not None:
        headers["Origin"] = origin
    if accepted:
        peer = await open_peer(client, headers=headers)
        await peer.ws.close()
        return
    response = await client.get("/chat", headers={"Upgrade": "websocket", **_HANDSHAKE, **headers})
    assert (response.status, await response.text()) == (403, "Origin not allowed.")
    assert client.app[ADMISSION].open == 0


@pytest.mark.parametrize(
    ("host", "local", "ours"),
    [
        ("localhost:8080", None, True),
        ("LOCALHOST", None, True),
        ("chat.localhost:8080", None, True),  # *.localhost stays on the machine
        ("127.0.0.1:8080", None, True),
        ("127.1.2.3:8080", None, True),
        ("[::1]:8080", None, True),
        ("192.168.1.5:8080", "192.168.1.5", True),  # the address it came in on
        ("192.168.1.5:8080", "::ffff:192.168.1.5", True),  # the same, on a dual-stack socket
        ("192.168.1.5:8080", "10.0.0.1", False),
        ("chat.example.com", None, True),  # --server-name
        ("Chat.Example.Com.:443", None, True),
        ("evil.example:8080", "127.0.0.1", False),  # a rebinding page: a name not given
        ("localhost.evil.example", None, False),
        ("", None, False),
        ("[not an address", None, False),
    ],
)
def test_own_host(host: str, local: str | None, ours: bool) -> None:
    admission = Admission(server_names=["chat.example.com"])
    assert admission.own_host(host, local) is ours


async def test_a_dns_rebinding_page_is_refused_and_a_named_deployment_works(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """The page of evil.example whose name now points at this server: its Origin equals the
    Host it sends, and that alone no longer makes it the server's own page."""
    rebinding = {"Origin": "http://evil.example:8080", "Host": "evil.example:8080"}
    client = await aiohttp_client(create_app(Settings()))
    response = await client.get(
        "/chat", headers={"Upgrade": "websocket", **_HANDSHAKE, **rebinding}
    )
    assert (response.status, await response.text()) == (403, "Origin not allowed.")
    named = await aiohttp_client(create_app(Settings(server_names=("chat.example.com",))))
    behind_a_proxy = {"Origin": "https://chat.example.com", "Host": "chat.example.com"}
    peer = await open_peer(named, headers=behind_a_proxy)
    await peer.ws.close()
    refused = await named.get("/chat", headers={"Upgrade": "websocket", **_HANDSHAKE, **rebinding})
    assert refused.status == 403
    assert value(await scrape(named), "handshakes_refused_total", reason="origin") == 1


# ------------------------------------------------------------------------ the client's view


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        (
            "--max-connections-per-ip",
            "the server takes no more connections from your address (HTTP 429 Too Many Requests)",
        ),
        ("--max-connections", "the server is full, try again later (HTTP 503 Service Unavailable)"),
    ],
)
async def test_the_client_reports_a_refusal_in_one_line(
    server_process: Callable[..., ServerProcess], limit: str, said: str
) -> None:
    server = server_process(limit, "1")
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as first:
        await first.receive_json(timeout=5)
        code, _, err = await run_process("aiohttp_chat.client", "--url", server.url(), input="")
    assert (code, err) == (1, f"aiohttp-chat: cannot connect to {server.url()}: {said}\n")


def test_a_client_can_ask_how_long_to_wait_for_its_next_request() -> None:
    bucket = RateLimit(2, 2, now=0.0)
    assert bucket.wait(0.0) == 0.0 and bucket.allow(0.0) and bucket.allow(0.0)
    assert bucket.wait(0.0) == 0.5  # one token comes back every 0.5 s
    assert bucket.wait(0.25) == 0.25
    assert bucket.wait(0.5) == 0.0 and bucket.allow(0.5)
