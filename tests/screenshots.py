"""Screenshots of a real chat session on the page, for the README.

    python -m tests.screenshots [OUT_DIR]    # default: docs/

writes `page-light.png` and `page-dark.png` (a desktop page in each colour scheme) and
`page-phone.png` (a phone, 360 px wide). It starts a chat server in this process, two
browser pages (Debian's Chromium, as the browser tests use) and a WebSocket peer in the role
of a terminal user, and has them talk; alice is in a second room too, whose mention of her
shows in its badge, and one in Lounge stands out with its link. `tests/test_page_browser.py`
runs it too, so the command keeps working.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from aiohttp_chat.server import Settings, create_app

from .browser import ChatPage, launch

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs"
ROOM = "Lounge"
OTHER_ROOM = "Kitchen"  # alice's second room
DESKTOP = {"width": 960, "height": 560}
PHONE = {"width": 360, "height": 640}


async def _peer(session: aiohttp.ClientSession, url: str, nick: str, room: str = ROOM) -> Any:
    ws = await session.ws_connect(url)
    for request in ({"action": "join_room", "room": room}, {"action": "set_nick", "nick": nick}):
        await ws.send_json(request)
    return ws


async def _say(ws: Any, text: str, pause: float = 0.15) -> None:
    await ws.send_json({"action": "chat_message", "message": text})
    await asyncio.sleep(pause)


async def take(out: Path) -> list[Path]:
    """Play the session and write the screenshots into `out`; their paths."""
    runner = web.AppRunner(create_app(Settings(rate_limit=0)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin = "http://127.0.0.1:{}".format(*runner.addresses[0][1:2])
    try:
        async with launch() as browser, aiohttp.ClientSession() as session:
            carol = await _peer(session, origin.replace("http", "ws", 1) + "/chat", "carol")
            await _say(carol, "Morning! The new build is up, anyone tried it?")
            chat = origin.replace("http", "ws", 1) + "/chat"
            dave = await _peer(session, chat, "dave", OTHER_ROOM)
            alice = await ChatPage.open(browser, origin, viewport=DESKTOP)
            await alice.join("alice", ROOM)
            await alice.type(f"/join {OTHER_ROOM}")  # a second room, beside Lounge
            await alice.expect_line(f"Connected to {OTHER_ROOM} as alice.")
            await alice.page.locator("#my-rooms .switch").first.click()  # Lounge shown again
            bob = await ChatPage.open(browser, origin, viewport=PHONE, is_mobile=True)
            await bob.join("bob", ROOM)
            await bob.expect_line("Recent messages in Lounge")
            await alice.type("Just did: the page reconnects by itself now")
            await bob.type("Works on my phone too")
            await _say(carol, "And I'm still in my terminal:\n  $ python -m aiohttp_chat.client")
            await _say(carol, "alice: the notes are at https://example.com/build/notes")
            await _say(dave, "@alice lunch at one?")  # in the room not shown: its badge
            await alice.type("/users")
            await bob.type("Back in five, getting coffee")
            await alice.expect_line("getting coffee")
            await bob.expect_line("getting coffee")
            shots = [out / "page-light.png", out / "page-dark.png", out / "page-phone.png"]
            await alice.page.screenshot(path=shots[0])
            await alice.page.emulate_media(color_scheme="dark")
            await alice.page.screenshot(path=shots[1])
            await bob.page.screenshot(path=shots[2])
            for page in (alice, bob):
                page.assert_fine()
            await carol.close()
            await dave.close()
    finally:
        await runner.cleanup()
    return shots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.screenshots", description=__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="(default: docs/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(take(args.out)):
        print(path)


if __name__ == "__main__":
    main()
