"""The chat page in rooms of thousands (protocol 1.2, `presence.py`): a big room's member
list is its first page, with the room's count; a quiet room's list follows the refresh."""

from __future__ import annotations

import aiohttp
from playwright.async_api import expect

from .support.pages import OpenPage, Serve, chat_url
from .support.peers import TIMEOUT, joined_peer, next_event
from .test_presence import long_name

KEEPALIVE_MS = 30_000  # connection.js's KEEPALIVE: the member list is asked for again then


async def test_a_big_rooms_member_list_says_how_many_it_has(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0, max_connections_per_ip=0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        crowd = []  # held: a WebSocket nobody holds is closed
        for index in range(800):  # 20 four-byte characters each: two pages, cut by bytes
            url = f"{chat_url(origin)}?room=Stadium&nick={long_name(index)}"
            crowd.append(await session.ws_connect(url))
            await crowd[-1].receive_json(timeout=TIMEOUT)
        page = await open_page(origin)
        await page.join("Alice", "Stadium")
        await crowd[0].send_json({"action": "user_list", "room": "Stadium"})
        first = await next_event(crowd[0], "user_list")
        assert first["count"] == 801 and "next" in first
        shown = len(first["users"])
        await expect(page.page.locator("#members-toggle")).to_have_text("Members (801)")
        await expect(page.page.locator("#members-shown")).to_have_text(
            f"801 members, showing {shown}"
        )
        await expect(page.member_list).to_have_count(shown)
        assert await page.members() == first["users"]  # "Alice" sorts first: she is listed
        await page.type("/users")
        await page.expect_line(f"… and {801 - shown} more (801 in all)")


async def test_a_quiet_rooms_member_list_changes_by_its_refresh(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0, announce_limit=2)
    page = await open_page(origin)
    await page.page.clock.install()  # the keepalive's timer, once connected, is the test's
    await page.join("Alice", "Lounge")
    await expect(page.page.locator("#members-shown")).to_be_hidden()  # a small room: all
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")  # at 2: quiet
        await bob.send_json({"action": "chat_message", "message": "hi"})
        await page.expect_line("hi")  # it came after Bob's arrival, which was not told
        assert "Bob joined Lounge" not in await page.lines()
        assert await page.members() == ["Alice"]
        await page.page.clock.fast_forward(KEEPALIVE_MS + 1000)
        await expect(page.member_list).to_have_count(2)
        assert await page.members() == ["Alice", "Bob"]
        await bob.close()
