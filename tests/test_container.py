"""The container files: the image runs the command the tests run, and its health check works.

This machine cannot build images, so the test runs the Dockerfile's own command line and
health check here, with the same settings given the same way (environment variables).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .support.network import free_port, wait_for_port

CHECKOUT = Path(__file__).resolve().parent.parent


def _exec_form(instruction: str) -> list[str]:
    """The JSON (exec) form of a Dockerfile instruction, e.g. CMD [...]."""
    text = (CHECKOUT / "Dockerfile").read_text()
    match = re.search(rf"^{instruction}\b.*?(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"no {instruction} in exec form"
    command: list[str] = json.loads(match.group(1))
    return command


def _here(command: list[str]) -> list[str]:
    """`command` run with this environment's Python, as the image runs it with its own."""
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_the_image_runs_the_server_command_and_its_health_check_passes() -> None:
    command = _exec_form("CMD")
    assert command == ["python", "-m", "aiohttp_chat.server"]  # as ServerProcess runs it
    port = free_port()
    env = {**os.environ, "AIOHTTP_CHAT_PORT": str(port), "AIOHTTP_CHAT_HOST": "127.0.0.1"}
    server = subprocess.Popen(
        _here(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, server)
        check = subprocess.run(_here(_exec_form("HEALTHCHECK.*CMD")), env=env, timeout=10)
        assert check.returncode == 0
    finally:
        server.terminate()
        assert server.wait(timeout=15) == 0
    check = subprocess.run(_here(_exec_form("HEALTHCHECK.*CMD")), env=env, capture_output=True)
    assert check.returncode != 0  # and it notices a server that is gone


def test_compose_sets_only_options_that_exist() -> None:
    compose = (CHECKOUT / "compose.yaml").read_text()
    variables = set(re.findall(r"\b(AIOHTTP_CHAT_[A-Z_]+)\b", compose))
    assert variables >= {"AIOHTTP_CHAT_WORKERS", "AIOHTTP_CHAT_REDIS_URL"}
    options = subprocess.run(
        [sys.executable, "-m", "aiohttp_chat.server", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(f"[{variable}]" in options for variable in variables), variables
