"""The client on a real terminal (tmux): prompts, and incoming lines that spare your typing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from .conftest import ServerProcess, require_program


class Tmux:
    def __init__(self) -> None:
        self.socket = f"aiohttp-chat-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def screen(self) -> list[str]:
        return [line.rstrip() for line in self("capture-pane", "-p", "-t", "chat").splitlines()]

    async def wait_for(self, text: str, seconds: float = 10.0) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            screen = self.screen()
            if any(text.strip() in line for line in screen):
                return screen
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared on:\n" + "\n".join(self.screen()))


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    require_program("tmux")
    session = Tmux()
    yield session
    subprocess.run(["tmux", "-L", session.socket, "kill-server"], capture_output=True)


async def test_typing_survives_incoming_lines(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    command = f"{sys.executable} -m aiohttp_chat.client --url {server.url()}"
    tmux("new-session", "-d", "-s", "chat", "-x", "100", "-y", "20", command)
    await tmux.wait_for("Nick (random if not provided): ")
    tmux("send-keys", "-t", "chat", "Typist", "Enter")
    await tmux.wait_for("Room (`Default` if not provided): ")
    tmux("send-keys", "-t", "chat", "Enter")
    await tmux.wait_for("*** You are now known as Typist")

    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as peer:
        await peer.receive_json(timeout=5)
        tmux("send-keys", "-t", "chat", "-l", "half a thou")
        await tmux.wait_for("half a thou")
        for text in ("first \x1b[31mred", "second"):
            await peer.send_json({"action": "chat_message", "message": text})
        screen = await tmux.wait_for(": second")
        lines = [line for line in screen if line]
        assert lines[-1] == "half a thou"  # the line being typed, intact, still last
        assert lines[-3].endswith(": first \\x1b[31mred")  # escaped, not coloured
        assert lines[-2].endswith(": second")

        tmux("send-keys", "-t", "chat", "-l", "ght")
        tmux("send-keys", "-t", "chat", "Enter")
        while "user" not in (message := await peer.receive_json(timeout=5)):
            pass  # the replies to the peer's own messages
        assert message == {"action": "chat_message", "message": "half a thought", "user": "Typist"}

        tmux("send-keys", "-t", "chat", "/quit", "Enter")
        while (message := await peer.receive_json(timeout=5))["action"] != "left":
            pass
        assert message == {"action": "left", "room": "Default", "user": "Typist", "shame": False}
