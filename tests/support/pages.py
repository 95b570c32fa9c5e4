"""The chat page in real Chromium: the `browser`, a chat server in this process to open it on
(`serve`), and `open_page`, whose pages must end their test without script errors, console
errors, CSP violations, dialogs or requests to other hosts (tests/browser.py says how)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from aiohttp_chat.server import Settings, create_app

from ..browser import ChatPage, launch, require_chromium
from .servers import many_people

OpenPage = Callable[..., Awaitable[ChatPage]]
Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with launch() as browser:
        yield browser


@pytest.fixture
async def serve(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Serve:
    """Start a chat server in this process; its origin (`http://127.0.0.1:PORT`)."""

    async def start(**settings: Any) -> str:
        server = await aiohttp_server(create_app(many_people(Settings(**settings))))
        return f"http://127.0.0.1:{server.port}"

    return start


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """Open chat pages; each must end the test without script errors, dialogs or requests
    to other hosts."""
    opened: list[ChatPage] = []

    async def open_one(origin: str, **options: Any) -> ChatPage:
        opened.append(await ChatPage.open(browser, origin, **options))
        return opened[-1]

    yield open_one
    for page in opened:
        page.assert_fine()


def chat_url(origin: str) -> str:
    """The /chat WebSocket URL of the server serving the page at `origin`."""
    return origin.replace("http", "ws", 1) + "/chat"
