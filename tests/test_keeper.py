"""The keeper when Redis stalls or a node is cut off: nobody is reported gone who stayed,
a node that was reaped tells the rooms again, and no polite client pays for Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiohttp_chat.cluster.keeper import LEASE_SECONDS, RENEW_SECONDS
from aiohttp_chat.protocol import RATE_LIMITED

from .support.peers import Peer, open_peer
from .support.proxy import TcpProxy
from .support.redis import RedisServer
from .support.servers import StartNode

STALL = LEASE_SECONDS + 1  # longer than a lease: every lease runs out meanwhile


@pytest.fixture
def redis_server(each_redis: RedisServer) -> RedisServer:
    return each_redis


async def _events(peer: Peer, seconds: float) -> list[Any]:
    """What `peer` heard in `seconds`."""
    heard: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        with contextlib.suppress(TimeoutError):  # (`recv` gives up after a few seconds too)
            heard.append(await asyncio.wait_for(peer.recv(), left))
    return heard


async def test_a_redis_stall_reports_nobody_gone_and_punishes_no_polite_client(
    node: StartNode, redis_server: RedisServer
) -> None:
    """Redis stopped for longer than a lease, then back: every lease ran out meanwhile, yet
    no node reaps another for it, and a sender within the rate limit (6.7 a second, under 10)
    is never refused nor closed, though its requests waited on Redis the whole time."""
    one, two = await node(rate_limit=10), await node(rate_limit=10)  # the default rate
    stayers = [await open_peer(one) for _ in range(3)]
    watcher = await open_peer(two)
    for peer in (*stayers, watcher):
        await peer.join("Lounge")
    await watcher.drain()
    sender, replies = stayers[0], []

    async def send_politely() -> None:  # open loop: at its pace, whatever the server does
        for n in range(int((STALL + 6) * 6.7)):
            await sender.send(action="chat_message", message=f"m{n}")
            await asyncio.sleep(0.15)

    async def read_replies() -> None:
        while True:
            replies.append(await sender.reply())

    reading = asyncio.create_task(read_replies())
    sending = asyncio.create_task(send_politely())
    await asyncio.sleep(1)
    redis_server.pause()
    await asyncio.sleep(STALL)
    redis_server.resume()
    heard = await _events(watcher, LEASE_SECONDS + 2 * RENEW_SECONDS)
    await sending
    await asyncio.sleep(2)
    reading.cancel()
    assert not [event for event in heard if event.get("action") == "left"], heard
    reply = await watcher.ask(action="user_list", room="Lounge")
    assert set(reply["users"]) == {peer.nick for peer in (*stayers, watcher)}
    assert not [r for r in replies if r.get("message") == RATE_LIMITED], "refused"
    assert not sender.ws.closed
    assert sum(r["success"] for r in replies) > 0.5 * len(replies)  # most went through


# A Redis Cluster's clients follow its nodes' own addresses, so a proxy cannot stand between
# a node and a cluster: the tests that cut one node off use one Redis.
one_redis_only = pytest.mark.parametrize("each_redis", ["one Redis"], indirect=True)


async def _one_behind_a_proxy(
    node: StartNode, redis_server: RedisServer, tcp_proxy: Callable[[int], Awaitable[TcpProxy]]
) -> tuple[TcpProxy, Peer, Peer]:
    """A node that reaches Redis through a proxy the test can cut, one that does not, and a
    member of Lounge on each (the first's, the watcher); the proxy and both."""
    proxy = await tcp_proxy(redis_server.port)
    one = await node(f"redis://127.0.0.1:{proxy.port}/0")
    two = await node()
    behind, watcher = await open_peer(one), await open_peer(two)
    for peer in (behind, watcher):
        await peer.join("Lounge")
    await watcher.drain()
    return proxy, behind, watcher


@one_redis_only
async def test_after_a_stall_a_node_waits_a_lease_of_its_own_before_reaping(
    node: StartNode,
    redis_server: RedisServer,
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    """Redis stalls, and node one is cut off from it as well and stays so. When Redis is
    back, node two may not judge one by a lease that ran out while it could not see either;
    it reaps one only after a whole lease of its own without a failure."""
    proxy, gone, watcher = await _one_behind_a_proxy(node, redis_server, tcp_proxy)
    redis_server.pause()
    await proxy.cut()
    await asyncio.sleep(STALL)
    redis_server.resume()
    early = await _events(watcher, LEASE_SECONDS - RENEW_SECONDS)
    assert not [event for event in early if event.get("action") == "left"], early
    late = await _events(watcher, 3 * RENEW_SECONDS)
    assert {"action": "left", "room": "Lounge", "user": gone.nick, "shame": True} in late


@one_redis_only
async def test_a_node_reaped_while_cut_off_announces_its_members_again(
    node: StartNode,
    redis_server: RedisServer,
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    """Node one loses Redis for longer than its lease while node two does not: two rightly
    reaps one's members (its room hears them leave), and once one is back it tells the
    room they are there after all."""
    proxy, stayer, watcher = await _one_behind_a_proxy(node, redis_server, tcp_proxy)
    await proxy.cut()
    cut_off = await _events(watcher, LEASE_SECONDS + 3 * RENEW_SECONDS)
    assert {"action": "left", "room": "Lounge", "user": stayer.nick, "shame": True} in cut_off
    await proxy.restore()
    back = await _events(watcher, 3 * RENEW_SECONDS)
    assert {"action": "joined", "room": "Lounge", "user": stayer.nick} in back
    reply = await watcher.ask(action="user_list", room="Lounge")
    assert set(reply["users"]) == {stayer.nick, watcher.nick}
    await stayer.ask(action="chat_message", message="still here")
    while (message := await watcher.recv())["action"] != "chat_message":
        pass
    assert message["message"] == "still here"


@one_redis_only
async def test_a_reaped_node_in_a_quiet_room_is_announced_as_any_departure_would_be(
    node: StartNode,
    redis_server: RedisServer,
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    """With `--announce-limit 3`, node one's three members of Lounge (four with the
    watcher) are reaped one by one: leaving rooms of 4 and 3 is quiet, of 2 is heard. Once
    back, they are announced again by the same rule: at 2 heard, at 3 and 4 not."""
    proxy = await tcp_proxy(redis_server.port)
    one = await node(f"redis://127.0.0.1:{proxy.port}/0", announce_limit=3)
    two = await node(announce_limit=3)
    watcher = await open_peer(two)
    await watcher.join("Lounge")
    members = [await open_peer(one) for _ in range(3)]
    for peer in members:
        await peer.join("Lounge")
    await proxy.cut()
    cut_off = await _events(watcher, LEASE_SECONDS + 3 * RENEW_SECONDS)
    left = [event for event in cut_off if event.get("action") == "left"]
    assert len(left) == 1 and left[0]["shame"] is True, cut_off  # the last one reaped
    await proxy.restore()
    back = await _events(watcher, 3 * RENEW_SECONDS)
    joined = [event for event in back if event.get("action") == "joined"]
    assert len(joined) == 1, back  # the first one registered again
    reply = await watcher.ask(action="user_list", room="Lounge")
    assert set(reply["users"]) == {watcher.nick, *(peer.nick for peer in members)}
