"""The line being typed on a real terminal, with the chat printed above it.

`LineEditor` is the pure part: it takes what the keyboard sends and gives back the lines
submitted (and Ctrl-D, Ctrl-L), and draws the input row. `Terminal` is the I/O around it: it
puts the terminal in cbreak mode (keys arrive one by one, unechoed; Ctrl-C stays a signal)
for as long as the chat runs, reads the keys through aioconsole's streams, and prints each
piece of output above the input row: clear the row, write the text (the terminal scrolls and
wraps it, however many lines it has), draw the row again. The input row is always one row: a
line wider than the terminal scrolls sideways (`…` marks what is hidden), so no output ever
has to count rows; a resize (SIGWINCH) draws it again at the new width. Bracketed paste
mode makes a paste arrive marked, so that its line breaks stay in the text: a paste of many
lines is one message, not one per line. Tab completes the nick being typed, and again
cycles through the others that match (`client_completion` has the rule).
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import os
import shutil
import signal
import sys
import termios
import tty
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final

import aioconsole

from .client_completion import AT, completion, line_start, matching, white, word_start
from .client_console import cell_width

PROMPT: Final = "> "
HISTORY: Final = 100  # lines kept for the up arrow

CLEAR_ROW: Final = "\r\x1b[K"
CLEAR_SCREEN: Final = "\x1b[H\x1b[2J"
PASTE_ON: Final = "\x1b[?2004h"  # bracketed paste: a paste comes between ESC[200~ and ESC[201~
PASTE_OFF: Final = "\x1b[?2004l"
HIDDEN: Final = "…"  # where the row, scrolled sideways, hides some of the line
LINE_BREAK: Final = "↵"  # a line break in the line being typed (from a paste), as shown


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


class _Cycle:
    """A completion going on: where its word starts, whether it had an `@`, the nicks it
    matched and the one in place (`client_completion` has the rule)."""

    __slots__ = ("at", "index", "matches", "start")

    def __init__(self, start: int, at: bool, matches: list[str]) -> None:
        self.start, self.at, self.matches, self.index = start, at, matches, -1


class LineEditor:
    """A one-line editor: insert, delete, move, kill, history, Tab to complete a nick.
    No I/O: `nicks` gives the nicks to complete, in the order to offer them."""

    def __init__(
        self, prompt: str = PROMPT, nicks: Callable[[], Sequence[str]] = lambda: ()
    ) -> None:
        self.prompt = prompt
        self.nicks = nicks
        self.text = ""
        self.cursor = 0  # index into `text`
        self._scroll = 0  # index of the first character shown
        self._pending = ""  # the start of an escape sequence cut by a read
        self._history: deque[str] = deque(maxlen=HISTORY)
        self._browsing = 0  # how far back in the history the up arrow went
        self._draft = ""  # what was typed before browsing
        self._pasting = False  # between ESC[200~ and ESC[201~: text, not keys
        self._cycle: _Cycle | None = None  # Tab, pressed again, offers the next nick

    def feed(self, keys: str) -> list[str | Key]:
        """Apply what the keyboard sent; the lines submitted and the keys for the caller."""
        out: list[str | Key] = []
        keys, self._pending = self._pending + keys, ""
        i = 0
        while i < len(keys):
            char = keys[i]
            i += 1
            if char == "\t" and not self._pasting:
                self._complete()
                continue
            self._cycle = None  # any other key ends a completion
            if char == "\x1b":
                if _cut(keys, i):
                    self._pending = keys[i - 1 :]  # the rest comes with the next read
                    break
                if keys[i] == "[":
                    end = _sequence_end(keys, i)
                    if keys[i:end] in ("[200~", "[201~"):
                        self._pasting = keys[i:end] == "[200~"
                    elif not self._pasting:
                        self._edit(_SEQUENCES.get(keys[i:end], ""))
                    i = end
                elif keys[i] == "O":
                    self._edit(_SEQUENCES.get(keys[i : i + 2], ""))
                    i += 2
                continue  # a lone ESC (or Alt): dropped, the key after it stands alone
            if self._pasting:  # a pasted line break is part of the text: one message
                if char == "\n" and self.text[self.cursor - 1 : self.cursor] == "\n":
                    continue  # the LF of a pasted CR LF
                if char in "\r\n" or char == "\t" or char.isprintable():
                    self._insert("\n" if char in "\r\n" else char)
                continue
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
            elif char.isprintable():
                self._insert(char)
            # any other control character is ignored: it would be sent, unseen
        return out

    def _complete(self) -> None:
        """Tab: the word before the cursor completed to the next nick that matches it."""
        cycle = self._cycle
        if cycle is None:
            start = word_start(self.text, self.cursor)
            at = self.text.startswith(AT, start)
            matches = matching(self.text[start + at : self.cursor], self.nicks())
            if not matches:
                return  # nothing to complete: Tab types nothing (no stray space)
            cycle = self._cycle = _Cycle(start, at, matches)
        cycle.index = (cycle.index + 1) % len(cycle.matches)
        nick = cycle.matches[cycle.index]
        spaced = self.cursor < len(self.text) and white(self.text[self.cursor])
        at_start = line_start(self.text, cycle.start)
        text = completion(nick, at_start=at_start, at=cycle.at, spaced=spaced)
        self.text = self.text[: cycle.start] + text + self.text[self.cursor :]
        self.cursor = cycle.start + len(text)

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
        """The input row for a terminal `width` columns wide, and the cursor's column: a
        line wider than the row scrolls sideways, with `…` where text is hidden."""
        text = self.text.replace("\n", LINE_BREAK).replace("\t", " ")
        room = max(width - 1 - cell_width(self.prompt), 3)  # the last column stays free
        self._scroll = min(self._scroll, self.cursor)
        while True:  # the cursor in sight, between the marks of what is hidden
            left = HIDDEN if self._scroll else ""
            before = cell_width(left + text[self._scroll : self.cursor])
            right = 1 if cell_width(text[self._scroll :]) + len(left) > room else 0
            if before + right <= room or self._scroll >= self.cursor:
                break
            self._scroll += 1
        shown = left + text[self._scroll :]
        if cell_width(shown) > room:
            while cell_width(shown) > room - 1:
                shown = shown[:-1]
            shown += HIDDEN
        return self.prompt + shown, cell_width(self.prompt) + before


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
        self._prompt = prompt
        self._reader, self._writer, self._fd = reader, writer, fd
        self._saved: list[Any] | None = None
        self._submitted: deque[str | Key] = deque()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def __aenter__(self) -> Terminal:
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self._write(PASTE_ON)
        # A resized terminal gets its input row drawn again at once, for its new width.
        asyncio.get_running_loop().add_signal_handler(signal.SIGWINCH, self._draw)
        self._draw()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGWINCH)
        self._write("\n" if self.editor.text else CLEAR_ROW)  # what was typed stays on screen
        self._write(PASTE_OFF)
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

    def offer(self, line: str) -> None:
        """Put `line` in the input row for Enter to send, unless something is typed there."""
        if not self.editor.text:
            self.editor.text, self.editor.cursor = line, len(line)
            self._draw()

    def status(self, text: str | None) -> None:
        """Show `text` in the input row, before the prompt (None: the prompt alone)."""
        prompt = self._prompt if text is None else f"({text}) {self._prompt}"
        if prompt != self.editor.prompt:
            self.editor.prompt = prompt
            self._draw()

    def io(self) -> tuple[Callable[[], Awaitable[str]], Callable[[str], None]]:
        """The client's line reader and output, on this terminal."""
        return self.read_line, self.print

    def print(self, text: str) -> None:
        """Print `text` (one or more lines) above the input row, in one write with the row
        drawn again: the terminal never shows the text without the row under it."""
        self._write(f"{CLEAR_ROW}{text}\n{self._row()}")

    def columns(self) -> int:
        """The terminal's width now. Asked of the terminal itself: a COLUMNS variable in the
        environment (which shells may export) would freeze it at the width it once was."""
        try:
            return os.get_terminal_size(self._fd).columns
        except OSError:
            return shutil.get_terminal_size().columns

    def _draw(self) -> None:
        self._write(self._row())

    def _row(self) -> str:
        """What draws the input row, the cursor where it is in the line."""
        row, column = self.editor.row(self.columns())
        return f"{CLEAR_ROW}{row}\r" + (f"\x1b[{column}C" if column else "")

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
