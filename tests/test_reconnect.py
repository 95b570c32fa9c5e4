"""The terminal client that reconnects and catches up, as a real process against real servers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestClient, TestServer

from aiohttp_chat.client import backoff

from .support.checks import stamped
from .support.peers import joined_peer, next_event, say
from .support.processes import ClientProcess
from .support.proxy import TcpProxy
from .support.redis import RedisServer
from .support.servers import ServerProcess

TIMEOUT = 15.0


def test_backoff_grows_with_jitter_up_to_30_seconds() -> None:
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (50, 30.0)]:
        delays = {backoff(failures) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jitter: clients that lost one server do not return at once


async def _behind_proxy(
    server_process: Callable[..., ServerProcess],
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> tuple[ServerProcess, TcpProxy, ClientProcess]:
    """A server, a proxy in front of it, and Alice in Lounge through the proxy, reconnecting."""
    server = server_process()
    proxy = await tcp_proxy(server.port)
    url = f"ws://127.0.0.1:{proxy.port}/chat"
    client = await start_client(url, "--nick", "Alice", "--room", "Lounge", "--reconnect")
    await client.expect("*** Connected to Lounge as Alice.")
    return server, proxy, client


async def test_a_cut_network_reconnects_and_shows_exactly_what_was_missed(
    server_process: Callable[..., ServerProcess],
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    server, proxy, client = await _behind_proxy(server_process, tcp_proxy, start_client)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, server.url(), "Bob", "Lounge")
        await say(bob, "before")
        await client.expect(">>>Bob: before")

        await proxy.cut()
        left = await next_event(bob, "left")
        assert (left["user"], left["shame"]) == ("Alice", True)
        assert (await client.expect("Reconnecting…"))[-1] == (
            "*** The server closed the connection (without a close frame). Reconnecting…"
        )
        for i in range(3):
            await say(bob, f"during {i}")
        await asyncio.sleep(1.0)  # a few attempts fail against the cut network
        await proxy.restore()

        back = await next_event(bob, "joined")  # its token: back under its nick at once
        assert back == {"action": "joined", "room": "Lounge", "user": "Alice"}
        shown = await client.expect("during 2")
        assert shown[0] == "*** Reconnected: in Lounge as Alice."
        assert shown[1] == "*** Missed in Lounge while away:"
        assert [line.split("] ", 1)[1] for line in shown[2:]] == [
            f"Bob: during {i}" for i in range(3)
        ]
        await say(bob, "after")
        await client.expect(">>>Bob: after")
    code, err = await client.finish()
    assert (code, err) == (0, "")
    assert sum("during" in line for line in client.lines) == 3  # each once
    assert not any("may be missing" in line for line in client.lines)


async def test_a_connection_the_server_still_holds_is_resumed_and_the_room_hears_nothing(
    server_process: Callable[..., ServerProcess],
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    """The network goes away without the server noticing (it still holds Alice, until its
    heartbeat): the client comes back with its resume token, under its nick, at once."""
    server, proxy, client = await _behind_proxy(server_process, tcp_proxy, start_client)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, server.url(), "Bob", "Lounge")
        await proxy.cut(unnoticed=True)
        await client.expect("Reconnecting…")
        await proxy.restore()
        await client.expect("*** Reconnected: in Lounge as Alice.")
        await client.type("still here")
        message = await bob.receive_json(timeout=TIMEOUT)  # not a left, nor a joined
        assert stamped(message) == {"action": "chat_message", "message": "still here",
                                    "user": "Alice"}  # fmt: skip
        await bob.send_json({"action": "user_list"})
        users = await next_event(bob, "user_list")
        assert sorted(users["users"]) == ["Alice", "Bob"]
    assert (await client.finish()) == (0, "")


async def test_a_restarted_node_on_redis_loses_nothing(
    redis_server: RedisServer,
    server_process: Callable[..., ServerProcess],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    node = server_process("--redis-url", redis_server.url)
    other = server_process("--redis-url", redis_server.url)
    client = await start_client(node.url(), "--nick", "Alice", "--room", "Lounge", "--reconnect")
    await client.expect("*** Connected to Lounge as Alice.")
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, other.url(), "Bob", "Lounge")
        await say(bob, "before")
        await client.expect(">>>Bob: before")

        node.stop(signal.SIGTERM)
        assert (await client.expect("Reconnecting…"))[-1] == (
            "*** The server closed the connection (code 1001: Server shutdown). Reconnecting…"
        )
        await next_event(bob, "left")
        await say(bob, "while the node restarts")
        server_process("--redis-url", redis_server.url, port=node.port)

        shown = await client.expect("while the node restarts")
        assert shown[-3:] == [
            "*** Reconnected: in Lounge as Alice.",
            "*** Missed in Lounge while away:",
            shown[-1],
        ]
        assert shown[-1].endswith("] Bob: while the node restarts")
    assert (await client.finish()) == (0, "")


async def _fake_server(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    handler: Callable[[web.Request, int], Awaitable[web.StreamResponse]],
) -> tuple[str, list[int]]:
    """A /chat of our own making; `handler` gets the request and its number (from 1)."""
    attempts: list[int] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        attempts.append(len(attempts) + 1)
        return await handler(request, attempts[-1])

    app = web.Application()
    app.router.add_get("/chat", chat)
    client = await aiohttp_client(TestServer(app))
    return str(client.make_url("/chat")).replace("http", "ws", 1), attempts


async def _greet(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"action": "connecting", "room": "Default", "user": "User1"})
    return ws


async def _serve_until_closed(ws: web.WebSocketResponse) -> web.WebSocketResponse:
    async for message in ws:
        request = message.json()
        await ws.send_json({"action": request["action"], "success": True, "message": ""})
    return ws


async def test_flooding_is_final(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    async def flooding(request: web.Request, attempt: int) -> web.StreamResponse:
        ws = await _greet(request)
        await ws.receive()
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Flooding")
        return ws

    url, attempts = await _fake_server(aiohttp_client, flooding)
    client = await start_client(url, "--reconnect")
    await client.expect("*** Connected to Default as User1.")
    await client.type("hello")
    code, err = await client.finish()
    assert (code, err) == (
        1,
        "aiohttp-chat: The server closed the connection (code 1008: Flooding).\n",
    )
    assert attempts == [1]


async def test_too_slow_is_not_final(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    async def slow_once(request: web.Request, attempt: int) -> web.StreamResponse:
        ws = await _greet(request)
        if attempt == 1:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too slow")
            return ws
        return await _serve_until_closed(ws)

    url, attempts = await _fake_server(aiohttp_client, slow_once)
    client = await start_client(url, "--reconnect")
    await client.expect("(code 1008: Too slow). Reconnecting…")
    await client.expect("*** Reconnected: in Default as User1.")
    assert (await client.finish()) == (0, "")
    assert attempts == [1, 2]


async def test_a_refused_handshake_on_reconnect_is_final(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    async def then_forbidden(request: web.Request, attempt: int) -> web.StreamResponse:
        if attempt > 1:
            raise web.HTTPForbidden(text="Origin not allowed.")
        ws = await _greet(request)
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")
        return ws

    url, attempts = await _fake_server(aiohttp_client, then_forbidden)
    client = await start_client(url, "--reconnect")
    await client.expect("Reconnecting…")
    code, err = await client.exit()  # input still open: it gives up of its own accord
    assert (code, err) == (
        1,
        f"aiohttp-chat: cannot connect to {url}: the server refused this client "
        "(HTTP 403 Forbidden)\n",
    )
    assert attempts == [1, 2]


@pytest.mark.parametrize("flag", [None, "--no-reconnect"])
async def test_without_reconnecting_a_lost_connection_ends_the_client(
    server_process: Callable[..., ServerProcess],
    start_client: Callable[..., Awaitable[ClientProcess]],
    flag: str | None,
) -> None:
    server = server_process()
    client = await start_client(server.url(), *([flag] if flag else []))  # piped: off by default
    await client.expect("*** Connected to Default as")
    server.stop(signal.SIGTERM)
    code, err = await client.finish()
    assert (code, err) == (
        1,
        "aiohttp-chat: The server closed the connection (code 1001: Server shutdown).\n",
    )
    assert not any("Reconnecting" in line for line in client.lines)


async def test_against_the_original_server_a_piped_client_ends_in_seconds(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    """The original greets the whole room with `join`, never answers a successful
    join_room, and knows no history."""

    async def original(request: web.Request, attempt: int) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"action": "join", "room": "Default", "user": "User42"})
        async for message in ws:
            request_body = message.json()
            action = request_body["action"]
            if action == "join_room":
                continue  # no reply on success
            if action not in ("set_nick", "chat_message", "user_list"):
                await ws.send_json({"action": action, "success": False, "message": "Not allowed."})
                continue
            reply = {"action": action, "success": True, "message": request_body.get("message", "")}
            await ws.send_json(reply)
        return ws

    url, _ = await _fake_server(aiohttp_client, original)
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = await start_client(url, "--nick", "Old", "--room", "Lounge")
    for line in ("hello", "/history"):
        await client.type(line)
    refused = "aiohttp-chat: the server refused 1 line (shown above with !!!)\n"
    assert (await client.finish()) == (1, refused)  # /history: piped, a refusal fails it
    assert loop.time() - started < 8
    lines = client.lines
    assert "*** User42 joined Default" in lines  # the original's greeting, as a join
    assert ">>>Old: hello" in lines
    assert "!!! /history: Not allowed." in lines  # asked for by the user: said
    assert not any(line.startswith("???") for line in lines)


async def test_a_nick_taken_meanwhile_is_said_and_the_room_is_kept(
    server_process: Callable[..., ServerProcess],
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    server, proxy, client = await _behind_proxy(server_process, tcp_proxy, start_client)
    await proxy.cut()
    await client.expect("Reconnecting…")
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(0.2)  # the server has seen Alice vanish
        usurper = await joined_peer(session, server.url(), "Alice", "Lounge")
        await proxy.restore()
        shown = await client.expect("*** Reconnected")
        assert shown[-2:] == [
            "!!! /nick Alice: Name already in use.",
            shown[-1],
        ]
        assert shown[-1].startswith("*** Reconnected: in Lounge as User")
        joined = await next_event(usurper, "joined")
        assert joined["room"] == "Lounge" and joined["user"].startswith("User")
    assert (await client.finish()) == (0, "")
