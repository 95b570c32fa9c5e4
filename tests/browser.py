"""The chat page in a real browser: Debian's Chromium driven by Playwright.

`launch()` starts the browser; `ChatPage` is one open chat page as a test (or the screenshot
command) uses it. Every page fails its test when a script error, a console error (a CSP
violation is one), a dialog (`alert`) or a request to another host happens on it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
# As this machine's notes advise: no background traffic to Google's hosts, which this
# closed network refuses, many at a time.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
WAIT_MS = 10_000  # for the page to show something
RECONNECT_MS = 30_000  # for the page to come back after its server did

expect.set_options(timeout=WAIT_MS)


def require_chromium() -> None:
    """Skip without Chromium, except in CI, where its absence is a failure."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


@asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class ChatPage:
    """One browser page on the chat server at `origin` (`http://127.0.0.1:PORT`)."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("websocket", self._request)

    @classmethod
    async def open(
        cls, browser: Browser, origin: str, *, path: str = "/", **context: Any
    ) -> ChatPage:
        """A page in a context of its own (its own localStorage), at `path`."""
        options = {"viewport": {"width": 1000, "height": 640}, **context}
        page = cls(await (await browser.new_context(**options)).new_page(), origin)
        await page.page.goto(origin + path)
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"a script opened a dialog: {dialog.message}")

    def _request(self, request: Any) -> None:
        url = request.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        if not url.startswith(self.origin + "/"):
            self.problems.append(f"a request to another host: {request.url}")

    def assert_fine(self) -> None:
        assert not self.problems, self.problems

    # ------------------------------------------------------------------ doing

    async def join(self, nick: str, room: str) -> None:
        """Fill in the form and join; wait until the page says where it is."""
        await self.page.fill("#nick", nick)
        await self.page.fill("#room", room)
        await self.page.click("#join-form button[type=submit]")
        await self.expect_line(f"Connected to {room} as {nick}.")
        await self.expect_connected()

    async def type(self, line: str) -> None:
        await self.page.fill("#line", line)
        await self.page.press("#line", "Enter")

    # ------------------------------------------------------------------ seeing

    @property
    def log(self) -> Any:
        return self.page.locator("#log")

    async def expect_line(self, text: str, within: float = WAIT_MS) -> None:
        await expect(self.log.locator("li", has_text=text).first).to_be_visible(timeout=within)

    async def expect_connected(self, within: float = WAIT_MS) -> None:
        status = self.page.locator("#status")
        await expect(status).to_have_attribute("data-state", "open", timeout=within)

    async def lines(self) -> list[str]:
        texts: list[str] = await self.log.locator("li").all_inner_texts()
        return texts

    async def messages(self) -> list[tuple[str, str]]:
        """(user, text) of every chat message shown, in order."""
        pairs: list[list[str]] = await self.log.locator("li.message").evaluate_all(
            "items => items.map(li => [li.querySelector('.user').textContent,"
            " li.querySelector('.text').textContent])"
        )
        return [(user, text) for user, text in pairs]

    async def members(self) -> list[str]:
        names: list[str] = await self.page.locator("#member-list li").evaluate_all(
            "items => items.map(li => li.dataset.nick)"
        )
        return names
