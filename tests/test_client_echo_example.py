"""The learning sample, run as a user runs it."""

from __future__ import annotations

from collections.abc import Callable

from .support.processes import run_process
from .support.servers import ServerProcess


async def test_echo_example_counts_replies_and_exits(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    code, out, err = await run_process(
        "aiohttp_chat.client_echo_example",
        *("--url", server.url("/echo"), "--interval", "0.05", "--count", "3"),
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"Connected to {server.url('/echo')}",
        *["Received: {'echo': {'message': 'Hello world!'}}"] * 3,
    ]


async def test_echo_example_reports_an_unreachable_server() -> None:
    code, _, err = await run_process(
        "aiohttp_chat.client_echo_example", "--url", "ws://127.0.0.1:9/echo", "--count", "1"
    )
    assert (code, err) == (1, "cannot reach ws://127.0.0.1:9/echo: connection refused\n")
