"""The user's lines, read for the whole program, so that typing goes on across reconnects."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from .client_console import Quit, parse_line

LineReader = Callable[[], Awaitable[str]]  # raises EOFError at end of input


class Keyboard:
    """The user's lines, read for the whole program, so typing goes on across reconnects.

    One task reads lines ahead (from the terminal or the pipe) as they come; each
    connection's sender takes them with `read_line`. A line typed while disconnected is sent
    once the client is back; `/quit` (or the end of input with nothing left to send) ends
    the wait for a reconnect at once.
    """

    def __init__(self, read_line: LineReader) -> None:
        self._read_line = read_line
        self._lines: deque[str | Exception] = deque()  # lines, or what reading them raised
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.while_away: Callable[[str], None] | None = None  # told each line typed offline

    async def __aenter__(self) -> Keyboard:
        self._task = asyncio.create_task(self._pump(), name="keyboard")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _pump(self) -> None:
        while True:
            try:
                self._put(await self._read_line())
            except UnicodeError as exc:  # that line only
                self._put(exc)
            except Exception as exc:  # the end of input, or a reader that broke: the last
                self._put(exc)
                return

    def _put(self, item: str | Exception) -> None:
        away = self.while_away
        if away is not None and isinstance(item, str) and parse_line(item) not in (None, Quit()):
            away(item)  # a line to send, kept until the client is back
        self._lines.append(item)
        self._changed.set()

    async def read_line(self) -> str:
        while not self._lines:
            self._changed.clear()
            await self._changed.wait()
        item = self._lines[0]
        if isinstance(item, EOFError):
            raise EOFError  # and stays: the end is the end for every later connection too
        self._lines.popleft()
        if isinstance(item, Exception):
            raise item
        return item

    def wants_to_leave(self) -> bool:
        """Whether `/quit`, or the end of input with no line before it, is waiting."""
        if self._lines and isinstance(self._lines[0], EOFError):
            return True
        return any(isinstance(i, str) and isinstance(parse_line(i), Quit) for i in self._lines)

    async def wait_to_leave(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the user leaves meanwhile; whether they did."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.wants_to_leave():
            self._changed.clear()
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._changed.wait(), max(left, 0))
            except TimeoutError:
                return self.wants_to_leave()
        return True
