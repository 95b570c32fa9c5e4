"""How a test compares what it was sent: the parts that change from run to run checked,
then left out."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TOKEN = re.compile(r"[A-Za-z0-9_-]{22,}")  # a resume token: 128 random bits or more, URL-safe


def moved(reply: Any) -> Any:
    """A `set_nick` or `join_room` success reply without its `resume` token, once it is
    checked to be there and well formed; any other reply as it is."""
    if not isinstance(reply, dict) or reply.get("success") is not True or "resume" not in reply:
        return reply
    assert TOKEN.fullmatch(reply["resume"]), reply
    return {key: value for key, value in reply.items() if key != "resume"}


def stamped(message: Any) -> Any:
    """A chat message or reply without its `id` and `time`, once they are checked to be there
    and well formed; any other message as it is."""
    if not isinstance(message, dict) or message.get("action") != "chat_message":
        return message
    if message.get("success") is False:
        return message
    assert isinstance(message.get("id"), str) and message["id"], message
    assert TIME.fullmatch(message.get("time", "")), message
    return {key: value for key, value in message.items() if key not in ("id", "time")}


def exactly(text: str) -> str:
    """A `pytest.raises(match=...)` pattern for exactly `text`."""
    return f"^{re.escape(text)}$"


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Wait until `check()` is true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.1)
