"""Programs of this package run as a user runs them: `python -m ...` to its end, and the
client (`start_client`) with its input kept open and its output read line by line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

CLIENT_TIMEOUT = 15.0  # for a client process to say something


async def run_process(
    *args: str, input: str | bytes = "", limit: float = 20.0
) -> tuple[int, str, str]:
    """Run `python -m ...args` to the end without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    data = input.encode() if isinstance(input, str) else input
    out, err = await asyncio.wait_for(proc.communicate(data), limit)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class ClientProcess:
    """`python -m aiohttp_chat.client` with piped input kept open; its output line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def expect(self, text: str) -> list[str]:
        """Read until a line containing `text`; the lines read meanwhile, that one last."""
        assert self.proc.stdout is not None
        read: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), CLIENT_TIMEOUT)
            assert raw, f"the client ended before {text!r}; it said: {read}"
            read.append(raw.decode().rstrip("\n"))
            self.lines.append(read[-1])
            if text in read[-1]:
                return read

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()

    async def exit(self) -> tuple[int, str]:
        """Wait for the client to end by itself; the exit code and what it said on stderr."""
        assert self.proc.stderr is not None
        await asyncio.wait_for(self.proc.wait(), CLIENT_TIMEOUT)
        assert self.proc.returncode is not None
        return self.proc.returncode, (await self.proc.stderr.read()).decode()

    async def finish(self) -> tuple[int, str]:
        """End the input; the exit code and what was said on stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        out, err = await asyncio.wait_for(self.proc.communicate(), CLIENT_TIMEOUT)
        self.lines += out.decode().splitlines()
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


@pytest.fixture
async def start_client() -> AsyncIterator[Callable[..., Awaitable[ClientProcess]]]:
    """Start client processes on a URL; those still running are killed after the test."""
    started: list[ClientProcess] = []

    async def start(url: str, *args: str) -> ClientProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiohttp_chat.client",
            "--url",
            url,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(ClientProcess(proc))
        return started[-1]

    yield start
    for client in started:
        if client.proc.returncode is None:
            client.proc.kill()
            await client.proc.wait()
