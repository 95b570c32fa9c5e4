"""The chat page in a real browser: Debian's Chromium driven by Playwright.

`launch()` starts the browser; `ChatPage` is one open chat page as a test (or the screenshot
command) uses it. Every page fails its test when a script error, a console error, a CSP
violation, a dialog (`alert`) or a request to another host happens on it.

One console error is the browser's, not the page's: while a test keeps the server down on
purpose (`async with page.outage(): ...`), each reconnect attempt that the browser reports as
refused. It is excused only inside that window, only when it names no URL but the page's own
`/chat`, only when no script logged it, and at most once for each of the page's own attempts
that Playwright itself saw fail. How the browser words it does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, Page, async_playwright, expect

from .support.needs import require

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

SETTLE_SECONDS = 3.0  # for the browser's reports of an outage's last attempts to arrive

expect.set_options(timeout=WAIT_MS)

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
# Reported by a listener the browser runs before any page script, whatever the console says.
_REPORT_CSP = """document.addEventListener("securitypolicyviolation", (event) =>
  window.reportCspViolation(`${event.effectiveDirective} blocked ${event.blockedURI}`));"""


_SET_VISIBILITY = """hidden => {
  const state = hidden ? "hidden" : "visible";
  for (const [name, value] of [["visibilityState", state], ["hidden", hidden]])
    Object.defineProperty(document, name, { configurable: true, get: () => value });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def require_chromium() -> None:
    """Skip without Chromium, except in CI, where its absence is a failure."""
    require(CHROMIUM, in_ci=".ci/run installs Debian's chromium", hint="apt-get install chromium")


@asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Outage:
    """What happened while a test kept the page's server down."""

    failed_attempts: int = 0  # the page's own /chat WebSockets that Playwright saw fail
    refused: list[str] = field(default_factory=list)  # console errors that may report them
    explained: asyncio.Event = field(default_factory=asyncio.Event)  # each refusal by a failure

    def __post_init__(self) -> None:
        self.explained.set()

    def failed(self) -> None:
        self.failed_attempts += 1
        self._check()

    def reported(self, text: str) -> None:
        self.refused.append(text)
        self._check()

    def _check(self) -> None:
        if len(self.refused) <= self.failed_attempts:
            self.explained.set()
        else:
            self.explained.clear()


class ChatPage:
    """One browser page on the chat server at `origin` (`http://127.0.0.1:PORT`)."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.chat_url = origin.replace("http", "ws", 1) + "/chat"
        self.problems: list[str] = []
        self._outage: Outage | None = None
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("websocket", self._websocket)

    @classmethod
    async def open(
        cls,
        browser: Browser,
        origin: str,
        *,
        path: str = "/",
        scripts: tuple[str, ...] = (),
        **context: Any,
    ) -> ChatPage:
        """A page in a context of its own (its own localStorage), at `path`; `scripts` run
        before the page's own on every load (a test's probes of the browser's APIs)."""
        options = {"viewport": {"width": 1000, "height": 640}, **context}
        page = cls(await (await browser.new_context(**options)).new_page(), origin)
        await page.page.expose_function("reportCspViolation", page._csp_violation)
        for script in (_REPORT_CSP, *scripts):
            await page.page.add_init_script(script)
        await page.page.goto(origin + path)
        return page

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[Outage]:
        """While the test keeps the server down: the browser's reports of the page's own
        attempts being refused are expected. The block should end once the page is back, so
        that no attempt is under way; the reports of the last ones get a moment to arrive."""
        self._outage = outage = Outage()
        try:
            yield outage
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outage.explained.wait(), SETTLE_SECONDS)
        finally:
            self._outage = None
            unexplained = outage.refused[outage.failed_attempts :]
            self.problems += [f"console error: {text}" for text in unexplained]

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        if self._outage is not None and not message.args and self._names_only_chat(message.text):
            self._outage.reported(message.text)  # excused if an attempt failed for it
        else:
            self.problems.append(f"console error: {message.text}")

    def _names_only_chat(self, text: str) -> bool:
        """Whether every URL in `text` is the page's own /chat (with or without a query)."""
        return all(url.split("?")[0] == self.chat_url for url in _URL.findall(text))

    def _websocket(self, websocket: Any) -> None:
        self._request(websocket)
        if websocket.url.split("?")[0] == self.chat_url and self._outage is not None:
            outage = self._outage  # the attempt counts for the outage it began in
            websocket.on("socketerror", lambda error: outage.failed())

    def _csp_violation(self, text: str) -> None:
        self.problems.append(f"CSP violation: {text}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"a script opened a dialog: {dialog.message}")

    def _request(self, request: Any) -> None:
        url = request.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        if not url.startswith(self.origin + "/"):
            self.problems.append(f"a request to another host: {request.url}")

    def assert_fine(self) -> None:
        assert self._outage is None, "an outage was never ended"
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

    async def set_tab_hidden(self, hidden: bool) -> None:
        """As if the person switched to another tab (or back): headless Chromium shows every
        page as visible (Playwright has no API for it), so the document says it is hidden
        and tells the page, as a browser does on a switch."""
        await self.page.evaluate(_SET_VISIBILITY, hidden)

    # ------------------------------------------------------------------ seeing

    @property
    def log(self) -> Any:
        """The log of the room shown (each room the page is in has its own)."""
        return self.page.locator(".pane:not([hidden]) .log")

    @property
    def member_list(self) -> Any:
        """The members of the room shown, one `li` each."""
        return self.page.locator(".member-list:not([hidden]) li")

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
        names: list[str] = await self.member_list.evaluate_all(
            "items => items.map(li => li.dataset.nick)"
        )
        return names
