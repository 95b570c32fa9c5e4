"""The line being typed on a real terminal, with the chat printed above it.

`LineEditor` is the pure part: it takes what the keyboard sends and gives back the lines
submitted (and Ctrl-D, Ctrl-L), and draws the input row. `Terminal` is the I/O around it: it
puts the terminal in cbreak mode (keys arrive one by one, unechoed; Ctrl-C stays a signal)
for as long as the chat runs, reads the keys through aioconsole's streams, and prints each
piece of output above the input row: clear the row, write the text (the terminal scrolls and
wraps it, however many lines it has), draw the row again. The input row is always one row: a
line wider than the terminal scrolls sideways, so no output ever has to count rows.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import os
import shutil
import sys
import termios
import tty
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final

import aioconsole

from .console import cell_width

PROMPT: Final = "> "
HISTORY: Final = 100  # lines kept for the up arrow

CLEAR_ROW: Final = "\r\x1b[K"
CLEAR_SCREEN: Final = "\x1b[H\x1b[2J"


class Key(enum.Enum):
    EOF = "Ctrl-D on an empty line"
    CLEAR = "Ctrl-L: clear the screen"


# Escape sequences of the keys that move or delete, as xterm, VT100 and the Linux console send
# them (ESC [ ... or ESC O ...), by what follows the ESC.
_SEQUENCES: Final = {
    **dict.fromkeys(("[D", "OD"), "left"),
    **dict.fromkeys(("[C", "OC"), "right"),
    **dict.fromkeys(("[A", "OA"), "up"),
    **dict.fromkeys(("[B", "OB"), "down"),
    **dict.fromkeys(("[H", "OH", "[1~", "[7~"), "home"),
    **dict.fromkeys(("[F", "OF", "[4~", "[8~"), "end"),
    "[3~": "delete",
}
_CONTROLS: Final = {
    "\x01": "home",  # Ctrl-A
    "\x02": "left",  # Ctrl-B
    "\x05": "end",  # Ctrl-E
    "\x06": "right",  # Ctrl-F
    "\x08": "backspace",
    "\x7f": "backspace",
    "\x0b": "kill-end",  # Ctrl-K
    "\x0e": "down",  # Ctrl-N
    "\x10": "up",  # Ctrl-P
    "\x15": "kill-start",  # Ctrl-U
    "\x17": "kill-word",  # Ctrl-W
}


class LineEditor:
    """A one-line editor: insert, delete, move, kill, history. No I/O."""

    def __init__(self, prompt: str = PROMPT) -> None:
        self.prompt = prompt
        self.text = ""
        self.cursor = 0  # index into `text`
        self._scroll = 0  # index of the first character shown
        self._pending = ""  # the start of an escape sequence cut by a read
        self._history: deque[str] = deque(maxlen=HISTORY)
        self._browsing = 0  # how far back in the history the up arrow went
        self._draft = ""  # what was typed before browsing

    def feed(self, keys: str) -> list[str | Key]:
        """Apply what the keyboard sent; the lines submitted and the keys for the caller."""
        out: list[str | Key] = []
        keys, self._pending = self._pending + keys, ""
        i = 0
        while i < len(keys):
            char = keys[i]
            i += 1
            if char == "\x1b":
                if _cut(keys, i):
                    self._pending = keys[i - 1 :]  # the rest comes with the next read
                    break
                if keys[i] == "[":
                    end = _sequence_end(keys, i)
                    self._edit(_SEQUENCES.get(keys[i:end], ""))
                    i = end
                elif keys[i] == "O":
                    self._edit(_SEQUENCES.get(keys[i : i + 2], ""))
                    i += 2
                continue  # a lone ESC (or Alt): dropped, the key after it stands alone
            if char in "\r\n":
                out.append(self._submit())
            elif char == "\x04":
                if not self.text:
                    out.append(Key.EOF)
                self._edit("delete")
            elif char == "\x0c":
                out.append(Key.CLEAR)
            elif char in _CONTROLS:
                self._edit(_CONTROLS[char])
            elif char == "\t" or char.isprintable():
                self._insert(" " if char == "\t" else char)
            # any other control character is ignored: it would be sent, unseen
        return out

    def _insert(self, text: str) -> None:
        self.text = self.text[: self.cursor] + text + self.text[self.cursor :]
        self.cursor += len(text)

    def _submit(self) -> str:
        line, self.text, self.cursor, self._scroll = self.text, "", 0, 0
        if line.strip() and (not self._history or self._history[-1] != line):
            self._history.append(line)
        self._browsing, self._draft = 0, ""
        return line

    def _edit(self, action: str) -> None:
        text, cursor = self.text, self.cursor
        if action == "left":
            self.cursor = max(0, cursor - 1)
        elif action == "right":
            self.cursor = min(len(text), cursor + 1)
        elif action == "home":
            self.cursor = 0
        elif action == "end":
            self.cursor = len(text)
        elif action == "backspace" and cursor:
            self.text, self.cursor = text[: cursor - 1] + text[cursor:], cursor - 1
        elif action == "delete":
            self.text = text[:cursor] + text[cursor + 1 :]
        elif action == "kill-start":
            self.text, self.cursor = text[cursor:], 0
        elif action == "kill-end":
            self.text = text[:cursor]
        elif action == "kill-word":
            start = len(text[:cursor].rstrip())
            start = text.rfind(" ", 0, start) + 1
            self.text, self.cursor = text[:start] + text[cursor:], start
        elif action in ("up", "down"):
            self._browse(1 if action == "up" else -1)

    def _browse(self, step: int) -> None:
        browsing = min(max(self._browsing + step, 0), len(self._history))
        if browsing == self._browsing:
            return
        if self._browsing == 0:
            self._draft = self.text
        self._browsing = browsing
        self.text = self._history[-browsing] if browsing else self._draft
        self.cursor = len(self.text)

    def row(self, width: int) -> tuple[str, int]:
        """The input row for a terminal `width` columns wide, and the cursor's column."""
        room = max(width - 1 - cell_width(self.prompt), 1)  # the last column stays free
        self._scroll = min(self._scroll, self.cursor)
        while cell_width(self.text[self._scroll : self.cursor]) > room:
            self._scroll += 1
        shown = self.text[self._scroll :]
        while cell_width(shown) > room:
            shown = shown[:-1]
        column = cell_width(self.prompt) + cell_width(self.text[self._scroll : self.cursor])
        return self.prompt + shown, column


def _cut(keys: str, start: int) -> bool:
    """Whether the escape sequence whose ESC is just before `keys[start]` ends past `keys`."""
    if start == len(keys):
        return True
    if keys[start] == "[":
        return not _sequence_end(keys, start)
    return keys[start] == "O" and start + 1 == len(keys)


def _sequence_end(keys: str, start: int) -> int:
    """End of the CSI sequence `keys[start:]` (starting at its `[`), or 0 if it is cut."""
    for end in range(start + 1, len(keys)):
        if "\x40" <= keys[end] <= "\x7e":  # the final byte
            return end + 1
    return 0


class Terminal:
    """The client's terminal while the chat runs: `read_line` in, `print` out.

    Use it as `async with terminal:`; leaving restores the terminal's mode, and ends on a line
    of its own so that the shell's prompt does not land on the input row.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        fd: int,
        prompt: str = PROMPT,
    ) -> None:
        self.editor = LineEditor(prompt)
        self._reader, self._writer, self._fd = reader, writer, fd
        self._saved: list[Any] | None = None
        self._submitted: deque[str | Key] = deque()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def __aenter__(self) -> Terminal:
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self._draw()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._write("\n" if self.editor.text else CLEAR_ROW)  # what was typed stays on screen
        try:
            await self._writer.drain()
        finally:
            if self._saved is not None:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            os.set_blocking(self._fd, True)  # the shell expects its terminal back as it was

    async def read_line(self) -> str:
        """The next line submitted with Enter; `EOFError` on Ctrl-D at an empty line."""
        while not self._submitted:
            data = await self._reader.read(4096)
            if not data:
                raise EOFError
            for item in self.editor.feed(self._decoder.decode(data)):
                if item is Key.CLEAR:
                    self._write(CLEAR_SCREEN)
                else:
                    self._submitted.append(item)
            self._draw()
        item = self._submitted.popleft()
        if isinstance(item, Key):
            raise EOFError
        return item

    def io(self) -> tuple[Callable[[], Awaitable[str]], Callable[[str], None]]:
        """The client's line reader and output, on this terminal."""
        return self.read_line, self.print

    def print(self, text: str) -> None:
        """Print `text` (one or more lines) above the input row."""
        self._write(f"{CLEAR_ROW}{text}\n")
        self._draw()

    def _draw(self) -> None:
        row, column = self.editor.row(shutil.get_terminal_size().columns)
        self._write(f"{CLEAR_ROW}{row}\r" + (f"\x1b[{column}C" if column else ""))

    def _write(self, text: str) -> None:
        self._writer.write(text.encode())


async def open_terminal(prompt: str = PROMPT) -> Terminal | None:
    """A `Terminal` on stdin and stdout, or None where they are not both terminals.

    aioconsole's streams read stdin without blocking the loop and write stdout through a
    transport that buffers rather than fails while the terminal is busy. It offers them only
    where all three standard streams can be pipes to the event loop (not, say, with stderr
    redirected to a file); there, too, the client falls back to reading whole lines.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    reader, writer = await aioconsole.get_standard_streams()
    if not isinstance(reader, asyncio.StreamReader):
        return None
    return Terminal(reader, writer, sys.stdin.fileno(), prompt)
