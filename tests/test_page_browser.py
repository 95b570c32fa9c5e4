"""The chat page in a real browser (Debian's Chromium, driven by Playwright), side by side with
terminal clients and raw WebSocket peers, against real servers."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, expect

from aiohttp_chat.client_console import More, Quit, Show, closed, parse_line

from . import screenshots
from .browser import RECONNECT_MS, ChatPage, require_chromium
from .support.checks import eventually
from .support.pages import OpenPage, Serve, chat_url
from .support.peers import joined_peer, next_event, say
from .support.processes import ClientProcess
from .support.proxy import TcpProxy
from .support.redis import RedisServer
from .support.servers import ServerProcess


async def user_list(ws: Any, room: str) -> list[str]:
    await ws.send_json({"action": "user_list", "room": room})
    reply = await next_event(ws, "user_list")
    return sorted(reply["users"])


# ------------------------------------------------------------------------ chatting


async def test_two_pages_and_a_terminal_client_chat_in_one_room(
    serve: Serve,
    open_page: OpenPage,
    start_client: Callable[..., Awaitable[ClientProcess]],
) -> None:
    origin = await serve(rate_limit=0)
    alice, bob = await open_page(origin), await open_page(origin)
    await alice.join("Alice", "Lounge")
    await bob.join("Bob", "Lounge")
    await alice.expect_line("Bob joined Lounge")  # not as User1234, then renamed
    carol = await start_client(chat_url(origin), "--nick", "Carol", "--room", "Lounge")
    await carol.expect("*** Connected to Lounge as Carol.")
    for page in (alice, bob):
        await page.expect_line("Carol joined Lounge")

    await alice.type("Hello from a browser")
    await bob.expect_line("Hello from a browser")
    await carol.expect(">>>Alice: Hello from a browser")
    await carol.type("Hello from a terminal")
    for page in (alice, bob):
        await page.expect_line("Hello from a terminal")
    assert ("Alice", "Hello from a browser") in await alice.messages()  # one's own, too
    assert not [line for line in await alice.lines() if "User" in line]

    await bob.type("/nick Robert")
    await bob.expect_line("You are now known as Robert")
    await alice.expect_line("Bob is now known as Robert")
    await carol.expect("*** Bob is now known as Robert")
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Watcher", "Lounge")
        expected = await user_list(ws, "Lounge")
        assert expected == ["Alice", "Carol", "Robert", "Watcher"]
        for page in (alice, bob):
            await expect(page.member_list).to_have_count(4)
            assert await page.members() == expected
        await ws.close()

    carol.proc.send_signal(signal.SIGKILL)  # vanishes without a close frame
    for page in (alice, bob):
        await page.expect_line("Carol left Lounge (connection lost)")
    await bob.page.close(run_before_unload=True)  # closing the tab leaves politely
    await alice.expect_line("Robert left Lounge")
    assert "Robert left Lounge (connection lost)" not in await alice.lines()
    await expect(alice.member_list).to_have_count(1)


async def test_history_on_entering_and_commands(serve: Serve, open_page: OpenPage) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        for text in ("one", "two", "three"):
            await say(ws, text)
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        await page.expect_line("Recent messages in Lounge")
        history = page.log.locator("li.message.history")
        await expect(history).to_have_count(3)
        assert await history.locator(".text").all_inner_texts() == ["one", "two", "three"]

        await page.type("/users")
        await page.expect_line("In Lounge: Bob, Alice")
        await page.type("/history 2")
        await page.expect_line("Last messages in Lounge")
        await expect(history).to_have_count(5)
        await page.type("/help")
        await page.expect_line("/history [N]")
        await page.type("//me waves")
        assert (await next_event(ws, "chat_message"))["message"] == "/me waves"
        await page.type("/join Kitchen")  # opened beside Lounge, with the same nick
        await page.expect_line("Connected to Kitchen as Alice.")
        assert page.page.url.endswith("/#Kitchen")
        assert await page.members() == ["Alice"]
        await page.type("/join Kitchen")
        await page.expect_line("You are in Kitchen already.")
        await page.type("/join Lounge")  # the page is there already: shown again, as it was
        await page.expect_line("/history [N]")
        assert page.page.url.endswith("/#Lounge")
        assert await page.members() == ["Alice", "Bob"]
        await ws.close()


async def test_a_room_in_the_url_is_joined_directly_and_the_nick_remembered(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve()
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    assert page.page.url.endswith("/#Lounge")
    await page.page.goto(origin + "/#Kitchen")  # a link to another room: opened beside
    await page.expect_line("Connected to Kitchen as Alice.")
    await page.page.reload()  # both come back, the one in the URL shown
    await page.expect_line("Connected to Kitchen as Alice.")
    rooms = page.page.locator("#my-rooms .switch")
    await expect(rooms).to_have_text(["Lounge", "Kitchen"])
    await expect(rooms.nth(1)).to_have_attribute("aria-current", "true")
    await page.page.click("#leave")  # Kitchen is left; Lounge is shown
    await page.expect_line("Connected to Lounge as Alice.")
    await expect(rooms).to_have_text(["Lounge"])
    await page.page.click("#leave")  # the last room left: the form, with what it had
    await expect(page.page.locator("#nick")).to_have_value("Alice")
    await expect(page.page.locator("#room")).to_have_value("Lounge")
    await page.page.reload()  # and nothing comes back
    await expect(page.page.locator("#join")).to_be_visible()


async def test_the_page_enters_in_one_step_and_a_room_link_asks_a_newcomer_for_a_nick(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve()
    async with aiohttp.ClientSession() as session:
        lounge = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        default = await session.ws_connect(chat_url(origin))
        await default.receive_json(timeout=5)
        page = await open_page(origin, path="/#Lounge")  # a first visit: no nick remembered
        await expect(page.page.locator("#join")).to_be_visible()
        await expect(page.page.locator("#room")).to_have_value("Lounge")
        await expect(page.page.locator("#nick")).to_be_focused()
        await page.join("Alice", "Lounge")
        assert await next_event(lounge, "joined") == {
            "action": "joined", "room": "Lounge", "user": "Alice",
        }  # fmt: skip
        await page.type("hi")
        said = await lounge.receive_json(timeout=5)  # the next thing Lounge hears: no rename
        assert (said["action"], said["user"], said["message"]) == ("chat_message", "Alice", "hi")
        await default.send_json({"action": "user_list"})
        assert (await default.receive_json(timeout=5))["action"] == "user_list"  # nothing else
        await default.close()
        await lounge.close()


async def test_the_page_resumes_a_connection_the_server_still_holds(
    serve: Serve,
    open_page: OpenPage,
    tcp_proxy: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    origin = await serve()
    proxy = await tcp_proxy(int(origin.rsplit(":", 1)[1]))
    page = await open_page(f"http://127.0.0.1:{proxy.port}")
    await page.join("Alice", "Lounge")
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await page.expect_line("Bob joined Lounge")
        async with page.outage():
            await proxy.cut(unnoticed=True)  # the server still holds Alice's connection
            await page.expect_line("Reconnecting…")
            await proxy.restore()
            await page.expect_line("Reconnected: in Lounge as Alice.", within=RECONNECT_MS)
        await page.type("back")
        message = await bob.receive_json(timeout=10)  # the first thing Bob hears: no left
        assert (message["action"], message["user"], message["message"]) == (
            "chat_message", "Alice", "back",
        )  # fmt: skip
        await bob.close()


async def test_refusals_are_shown_with_the_servers_text_next_to_their_cause(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=1, rate_burst=8)
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Alice", "Lounge")
        page = await open_page(origin)
        await page.page.fill("#nick", "Alice")
        await page.page.fill("#room", "Lounge")
        await page.page.click("#join-form button[type=submit]")
        await expect(page.page.locator("#nick-error")).to_have_text("Name already in use.")
        await expect(page.page.locator("#nick")).to_have_attribute("aria-invalid", "")
        await expect(page.page.locator("#nick")).to_be_focused()

        await page.page.fill("#room", "ab")
        await page.page.click("#join-form button[type=submit]")
        await expect(page.page.locator("#room-error")).to_have_text(
            "Room name must be a string and between 3-20 chars."
        )
        await page.join("Alicia", "Lounge")

        await page.type("/nick Alice")
        await page.expect_line("/nick Alice: Name already in use.")
        for n in range(10):  # beyond the burst: some are refused
            await page.type(f"burst {n}")
        failed = page.log.locator("li.message.failed")
        await expect(failed.first).to_contain_text("Too many requests, slow down.")
        await failed.first.locator("button").click()
        text = await failed.first.locator(".text").inner_text()
        await expect(page.page.locator("#line")).to_have_value(text)  # nothing is lost
        await ws.close()


async def test_a_look_alike_is_refused_beside_its_field_and_the_existing_room_offered(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve()
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Alice", "Lounge")
        page = await open_page(origin)
        await page.page.fill("#nick", "\u0410lice")  # a Cyrillic A
        await page.page.fill("#room", "lounge")
        await page.page.click("#join-form button[type=submit]")
        await expect(page.page.locator("#room-error")).to_have_text(
            "Room name looks like an existing room: Lounge."
        )
        offer = page.page.locator("#room-existing")
        await expect(offer).to_have_text("Join Lounge")
        await offer.click()  # Lounge it is; but there the nick is Alice's look-alike
        await expect(page.page.locator("#room-error")).to_have_text(
            "Name looks like one already in use in this room."
        )
        await expect(page.page.locator("#room")).to_have_value("Lounge")
        await expect(offer).to_be_hidden()
        await page.join("Bob", "Lounge")

        await page.type("/join default")
        await page.expect_line("/join default: Room name looks like an existing room: Default.")
        await page.log.locator("li.error button", has_text="Join Default").click()
        await page.expect_line("Connected to Default as Bob.")  # beside Lounge
        await ws.close()


async def test_a_hostile_message_is_shown_as_text_and_runs_nothing(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve()
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    hostile = [
        "<img src=x onerror=alert(1)>",
        "<script>alert(2)</script>",
        '<a href="javascript:alert(3)">click</a>',
    ]
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "<b>Eve</b>", "Lounge")
        for text in hostile:
            await say(ws, text)
        await page.expect_line(hostile[-1])
        assert await page.messages() == [("<b>Eve</b>", text) for text in hostile]
        assert await page.log.locator("img, script, a, b").count() == 0
        assert "<b>Eve</b>" in await page.members()
        await ws.close()
    await asyncio.sleep(0.2)  # let an injected handler fire, if there were one
    page.assert_fine()  # no dialog opened, no script error, no CSP violation


LINES = ["hi", "  spaced  ", "//me waves", "/nick Bob", "/nick", "/join  Kitchen ", "/join",
         "/users", "/users Lounge", "/history", "/history 5", "/history 0", "/history 101",
         "/history x", "/more", "/more 5", "/more 0", "/more x", "/rooms", "/help", "/bogus",
         "/quit", "command close", "", "   "]  # fmt: skip


async def test_the_page_reads_typed_lines_as_the_terminal_client_does(
    serve: Serve, open_page: OpenPage
) -> None:
    page = await open_page(await serve())
    parsed = await page.page.evaluate(
        "lines => import('/static/commands.js').then(m => lines.map(m.parseLine))", LINES
    )
    for line, ours in zip(LINES, parsed, strict=True):
        theirs = parse_line(line)
        if isinstance(theirs, dict):
            assert ours == {"send": theirs}, line
        elif isinstance(theirs, Show) and line == "/help":  # the page has no Ctrl-D
            assert "/history [N]" in ours["show"]
        elif isinstance(theirs, Show):
            assert ours == {"show": theirs.text}, line
        elif isinstance(theirs, More):  # which messages: the page knows its oldest shown
            assert ours == {"more": theirs.limit}, line
        elif isinstance(theirs, Quit):
            assert ours == {"quit": True}, line
        else:
            assert ours is None and theirs is None, line


CLOSES = [(1006, ""), (1001, "Server shutdown"), (1008, "Flooding"), (1008, ""),
          (1008, "Too slow"), (4001, "Resumed elsewhere"), (1011, "Internal error")]  # fmt: skip


async def test_the_page_judges_a_close_by_the_server_as_the_terminal_client_does(
    serve: Serve, open_page: OpenPage
) -> None:
    page = await open_page(await serve())
    judged = await page.page.evaluate(
        "closes => import('/static/connection.js')"
        ".then(m => closes.map(([code, reason]) => m.closing(code, reason)))",
        CLOSES,
    )
    for (code, reason), ours in zip(CLOSES, judged, strict=True):
        _, final = closed(code, reason)
        assert ours["final"] is final, (code, reason)  # retried, or the end, alike


# ------------------------------------------------------------------------ reconnecting


async def test_the_page_reconnects_after_a_server_restart(
    server_process: Callable[..., ServerProcess], open_page: OpenPage
) -> None:
    server = server_process()
    origin = f"http://127.0.0.1:{server.port}"
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    await page.type("before")
    await expect(page.log.locator("li.message.sent")).to_have_count(1)

    async with page.outage() as outage:  # its attempts while the server is down are refused
        server.stop(signal.SIGTERM)
        await page.expect_line("Connection lost (code 1001: Server shutdown). Reconnecting…")
        await expect(page.page.locator("#status")).to_contain_text("Reconnecting…")
        await page.type("while away")
        await expect(page.page.locator("#send-error")).to_contain_text("Not connected")
        await expect(page.page.locator("#line")).to_have_value("while away")  # kept
        await expect(page.page.locator("#members-stale")).to_be_visible()  # as last seen
        retry = page.page.locator("#retry")
        await expect(retry).to_be_visible()
        status = page.page.locator("#status")  # once the backoff is seconds long:
        await expect(status).to_contain_text(re.compile(r"next try in [3-9] s"), timeout=20_000)
        tried = outage.failed_attempts
        await retry.click()  # an attempt at once, not at the end of the countdown
        await eventually(lambda: _async(outage.failed_attempts > tried), 1.5)

        server_process(port=server.port)
        await page.expect_line("Reconnected: in Lounge as Alice.", within=RECONNECT_MS)
    await page.expect_connected()
    await expect(page.page.locator("#members-stale")).to_be_hidden()
    await expect(page.page.locator("#retry")).to_be_hidden()
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await page.type("after")
        assert (await next_event(ws, "chat_message"))["message"] == "after"
        await ws.close()


async def test_shift_enter_and_a_paste_make_one_message_of_several_lines(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve()
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        line = page.page.locator("#line")
        height = (await line.bounding_box() or {}).get("height", 0)
        await line.press_sequentially("one")
        await line.press("Shift+Enter")  # a line break, not a send
        await line.press_sequentially("two")
        await expect(line).to_have_value("one\ntwo")
        assert (await line.bounding_box() or {}).get("height", 0) > height  # it grew
        await line.press("Enter")
        assert (await next_event(ws, "chat_message"))["message"] == "one\ntwo"
        await expect(line).to_have_value("")
        await line.fill("pasted\nlines\nthree")  # as a paste leaves it
        await line.press("Enter")
        assert (await next_event(ws, "chat_message"))["message"] == "pasted\nlines\nthree"
        await expect(page.log.locator("li.message .text").last).to_have_text("pasted\nlines\nthree")
        await ws.close()


async def test_with_redis_the_page_catches_up_on_what_another_node_carried(
    redis_server: RedisServer,
    server_process: Callable[..., ServerProcess],
    open_page: OpenPage,
) -> None:
    a = server_process("--redis-url", redis_server.url)
    b = server_process("--redis-url", redis_server.url)
    origin_a, origin_b = (f"http://127.0.0.1:{s.port}" for s in (a, b))
    page = await open_page(origin_a)
    await page.join("Alice", "Lounge")
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin_b), "Bob", "Lounge")
        await say(ws, "before")
        await page.expect_line("before")

        missed = [f"missed {n}" for n in range(3)]
        async with page.outage():
            a.stop(signal.SIGKILL)  # node A vanishes; the page sees its connection drop
            await page.expect_line("Reconnecting…")
            for text in missed:
                await say(ws, text)
            server_process("--redis-url", redis_server.url, port=a.port)
            # Its resume token takes Alice back at once, from the dead node (whose lease has
            # not run out yet): the room heard nothing.
            await page.expect_line("Reconnected: in Lounge as Alice.", within=RECONNECT_MS)
        await page.expect_line("Missed in Lounge while away")
        await expect(page.log.locator("li.message")).to_have_count(4)
        shown = [text for _, text in await page.messages()]
        assert shown == ["before", *missed]  # each once, in order
        await page.type("back")
        assert (await next_event(ws, "chat_message"))["message"] == "back"
        assert await page.members() == await user_list(ws, "Lounge")
        await ws.close()


async def test_an_outage_excuses_only_the_browsers_report_of_the_pages_own_attempts(
    server_process: Callable[..., ServerProcess], browser: Browser
) -> None:
    """The check above is no blindfold: inside the outage a script's own console error and a
    CSP violation still count, and outside it the same refused attempt is a fault."""
    server = server_process()
    page = await ChatPage.open(browser, f"http://127.0.0.1:{server.port}")
    await page.join("Alice", "Lounge")
    elsewhere = f"ws://127.0.0.1:{server.port + 1}/chat"
    async with page.outage() as outage:
        server.stop(signal.SIGTERM)
        await page.expect_line("Reconnecting…")
        await eventually(lambda: _async(outage.failed_attempts > 0 and bool(outage.refused)), 20)
        await page.page.evaluate(
            "([own, other]) => { console.error(`WebSocket connection to '${own}' failed`);"
            " try { new WebSocket(other); } catch (e) {} }",
            [page.chat_url, elsewhere],
        )
        script_error = f"console error: WebSocket connection to '{page.chat_url}' failed"
        csp = f"CSP violation: connect-src blocked {elsewhere}"
        await eventually(lambda: _async({script_error, csp} <= {*page.problems}), 10)
        server = server_process(port=server.port)  # the outage ends as the test's do
        await page.expect_line("Reconnected: in Lounge as Alice.", within=RECONNECT_MS)
    # The refused attempts were excused; every other problem is the script's or names `elsewhere`.
    assert all(p == script_error or elsewhere in p for p in page.problems), page.problems
    page.problems.clear()

    server.stop(signal.SIGTERM)  # no outage declared this time: the same refusals are faults
    await page.expect_line("Reconnecting…")
    await eventually(lambda: _async(bool(page.problems)), 20)
    assert all(page.chat_url in problem for problem in page.problems), page.problems
    page.problems.clear()


async def _async(value: bool) -> bool:
    return value


# ------------------------------------------------------------------------ any screen


async def test_on_a_phone_nothing_overflows_and_the_input_stays_reachable(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin, viewport={"width": 360, "height": 640}, is_mobile=True)
    room = "AVeryLongRoomName_20"
    await page.join("Alice", room)
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob_with_a_long_nick", room)
        await say(ws, "x" * 500)  # one long word
        for n in range(60):
            await say(ws, f"message {n} " * 5)
        await page.expect_line("message 59")
        await ws.close()
    sizes = await page.page.evaluate(
        "({scroll: document.documentElement.scrollWidth, width: window.innerWidth})"
    )
    assert sizes["scroll"] <= sizes["width"], sizes
    line = page.page.locator("#line")
    await expect(line).to_be_in_viewport()
    await page.type("still reachable")
    await page.expect_line("still reachable")

    toggle = page.page.locator("#members-toggle")
    await expect(toggle).to_be_visible()
    await expect(page.page.locator("#members")).to_be_hidden()
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.page.locator("#members")).to_be_visible()


async def test_light_and_dark_follow_the_system(serve: Serve, open_page: OpenPage) -> None:
    origin = await serve()
    colours = {}
    for scheme in ("light", "dark"):
        page = await open_page(origin, color_scheme=scheme)
        colours[scheme] = await page.page.evaluate(
            "getComputedStyle(document.body).backgroundColor"
        )
    assert colours["light"] != colours["dark"]


async def test_controls_are_labelled_and_the_log_is_live(serve: Serve, open_page: OpenPage) -> None:
    origin = await serve()
    page = await open_page(origin)
    for label in ("Nick", "Room"):
        await expect(page.page.get_by_label(label, exact=True)).to_be_editable()
    await page.join("Alice", "Lounge")
    await expect(page.page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    await expect(page.page.get_by_label("Message, or a command such as /help")).to_be_focused()
    await expect(page.page.get_by_role("status")).to_have_text("Connected")


async def test_the_screenshot_command_makes_its_pictures(tmp_path: Path) -> None:
    require_chromium()
    shots = await screenshots.take(tmp_path)
    sizes = []
    for shot in shots:
        header = shot.read_bytes()[:24]
        assert header.startswith(b"\x89PNG"), shot
        sizes.append((int.from_bytes(header[16:20]), int.from_bytes(header[20:24])))
    desktop, phone = (tuple(size.values()) for size in (screenshots.DESKTOP, screenshots.PHONE))
    assert sizes == [desktop, desktop, phone]
