"""The client on a real terminal (tmux): prompts, and incoming lines that spare your typing."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from .support.checks import stamped
from .support.needs import require_program
from .support.peers import joined_peer, next_event, say
from .support.servers import ServerProcess


class Tmux:
    def __init__(self) -> None:
        self.socket = f"aiohttp-chat-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def screen(self, *options: str) -> list[str]:
        """The pane's lines (`-J`: rows the terminal wrapped joined; `-e`: with SGR)."""
        lines = self("capture-pane", "-p", *options, "-t", "chat").splitlines()
        return [line.rstrip() for line in lines]

    def styles(self) -> dict[str, set[int]]:
        """Each line of the pane's text, and the SGR attributes its text is shown with."""
        return {_SGR.sub("", line): _attributes(line) for line in self.screen("-e")}

    def bell_rang(self) -> bool:
        return self("display-message", "-p", "-t", "chat", "#{window_bell_flag}").strip() == "1"

    async def wait_for(self, text: str, seconds: float = 10.0) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            screen = self.screen()
            if any(text.strip() in line for line in screen):
                return screen
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared on:\n" + "\n".join(self.screen()))

    def start_client(self, url: str, *options: str, rows: int = 20) -> None:
        """The client on `url`, in a new session named `chat`, 100 columns by `rows`."""
        command = " ".join([sys.executable, "-m", "aiohttp_chat.client", "--url", url, *options])
        self("new-session", "-d", "-s", "chat", "-x", "100", "-y", str(rows), command)


_SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def _attributes(line: str) -> set[int]:
    """The SGR attributes on while the visible text of `line` is drawn: whatever sequence
    the terminal chose to say it with (0 ends all, 22-29 one, 39 and 49 the colours)."""
    on: set[int] = set()
    shown: set[int] = set()
    for at, piece in enumerate(_SGR.split(line)):
        if at % 2 == 0:
            if piece.strip():
                shown |= on
            continue
        for code in (int(part or 0) for part in re.split("[;:]", piece)):
            if code == 0:
                on.clear()
            elif 22 <= code <= 29:
                on -= {code - 20, 1, 2} if code == 22 else {code - 20}
            elif code in (39, 49):
                on -= set(range(code - 9, code))
            else:
                on.add(code)
    return shown


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
    tmux.start_client(server.url())
    await tmux.wait_for("Nick (random if not provided): ")
    tmux("send-keys", "-t", "chat", "Typist", "Enter")
    await tmux.wait_for("Room (Default if not provided): ")
    tmux("send-keys", "-t", "chat", "Enter")
    await tmux.wait_for("*** Connected to Default as Typist. Type /help for commands.")

    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as peer:
        await peer.receive_json(timeout=5)
        tmux("send-keys", "-t", "chat", "-l", "half a thou")
        await tmux.wait_for("> half a thou")
        for text in ("first \x1b[31mred", "second"):
            await peer.send_json({"action": "chat_message", "message": text})
        screen = await tmux.wait_for(": second")
        lines = [line for line in screen if line]
        assert lines[-1] == "> half a thou"  # the line being typed, intact, still last
        assert lines[-3].endswith(": first \\x1b[31mred")  # escaped, not coloured
        assert lines[-2].endswith(": second")

        tmux("send-keys", "-t", "chat", "-l", "ght")
        tmux("send-keys", "-t", "chat", "Enter")
        while "user" not in (message := await peer.receive_json(timeout=5)):
            pass  # the replies to the peer's own messages
        assert stamped(message) == {
            "action": "chat_message",
            "message": "half a thought",
            "user": "Typist",
        }

        tmux("send-keys", "-t", "chat", "/quit", "Enter")
        while (message := await peer.receive_json(timeout=5))["action"] != "left":
            pass
        assert message == {"action": "left", "room": "Default", "user": "Typist", "shame": False}


async def _next_chat(peer: aiohttp.ClientWebSocketResponse) -> str:
    while (message := await peer.receive_json(timeout=5)).get("action") != "chat_message" or (
        "user" not in message
    ):
        pass
    text: str = message["message"]
    return text


async def test_the_first_minutes_in_a_shell(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    """What a person sees: every line where it belongs, from the start to Ctrl-C."""
    server = server_process()
    tmux("new-session", "-d", "-s", "chat", "-x", "80", "-y", "30", "env PS1='shell$ ' sh")
    await tmux.wait_for("shell$")
    command = f"{sys.executable} -m aiohttp_chat.client --url {server.url()}"
    tmux("send-keys", "-t", "chat", f"{command} --nick Typist --room Lounge", "Enter")
    greeting = "*** Connected to Lounge as Typist. Type /help for commands."
    screen = await tmux.wait_for(greeting)
    assert not any("Default" in line for line in screen)  # never seemed to ignore the flags
    assert screen[screen.index(greeting) + 1] == ">"  # the prompt (its space stripped)

    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as peer:
        await peer.send_json({"action": "set_nick", "nick": "Peer"})
        await peer.send_json({"action": "join_room", "room": "Lounge"})
        await tmux.wait_for("*** Peer joined Lounge")

        # Multi-line output, then more output: the first is not overwritten.
        tmux("send-keys", "-t", "chat", "/help", "Enter")
        await tmux.wait_for("// sends one that starts with /.")
        tmux("send-keys", "-t", "chat", "/users", "Enter")
        screen = await tmux.wait_for("*** In Lounge:")
        lines = [line for line in screen if line]
        help_lines = parse_help()
        at = lines.index(help_lines[0])
        assert lines[at : at + len(help_lines)] == help_lines
        assert lines[at + len(help_lines)] == "*** In Lounge: Typist, Peer"
        assert lines[-1] == ">"

        # Your own message, shown as the others see it; the typed line is gone from the input.
        tmux("send-keys", "-t", "chat", "hello all", "Enter")
        assert await _next_chat(peer) == "hello all"
        lines = [line for line in await tmux.wait_for(">>>Typist: hello all") if line]
        assert re.fullmatch(r"\[\d\d:\d\d\] >>>Typist: hello all", lines[-2]), lines  # its time
        assert lines[-1] == ">"

        # A refusal names what was typed.
        tmux("send-keys", "-t", "chat", "/nick x", "Enter")
        await tmux.wait_for("!!! /nick x: Name must be a string and between 3-20 chars.")

        # A multi-line message from a peer: its lines under the sender, controls escaped.
        await peer.send_json(
            {"action": "chat_message", "message": "roses\nviolets\tblue\n\x1b[2Jsugar"}
        )
        lines = [line for line in await tmux.wait_for("sugar") if line]
        time_ = lines[-4][:8]  # "[07:33] "
        assert re.fullmatch(r"\[\d\d:\d\d\] ", time_), lines
        assert lines[-4:] == [
            f"{time_}>>>Peer: roses",
            f"{' ' * len(time_)}         violets blue",
            f"{' ' * len(time_)}         \\x1b[2Jsugar",
            ">",
        ]

        # Ctrl-L clears the screen and keeps the half-typed line, which is sent without ^L.
        tmux("send-keys", "-t", "chat", "-l", "half")
        tmux("send-keys", "-t", "chat", "C-l")
        deadline = time.monotonic() + 10
        while [line for line in tmux.screen() if line] != ["> half"]:
            assert time.monotonic() < deadline, tmux.screen()
            await asyncio.sleep(0.05)
        tmux("send-keys", "-t", "chat", "-l", " done")
        tmux("send-keys", "-t", "chat", "Enter")
        assert await _next_chat(peer) == "half done"

        # Ctrl-C: what was typed stays, the shell's prompt comes on a line of its own, and the
        # terminal is back as it was (typed commands echo again).
        tmux("send-keys", "-t", "chat", "-l", "unsent")
        await tmux.wait_for("> unsent")
        tmux("send-keys", "-t", "chat", "C-c")
        lines = [line for line in await tmux.wait_for("shell$") if line]
        assert lines[-2:] == ["> unsent", "shell$"]
        tmux("send-keys", "-t", "chat", "echo back-$((40 + 2))", "Enter")
        lines = [line for line in await tmux.wait_for("back-42") if line]
        assert lines[-3:] == ["shell$ echo back-$((40 + 2))", "back-42", "shell$"]
        while (message := await peer.receive_json(timeout=5))["action"] != "left":
            pass
        assert message["shame"] is False


def parse_help() -> list[str]:
    from aiohttp_chat.client_console import HELP

    return [line.rstrip() for line in HELP.splitlines()]


async def test_history_on_entering_and_a_reconnect_keep_the_typed_line(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as peer:
        await peer.receive_json(timeout=5)
        await peer.send_json({"action": "set_nick", "nick": "Peer"})
        await peer.send_json({"action": "join_room", "room": "Lounge"})
        for text in ("said before", "and again"):
            await peer.send_json({"action": "chat_message", "message": text})
        while (await peer.receive_json(timeout=5)).get("message") != "and again":
            pass

    tmux.start_client(server.url())
    await tmux.wait_for("Nick (random if not provided): ")
    tmux("send-keys", "-t", "chat", "Typist", "Enter")
    await tmux.wait_for("Room (Default if not provided): ")
    tmux("send-keys", "-t", "chat", "Lounge", "Enter")
    lines = [line for line in await tmux.wait_for("] Peer: and again") if line]
    at = lines.index("*** Connected to Lounge as Typist. Type /help for commands.")
    assert lines[at + 1] == "*** Recent messages in Lounge:"
    shown = lines[at + 2 : at + 4]  # each with the minute it was sent, in local time
    assert [re.sub(r"^  \[\d\d:\d\d\] ", "", line) for line in shown] == [
        "Peer: said before",
        "Peer: and again",
    ]

    tmux("send-keys", "-t", "chat", "-l", "half typed")
    await tmux.wait_for("> half typed")
    server.stop(signal.SIGTERM)
    await tmux.wait_for("Reconnecting…")
    server_process(port=server.port)
    lines = [line for line in await tmux.wait_for("*** Reconnected: in Lounge as Typist.") if line]
    assert lines[-1] == "> half typed"  # survived, still where it was typed

    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as peer:
        await peer.receive_json(timeout=5)
        await peer.send_json({"action": "join_room", "room": "Lounge"})
        tmux("send-keys", "-t", "chat", "-l", " line")
        tmux("send-keys", "-t", "chat", "Enter")
        while (message := await peer.receive_json(timeout=5)).get("user") != "Typist":
            pass
        assert message["message"] == "half typed line"
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_a_paste_is_one_message_and_a_resize_redraws_the_row(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    tmux.start_client(server.url(), "--nick", "Paster", "--room", "Default")
    await tmux.wait_for("*** Connected to Default as Paster.")
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as peer:
        await peer.receive_json(timeout=5)
        tmux("set-buffer", "-b", "pasted", "one\ntwo\nthree")
        tmux("paste-buffer", "-p", "-b", "pasted", "-t", "chat")  # bracketed, as asked for
        await tmux.wait_for("> one↵two↵three")
        tmux("send-keys", "-t", "chat", "Enter")
        while "user" not in (message := await peer.receive_json(timeout=5)):
            pass
        assert (message["user"], message["message"]) == ("Paster", "one\ntwo\nthree")
        lines = [line for line in await tmux.wait_for("       three") if line]
        first = lines[-4]  # with the time it was sent: [07:33] >>>Paster: one
        assert re.fullmatch(r"\[\d\d:\d\d\] >>>Paster: one", first), first
        indent = " " * first.index("one")  # the other lines under the first
        assert lines[-3:-1] == [f"{indent}two", f"{indent}three"]

        tmux("send-keys", "-t", "chat", "-l", "x" * 70 + "END")
        await tmux.wait_for("xxEND")
        tmux("resize-window", "-t", "chat", "-x", "40")
        deadline = time.monotonic() + 10
        while not _redrawn_for(40, [line for line in tmux.screen() if line][-1]):
            assert time.monotonic() < deadline, "\n".join(tmux.screen())  # at once
            await asyncio.sleep(0.05)
    tmux("send-keys", "-t", "chat", "C-u", "/quit", "Enter")


def _redrawn_for(columns: int, row: str) -> bool:
    """Whether `row` is the input row of a long line drawn for `columns` columns."""
    return row.startswith("> …") and row.endswith("xEND") and len(row) < columns


async def test_a_refused_nick_at_a_terminal_asks_for_another(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as bob:
        await bob.receive_json(timeout=5)
        await bob.send_json({"action": "set_nick", "nick": "Bob"})
        await bob.receive_json(timeout=5)
        tmux.start_client(server.url(), "--nick", "Bob", "--room", "Default")
        await tmux.wait_for("!!! /nick Bob: Name already in use.")
        await tmux.wait_for("*** Type another nick, or an empty line to stay User")
        tmux("send-keys", "-t", "chat", "Bobby", "Enter")
        await tmux.wait_for("*** You are now known as Bobby")
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_a_room_alike_to_an_existing_one_is_offered_in_the_row(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    tmux.start_client(server.url(), "--nick", "Zoe", "--room", "Default")
    await tmux.wait_for("*** Connected to Default as Zoe.")
    tmux("send-keys", "-t", "chat", "/join default", "Enter")
    await tmux.wait_for("!!! /join default: Room name looks like an existing room: Default.")
    await tmux.wait_for("*** Default exists: /join Default to enter it.")
    await tmux.wait_for("> /join Default")  # offered in the input row: Enter takes it
    tmux("send-keys", "-t", "chat", "Enter")
    screen = await tmux.wait_for("!!! /join Default: Name already in use in this room.")
    assert "> /join Default" not in screen[-1]  # sent, the row is empty again
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_reconnecting_counts_down_in_the_row_and_says_what_waits_to_be_sent(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    tmux.start_client(server.url(), "--nick", "Waiter", "--room", "Lounge")
    await tmux.wait_for("*** Connected to Lounge as Waiter.")
    server.stop(signal.SIGTERM)
    await tmux.wait_for("Reconnecting…")
    await tmux.wait_for("(reconnecting in ")  # the input row counts down to the next try
    tmux("send-keys", "-t", "chat", "-l", "typed while away")
    tmux("send-keys", "-t", "chat", "Enter")
    await tmux.wait_for("*** Not connected: sent once reconnected: typed while away")
    server_process(port=server.port)
    await tmux.wait_for("*** Reconnected: in Lounge as Waiter.", 30)
    lines = [line for line in await tmux.wait_for(">>>Waiter: typed while away") if line]
    assert lines[-1] == ">"  # the countdown is gone once back (the row is "> ")
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_tab_completes_a_nick_and_a_mention_stands_out(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    tmux.start_client(server.url(), "--nick", "Alice", "--room", "Lounge")
    await tmux.wait_for("*** Connected to Lounge as Alice.")
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, server.url(), "Bob", "Lounge")
        bobby = await joined_peer(session, server.url(), "Bobby", "Lounge")
        await say(bobby, "hello")
        await tmux.wait_for(">>>Bobby: hello")

        tmux("send-keys", "-t", "chat", "-l", "bo")
        tmux("send-keys", "-t", "chat", "Tab")
        await tmux.wait_for("> Bobby:")  # the one who spoke last
        tmux("send-keys", "-t", "chat", "Tab")
        await tmux.wait_for("> Bob:")  # Tab again: the next one
        tmux("send-keys", "-t", "chat", "-l", "hi")
        await tmux.wait_for("> Bob: hi")
        tmux("send-keys", "-t", "chat", "Enter")
        while (message := await next_event(bob, "chat_message")).get("user") != "Alice":
            pass  # Bobby's
        assert message["message"] == "Bob: hi"

        await say(bob, "plain words")
        await tmux.wait_for(">>>Bob: plain words")
        assert not tmux.bell_rang()
        await say(bob, "@alice, look here")
        await tmux.wait_for(">>>Bob: @alice, look here")
        styles = tmux.styles()
        mention = next(attrs for line, attrs in styles.items() if line.endswith("look here"))
        plain = next(attrs for line, attrs in styles.items() if line.endswith("plain words"))
        assert mention and not plain  # the mention looks different, whatever the sequence
        assert tmux.bell_rang()
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_a_mention_can_be_left_plain_and_quiet(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    tmux.start_client(server.url(), "--nick", "Alice", "--room", "Lounge",
                      "--mention-style", "none", "--no-bell")  # fmt: skip
    await tmux.wait_for("*** Connected to Lounge as Alice.")
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, server.url(), "Bob", "Lounge")
        await say(bob, "Alice: still there?")
        await tmux.wait_for(">>>Bob: Alice: still there?")
        styles = tmux.styles()
        assert not next(attrs for line, attrs in styles.items() if line.endswith("there?"))
        assert not tmux.bell_rang()
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_a_long_url_stays_one_line_for_the_terminal_to_open(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process()
    tmux.start_client(server.url(), "--nick", "Alice", "--room", "Lounge")
    await tmux.wait_for("*** Connected to Lounge as Alice.")
    url = "https://example.com/" + "/".join(f"part{n}" for n in range(40)) + "?q=1&r=%20#end"
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, server.url(), "Bob", "Lounge")
        await say(bob, f"read this: {url} (it is long)")
        await tmux.wait_for("(it is long)")
    rows = tmux.screen()
    assert not any(url in row for row in rows)  # longer than a row: the terminal wrapped it
    joined = tmux.screen("-J")  # rows joined where the terminal wrapped, not where we broke
    assert any(line.strip() == url for line in joined), joined
    tmux("send-keys", "-t", "chat", "/quit", "Enter")


async def test_more_pages_back_and_rooms_lists_the_rooms(
    server_process: Callable[..., ServerProcess], tmux: Tmux
) -> None:
    server = server_process("--rate-limit", "0")  # the talker's burst
    async with aiohttp.ClientSession() as session:
        talker = await joined_peer(session, server.url(), "Talker", "Lounge")
        cook = await joined_peer(session, server.url(), "Cook", "Kitchen")
        for i in range(45):
            await say(talker, f"m{i}")
        tmux.start_client(server.url(), "--nick", "Alice", "--room", "Lounge", rows=30)
        await tmux.wait_for("] Talker: m44")
        tmux("send-keys", "-t", "chat", "/more", "Enter")
        lines = [line for line in await tmux.wait_for("] Talker: m24") if line]
        at = lines.index("*** Earlier messages in Lounge:")
        assert [line.rsplit("] ", 1)[-1] for line in lines[at + 1 :]] == [
            *(f"Talker: m{i}" for i in range(5, 25)),
            ">",
        ]
        tmux("send-keys", "-t", "chat", "/more", "Enter")
        lines = [line for line in await tmux.wait_for("*** Beginning of the history") if line]
        assert [line.rsplit("] ", 1)[-1] for line in lines[-8:]] == [
            "*** Earlier messages in Lounge:",
            *(f"Talker: m{i}" for i in range(5)),
            "*** Beginning of the history kept for Lounge.",
            ">",
        ]
        tmux("send-keys", "-t", "chat", "/rooms", "Enter")
        lines = [line for line in await tmux.wait_for("*** Rooms, most people first:") if line]
        assert lines[-4:] == [
            "*** Rooms, most people first:",
            "  Lounge   2 people (you are here)",
            "  Kitchen  1 person",
            ">",
        ]
        await cook.close()
    tmux("send-keys", "-t", "chat", "/quit", "Enter")
