"""The page in several rooms at once, the list of other rooms, and paging back through a
room's history, in a real browser (Debian's Chromium, driven by Playwright) against a real
server, with raw WebSocket peers in the rooms."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from playwright.async_api import expect

from .browser import ChatPage
from .support.pages import OpenPage, Serve, chat_url
from .support.peers import joined_peer, next_event, say


def entries(page: ChatPage) -> Any:
    """The rooms the page is in, in the side list: one button each."""
    return page.page.locator("#my-rooms .switch")


def room_names(page: ChatPage) -> Any:
    """The names of the rooms the page is in, in the side list (without their counts)."""
    return page.page.locator("#my-rooms .switch .name")


async def first_in_view(page: ChatPage) -> tuple[str, float]:
    """The text of the first line of the log shown that is in view, and how far below the
    log's top it is (px)."""
    found: list[Any] = await page.log.evaluate(
        """log => {
          const top = log.getBoundingClientRect().top;
          for (const li of log.children) {
            const box = li.getBoundingClientRect();
            if (box.bottom > top && !li.classList.contains("loading"))
              return [li.textContent, box.top - top];
          }
          return ["", 0];
        }"""
    )
    return str(found[0]), float(found[1])


async def offset_of(page: ChatPage, text: str) -> float:
    """How far below the top of the log shown its line `text` is (px)."""
    offset: float = await page.log.evaluate(
        """(log, text) => {
          const li = [...log.children].find(li => li.textContent === text);
          return li.getBoundingClientRect().top - log.getBoundingClientRect().top;
        }""",
        text,
    )
    return offset


async def scroll_log(page: ChatPage, to: str) -> None:
    """Scroll the log shown, as a person would: `top`, `middle` or `bottom`."""
    where = {"top": "0", "middle": "log.scrollHeight / 2", "bottom": "log.scrollHeight"}[to]
    await page.log.evaluate(f"log => {{ log.scrollTop = {where}; }}")


async def at_bottom(page: ChatPage) -> bool:
    result: bool = await page.log.evaluate(
        "log => log.scrollHeight - log.scrollTop - log.clientHeight < 2"
    )
    return result


# ------------------------------------------------------------------------ several rooms


async def test_two_rooms_at_once_keep_their_own_logs_members_and_places(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        carol = await joined_peer(session, chat_url(origin), "Carol", "Kitchen")
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        await page.type("/join Kitchen")  # beside Lounge, the same nick, its own connection
        await page.expect_line("Connected to Kitchen as Alice.")
        assert (await next_event(carol, "joined"))["user"] == "Alice"
        await expect(room_names(page)).to_have_text(["Lounge", "Kitchen"])
        await expect(entries(page).nth(1)).to_have_attribute("aria-current", "true")
        await expect(entries(page).nth(0)).not_to_have_attribute("aria-current", "true")

        for n in range(60):  # Lounge talks while Kitchen is shown
            await say(bob, f"lounge {n}")
        await say(carol, "kitchen 0")
        await page.expect_line("kitchen 0")
        assert await page.messages() == [("Carol", "kitchen 0")]
        assert await page.members() == ["Alice", "Carol"]

        await entries(page).nth(0).click()  # Lounge: everything it heard meanwhile
        await page.expect_line("lounge 59")
        await expect(page.log.locator("li.message")).to_have_count(60)
        assert await page.members() == ["Alice", "Bob"]
        await expect(entries(page).nth(0)).to_have_attribute("aria-current", "true")
        assert page.page.url.endswith("/#Lounge")
        assert await page.page.title() == "Lounge · aiohttp-chat"
        assert await at_bottom(page)

        # Scrolled up in Lounge, a draft typed; Kitchen shown meanwhile; back: as it was.
        await scroll_log(page, "middle")
        place = await first_in_view(page)
        await page.page.fill("#line", "half-typed in Lounge")
        await entries(page).nth(1).click()
        await expect(page.page.locator("#line")).to_have_value("")
        assert await at_bottom(page)
        for n in range(60, 65):  # more in the hidden Lounge, and in Kitchen, shown
            await say(bob, f"lounge {n}")
        await say(carol, "kitchen 1")
        await page.expect_line("kitchen 1")
        assert await at_bottom(page)  # Kitchen, at its end, follows its new lines
        await entries(page).nth(0).click()
        await page.expect_line("lounge 64")
        offset = await offset_of(page, place[0])
        assert abs(offset - place[1]) < 1, (place, offset)  # the same line, at the same place
        # Lounge's five new lines are below its place: not seen, still counted.
        await expect(entries(page).nth(0).locator(".counts")).to_have_text("5 (5 unread)")
        await expect(page.page.locator("#line")).to_have_value("half-typed in Lounge")
        for n in range(2, 40):  # Kitchen, hidden at its end, hears much: shown, at its end
            await say(carol, f"kitchen {n}")
        await entries(page).nth(1).click()
        await page.expect_line("kitchen 39")
        await expect(page.log.locator("li.message").last).to_be_in_viewport()
        assert await at_bottom(page)
        await entries(page).nth(0).click()

        # Kitchen left from the side list: its connection closed politely; Lounge stays.
        await page.page.get_by_role("button", name="Leave Kitchen").click()
        left = await next_event(carol, "left")
        assert (left["user"], left["room"], left["shame"]) == ("Alice", "Kitchen", False)
        await expect(room_names(page)).to_have_text(["Lounge"])
        await page.type("still here")
        assert (await next_event(bob, "chat_message"))["message"] == "still here"
        await page.page.reload()  # only Lounge comes back
        await page.expect_line("Connected to Lounge as Alice.")
        await expect(room_names(page)).to_have_text(["Lounge"])
        await bob.close()
        await carol.close()


OBSERVE = """() => import('/static/app.js').then(({ panes }) => {
  window.heard = [];
  const say = (what, pane, more = {}) => window.heard.push({ what, room: pane.room, ...more });
  panes.observe({
    opened: (pane) => say("opened", pane, { counts: pane.counts.className }),
    adding: (pane, entry, how) => say("adding", pane, { text: entry.text, ...how,
      drawn: pane.render.nodes.has(entry) }),
    message: (pane, entry, how) => say("message", pane, { text: entry.text, ...how,
      drawn: pane.render.nodes.get(entry)?.isConnected === true }),
    shown: (pane) => say("shown", pane, { visible: pane.visible }),
    hidden: (pane) => say("hidden", pane, { visible: pane.visible }),
    closed: (pane) => say("closed", pane),
  });
})"""


async def test_every_room_can_be_followed_by_another_part_of_the_page(
    serve: Serve, open_page: OpenPage
) -> None:
    """The hooks the unread counts use: each room's messages (live or not, own or not), the
    room shown or hidden, closed; and a place for counts in its side-list entry."""
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await say(bob, "before")
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        await page.page.evaluate(OBSERVE)
        await page.type("/join Kitchen")
        await page.expect_line("Connected to Kitchen as Alice.")
        await say(bob, "while away")
        await page.type("mine")
        await page.expect_line("mine")
        await entries(page).nth(0).click()
        await page.page.get_by_role("button", name="Leave Kitchen").click()
        await page.expect_line("while away")
        heard = await page.page.evaluate("window.heard")
        assert {"what": "opened", "room": "Lounge", "counts": "counts"} in heard  # already open
        assert heard[1:3] == [
            {"what": "opened", "room": "Kitchen", "counts": "counts"},
            {"what": "hidden", "room": "Lounge", "visible": False},
        ]
        messages = [h for h in heard if h["what"] in ("adding", "message")]
        assert messages == [
            {"what": "adding", "room": "Lounge", "text": "while away", "live": True,
             "own": False, "older": False, "drawn": False},
            {"what": "message", "room": "Lounge", "text": "while away", "live": True,
             "own": False, "older": False, "drawn": True},
            {"what": "adding", "room": "Kitchen", "text": "mine", "live": True, "own": True,
             "older": False, "drawn": False},
            {"what": "message", "room": "Kitchen", "text": "mine", "live": True, "own": True,
             "older": False, "drawn": True},
        ]  # fmt: skip
        shown = [
            (h["what"], h["room"]) for h in heard if h["what"] in ("shown", "hidden", "closed")
        ]
        assert shown == [
            ("hidden", "Lounge"), ("shown", "Kitchen"), ("hidden", "Kitchen"), ("shown", "Lounge"),
            ("closed", "Kitchen"),
        ]  # fmt: skip
        counts = page.page.locator("#my-rooms .room-entry .counts")
        await expect(counts).to_have_count(1)
        await bob.close()


async def test_quit_leaves_the_room_shown_politely_and_the_others_stay(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        carol = await joined_peer(session, chat_url(origin), "Carol", "Kitchen")
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        await page.type("/join Kitchen")
        await page.expect_line("Connected to Kitchen as Alice.")
        await page.type("/join Lounge")  # shown again, not joined twice
        await expect(entries(page).nth(0)).to_have_attribute("aria-current", "true")
        await expect(entries(page)).to_have_count(2)
        await page.type("/quit")
        left = await next_event(bob, "left")
        assert (left["user"], left["room"], left["shame"]) == ("Alice", "Lounge", False)
        await expect(room_names(page)).to_have_text(["Kitchen"])
        await page.expect_line("Connected to Kitchen as Alice.")
        await page.type("still in Kitchen")
        assert (await next_event(carol, "chat_message"))["message"] == "still in Kitchen"
        await page.page.click("#leave")  # the last room: the form, as it was filled
        left = await next_event(carol, "left")
        assert (left["user"], left["room"], left["shame"]) == ("Alice", "Kitchen", False)
        await expect(page.page.locator("#join")).to_be_visible()
        await expect(page.page.locator("#nick")).to_have_value("Alice")
        await bob.close()
        await carol.close()


async def test_a_refused_room_is_said_in_the_room_it_was_asked_from(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        eve = await joined_peer(session, chat_url(origin), "Alice", "Kitchen")
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        await page.type("/join Kitchen")  # Alice is taken there
        await page.expect_line("/join Kitchen: Name already in use.")
        await expect(room_names(page)).to_have_text(["Lounge"])
        await page.type("/join ab")
        await page.expect_line("/join ab: Room name must be a string and between 3-20 chars.")
        await expect(room_names(page)).to_have_text(["Lounge"])
        await page.page.click("#join-another")  # another nick for it: the form
        await expect(page.page.locator("#nick")).to_have_value("Alice")
        await expect(page.page.locator("#room")).to_be_focused()
        await page.page.fill("#nick", "Alicia")
        await page.page.fill("#room", "Kitchen")
        await page.page.click("#join-form button[type=submit]")
        await page.expect_line("Connected to Kitchen as Alicia.")
        await expect(room_names(page)).to_have_text(["Lounge", "Kitchen"])
        await page.page.click("#join-another")
        await page.page.click("#join-cancel")  # back, nothing changed
        await page.expect_line("Connected to Kitchen as Alicia.")
        await eve.close()


async def test_on_a_phone_the_rooms_are_behind_a_button(serve: Serve, open_page: OpenPage) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin, viewport={"width": 360, "height": 640}, is_mobile=True)
    await page.join("Alice", "Lounge")
    await page.type("/join Kitchen")
    await page.expect_line("Connected to Kitchen as Alice.")
    toggle = page.page.locator("#rooms-toggle")
    rooms = page.page.locator("#rooms")
    await expect(toggle).to_be_visible()
    await expect(toggle).to_have_text("Rooms (2)")
    await expect(rooms).to_be_hidden()
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(rooms).to_be_visible()
    await entries(page).nth(0).click()
    await page.expect_line("Connected to Lounge as Alice.")
    await expect(rooms).to_be_hidden()  # a room picked: the list is out of the way
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    async with aiohttp.ClientSession() as session:  # opening the list asks for it anew
        bob = await joined_peer(session, chat_url(origin), "Bob", "Room with long name")
        await toggle.click()
        other = page.page.locator("#room-list .join-room")
        await expect(other.locator(".name")).to_have_text(["Room with long name"])
        await other.first.click()
        await page.expect_line("Connected to Room with long name as Alice.")
        await expect(rooms).to_be_hidden()
        await expect(toggle).to_have_text("Rooms (3)")
        await bob.close()
    sizes = await page.page.evaluate(
        "({scroll: document.documentElement.scrollWidth, width: window.innerWidth})"
    )
    assert sizes["scroll"] <= sizes["width"], sizes


# ------------------------------------------------------------------------ the list of rooms


async def test_the_other_rooms_are_listed_and_a_click_joins_one(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Kitchen")
        carol = await joined_peer(session, chat_url(origin), "Carol", "Kitchen")
        dave = await joined_peer(session, chat_url(origin), "Dave", "Attic")
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        others = page.page.locator("#room-list .join-room")
        await expect(others.locator(".name")).to_have_text(["Kitchen", "Attic"])  # not Lounge
        await expect(others.locator(".users")).to_have_text(["2", "1"])
        await expect(others.first).to_have_accessible_name("Join Kitchen (2 members)")
        await page.type("/rooms")  # in the log, too: most members first, then by name
        await page.expect_line("Rooms: Kitchen (2), Attic (1), Lounge (1)")

        await others.first.click()
        await page.expect_line("Connected to Kitchen as Alice.")
        joined = await next_event(carol, "joined")  # the first Carol hears of
        assert (joined["user"], joined["room"]) == ("Alice", "Kitchen")
        await expect(room_names(page)).to_have_text(["Lounge", "Kitchen"])
        assert await page.members() == ["Alice", "Bob", "Carol"]
        await expect(others.locator(".name")).to_have_text(["Attic"])  # Kitchen is yours now

        eve = await joined_peer(session, chat_url(origin), "Eve", "Cellar")
        await page.type("/rooms")  # asked again: the list follows
        await page.expect_line("Rooms: Kitchen (3), Attic (1), Cellar (1), Lounge (1)")
        await expect(others.locator(".name")).to_have_text(["Attic", "Cellar"])
        for ws in (bob, carol, dave, eve):
            await ws.close()


# ------------------------------------------------------------------------ paging back


def frames(page: ChatPage) -> list[tuple[str, Any]]:
    """Every JSON frame the page sends ("sent") or receives ("received") from now on, on any
    of its connections, in order."""
    seen: list[tuple[str, Any]] = []

    def watch(websocket: Any) -> None:
        websocket.on("framesent", lambda payload: seen.append(("sent", json.loads(payload))))
        websocket.on(
            "framereceived", lambda payload: seen.append(("received", json.loads(payload)))
        )

    page.page.on("websocket", watch)
    return seen


def paging_requests(seen: list[tuple[str, Any]]) -> list[Any]:
    return [frame for way, frame in seen if way == "sent" and "before" in frame]


async def more_messages_than(page: ChatPage, count: int) -> None:
    await page.page.wait_for_function(
        "n => document.querySelectorAll('.pane:not([hidden]) .log li.message').length > n",
        arg=count,
    )


async def test_scrolling_to_the_top_loads_older_messages_until_the_beginning(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0, history=500)
    said = [f"message {n}" for n in range(130)]
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        for text in said:
            await say(bob, text)
        page = await open_page(origin)
        seen = frames(page)
        await page.join("Alice", "Lounge")
        await page.expect_line("message 129")
        beginning = page.log.locator("li", has_text="Beginning of the history kept for Lounge")
        messages = page.log.locator("li.message")
        for _ in range(len(said)):  # at most one page a message; pages of 50 it should be
            if await beginning.count():
                break
            count = await messages.count()
            await scroll_log(page, "top")
            place = await first_in_view(page)
            await more_messages_than(page, count)
            offset = await offset_of(page, place[0])
            assert abs(offset - place[1]) < 1, (place, offset)  # in place: reading goes on
        await expect(beginning).to_have_count(1)
        assert [text for _, text in await page.messages()] == said  # each once, in order
        assert await beginning.evaluate("li => li === li.parentElement.firstElementChild")

        asked = paging_requests(seen)
        assert [request["limit"] for request in asked] == [50, 50, 50]  # 20 + 50 + 50 + 10
        assert len({request["before"] for request in asked}) == len(asked)
        # One at a time: each asked only once the one before it was answered.
        in_flight = False
        for way, frame in seen:
            if way == "sent" and "before" in frame:
                assert not in_flight, "two requests in flight"
                in_flight = True
            elif way == "received" and frame.get("action") == "history":
                in_flight = False
        await scroll_log(page, "top")  # the beginning: nothing more is asked for
        await page.type("/users")
        await page.expect_line("In Lounge: ")
        assert len(paging_requests(seen)) == len(asked)
        await bob.close()


async def test_more_loads_older_messages_and_a_room_with_few_asks_nothing(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0, history=500)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        for n in range(3):
            await say(bob, f"few {n}")
        page = await open_page(origin)
        seen = frames(page)
        await page.join("Alice", "Lounge")
        # All three came on entering, with `complete`: the beginning is known, nothing asked.
        await page.expect_line("Beginning of the history kept for Lounge")
        await page.type("/more")
        await page.type("/users")
        await page.expect_line("In Lounge: ")
        assert paging_requests(seen) == []
        await page.page.click("#leave")

        kitchen = await joined_peer(session, chat_url(origin), "Carol", "Kitchen")
        ids = [await say(kitchen, f"kitchen {n} " * 30) for n in range(45)]  # long: it scrolls
        await page.join("Alice", "Kitchen")
        await page.expect_line("kitchen 44")
        assert paging_requests(seen) == []  # at the end of a long log: nothing asked yet
        await page.type("/more 5")
        await page.expect_line("Beginning of the history kept for Kitchen")  # and scrolled up
        asked = paging_requests(seen)
        assert asked[0] == {"action": "history", "room": "Kitchen", "before": ids[25], "limit": 5}
        assert len(await page.messages()) == 45
        await page.type("/more 0")
        await page.expect_line("Usage: /more [N], N from 1 to 100")
        await bob.close()
        await kitchen.close()


# ------------------------------------------------------------------------ paging, as a rule


async def test_paging_asks_once_at_a_time_and_stops_quietly_when_refused(
    serve: Serve, open_page: OpenPage
) -> None:
    """Chat's paging against the replies a server may give, an old one's refusal among them
    (chat.js with its ui recorded, in the browser; no socket)."""
    page = await open_page(await serve())
    said = await page.page.evaluate(
        """() => import('/static/chat.js').then(({ Chat }) => {
          const shown = [], prepended = [];
          const ui = { add: e => shown.push(e.text), update() {}, members() {}, place() {},
                       refused() {}, paging() {}, rooms() {},
                       prepend: es => prepended.push(es.map(e => e.text)) };
          const chat = new Chat(ui);
          const take = text => { const r = chat.received(JSON.stringify(text));
                                 for (const { message, purpose } of r) chat.sent(message, purpose);
                                 return r; };
          chat.begin("Alice", "Lounge");
          chat.connected();
          const asked = take({ action: "connecting", room: "Lounge", user: "Alice",
                               protocol: "1.2" });
          const unknown = chat.older(null);  // nothing shown yet: nothing to ask
          take({ action: "user_list", success: true, room: "Lounge", users: ["Alice"] });
          take({ action: "history", success: true, room: "Lounge", complete: false,
                 messages: [{ id: "m5", time: "", user: "Bob", message: "five" }] });
          const first = chat.older("m5");
          for (const { message, purpose } of first) chat.sent(message, purpose);
          const again = chat.older("m5");  // one in flight already
          take({ action: "history", success: true, room: "Lounge", complete: false,
                 messages: [{ id: "m4", time: "", user: "Bob", message: "four" }] });
          const next = chat.older("m4");
          for (const { message, purpose } of next) chat.sent(message, purpose);
          take({ action: "history", success: false, message: "Before must be a message id." });
          return { asked: asked.map(r => r.message.action), unknown,
                   first: first.map(r => r.message), again, next: next.map(r => r.message),
                   after: chat.older("m4"), state: chat.paging.state, shown, prepended };
        })"""
    )
    assert said["unknown"] == []
    assert said["first"] == [{"action": "history", "room": "Lounge", "before": "m5", "limit": 50}]
    assert said["again"] == []
    assert said["next"] == [{"action": "history", "room": "Lounge", "before": "m4", "limit": 50}]
    assert said["prepended"] == [["four"]]
    assert (said["after"], said["state"]) == ([], "stopped")
    assert not [text for text in said["shown"] if "Before must" in text]  # quietly
