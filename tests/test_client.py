"""The terminal client: its tasks against a real server, and the real process."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestClient, TestServer

from aiohttp_chat.client import ChatEnded, chat, ending
from aiohttp_chat.client_console import MENTION_STYLES
from aiohttp_chat.client_view import ChatView
from aiohttp_chat.server import ROOMS, Settings

from .support.checks import stamped
from .support.peers import Connect
from .support.processes import run_process
from .support.servers import ServerProcess

TASK_NAMES = {"reader", "sender", "refresh"}


class Keyboard:
    """A line reader fed by the test; `None` is the end of input."""

    def __init__(self, *lines: str | None) -> None:
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        for line in lines:
            self.lines.put_nowait(line)

    async def __call__(self) -> str:
        line = await self.lines.get()
        if line is None:
            raise EOFError
        return line


def leftover_tasks() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks()} & TASK_NAMES


async def test_piped_lines_are_sent_then_it_quits_once_answered(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    watcher = await connect()
    shown: list[str] = []
    ws = await client.ws_connect("/chat", autoping=False)
    lines = ("hello", "/users", "/join Lounge", "/users", "/nick x", None)
    await chat(ws, Keyboard(*lines), shown.append, nick="Alice")
    assert ws.closed and leftover_tasks() == set()
    assert shown == [
        "*** Connected to Default as Alice. Type /help for commands.",
        ">>>Alice: hello",
        f"*** In Default: {watcher.nick}, Alice",
        "*** You are now in Lounge",
        "*** In Lounge: Alice",
        "!!! /nick x: Name must be a string and between 3-20 chars.",
    ]
    assert (await watcher.recv())["action"] == "joined"
    assert (await watcher.recv())["to_user"] == "Alice"
    assert stamped(await watcher.recv()) == {
        "action": "chat_message",
        "message": "hello",
        "user": "Alice",
    }
    assert await watcher.recv() == {
        "action": "left",
        "room": "Default",
        "user": "Alice",
        "shame": False,
    }


async def test_quit_command_ends_everything(client: TestClient[Any, Any], connect: Connect) -> None:
    watcher = await connect()
    ws = await client.ws_connect("/chat", autoping=False)
    keyboard = Keyboard("/quit", "never sent")
    await chat(ws, keyboard, lambda line: None, room="Kitchen")
    assert ws.closed and leftover_tasks() == set()
    assert keyboard.lines.qsize() == 1
    messages = [await watcher.recv(), await watcher.recv()]
    assert [m["action"] for m in messages] == ["joined", "left"]


async def test_server_closing_ends_all_tasks_with_a_reason(client: TestClient[Any, Any]) -> None:
    ws = await client.ws_connect("/chat", autoping=False)
    keyboard = Keyboard()  # the user is typing nothing: the sender waits for input
    running = asyncio.create_task(chat(ws, keyboard, lambda line: None))
    await asyncio.sleep(0.1)
    for members in list(client.app[ROOMS].values()):
        for socket in list(members.values()):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"bye")
    with pytest.raises(ChatEnded, match=r"closed the connection \(code 1001: bye\)"):
        await asyncio.wait_for(running, 5)
    assert ws.closed and leftover_tasks() == set()


async def test_peer_text_is_escaped(client: TestClient[Any, Any], connect: Connect) -> None:
    shown: list[str] = []
    ws = await client.ws_connect("/chat", autoping=False)
    keyboard = Keyboard()
    running = asyncio.create_task(chat(ws, keyboard, shown.append))
    await asyncio.sleep(0.1)
    villain = await connect()
    await villain.ask(action="chat_message", message="\x1b[2J\x1b]0;pwned\x07gotcha")
    await asyncio.sleep(0.1)
    keyboard.lines.put_nowait(None)
    await asyncio.wait_for(running, 5)
    assert f">>>{villain.nick}: \\x1b[2J\\x1b]0;pwned\\x07gotcha" in shown
    assert not any("\x1b" in line for line in shown)


async def test_failing_line_reader_ends_all_tasks(client: TestClient[Any, Any]) -> None:
    async def broken() -> str:
        raise RuntimeError("keyboard on fire")

    ws = await client.ws_connect("/chat", autoping=False)
    with pytest.raises(ChatEnded, match="sender failed: RuntimeError"):
        await chat(ws, broken, lambda line: None)
    assert ws.closed and leftover_tasks() == set()


async def test_refresh_notices_a_server_that_stopped_answering(
    aiohttp_client: Callable[..., Any],
) -> None:
    async def deaf(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)  # reads pings, never answers them
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/chat", deaf)
    test_client: TestClient[Any, Any] = await aiohttp_client(TestServer(app))
    ws = await test_client.ws_connect("/chat", autoping=False)
    with pytest.raises(ChatEnded, match="No answer to a ping"):
        await asyncio.wait_for(
            chat(ws, Keyboard(), print, refresh_interval=0.1, pong_timeout=0.3), 5
        )
    assert ws.closed and leftover_tasks() == set()


@pytest.mark.parametrize("first", ["reader", "sender", "refresh"])
async def test_a_dead_connection_is_worth_a_reconnect_whichever_task_notices_it(
    client: TestClient[Any, Any], first: str
) -> None:
    """The connection dies under the client (its transport is gone): the reader may see
    the end, the sender a line that cannot be written, the refresh a ping that cannot; the
    decision is one (`ending`): reconnect, never the end of the program."""
    keyboard = Keyboard()
    ws = await client.ws_connect("/chat", autoping=False)
    interval = 0.01 if first == "refresh" else 60.0
    view = ChatView()
    view.connected(resumed=False)
    running = asyncio.create_task(chat(ws, keyboard, lambda line: None, view=view,
                                       refresh_interval=interval))  # fmt: skip
    await asyncio.wait_for(view.entered.wait(), 5)
    assert ws._writer.transport is not None
    ws._writer.transport.abort()  # (its connection_lost comes a loop step later)
    if first == "sender":
        keyboard.lines.put_nowait("a line on a dead connection")
    with pytest.raises(ChatEnded) as ended:
        await asyncio.wait_for(running, 5)
    assert ended.value.final is False, ended.value
    assert leftover_tasks() == set()


@pytest.mark.parametrize(
    ("error", "final"),
    [
        (ChatEnded("The server closed the connection (code 1001)."), False),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), False),
        (ConnectionResetError(104, "Connection reset by peer"), False),
        (ChatEnded("No answer to a ping within 10 s."), False),
        (TimeoutError(), False),
        (ChatEnded("Flooding", final=True), True),
        (RuntimeError("a bug"), True),
    ],
)
def test_one_decision_from_what_ended_the_connection(error: BaseException, final: bool) -> None:
    assert ending(error, "sender").final is final


def test_connecting_decides_by_the_same_function() -> None:
    url = "ws://127.0.0.1:9/chat"
    assert ending(ConnectionRefusedError(111, "Connection refused"), "client", url).final is False
    assert ending(aiohttp.InvalidURL(url), "client", url).final is True


# ------------------------------------------------------------------------ real processes


async def test_client_process_with_piped_input(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as watcher:
        await watcher.receive_json(timeout=5)
        code, out, err = await run_process(
            "aiohttp_chat.client",
            "--url",
            server.url(),
            "--nick",
            "Piper",
            input=b"hello from a pipe\n\xff\xfe not UTF-8\n/users\n",
        )
        assert (code, err) == (0, "")
        assert "*** Connected to Default as Piper. Type /help for commands.\n" in out
        assert "as User" not in out
        assert ">>>Piper: hello from a pipe\n" in out
        assert "!!! That line is not valid UTF-8; it was not sent." in out
        assert "*** In Default: " in out and "Piper" in out
        received = [await watcher.receive_json(timeout=5) for _ in range(3)]
    assert received[0] == {"action": "joined", "room": "Default", "user": "Piper"}  # at once
    assert stamped(received[1]) == {
        "action": "chat_message",
        "message": "hello from a pipe",
        "user": "Piper",
    }
    assert received[2] == {"action": "left", "room": "Default", "user": "Piper", "shame": False}


async def test_a_piped_client_with_a_refused_nick_stops_before_sending_a_line(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as bob:
        await bob.receive_json(timeout=5)
        await bob.send_json({"action": "set_nick", "nick": "Bob"})
        assert (await bob.receive_json(timeout=5))["success"] is True
        code, out, err = await run_process(
            "aiohttp_chat.client", "--url", server.url(), "--nick", "Bob", input="hi\n"
        )
        assert (code, err) == (1, "aiohttp-chat: --nick Bob: Name already in use.\n")
        assert "!!! /nick Bob: Name already in use." in out and "hi" not in out
        heard = [await bob.receive_json(timeout=5) for _ in range(2)]
    assert [event["action"] for event in heard] == ["joined", "left"]  # and never a message


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--room", "ab", "Room name must be a string and between 3-20 chars."),
        ("--nick", "A\x1bB", "Name contains characters that are not allowed."),
        ("--nick", "Ali ce", "Name contains characters that are not allowed."),
        ("--nick", "\u3164\u3164\u3164", "Name contains characters that are not allowed."),
        ("--room", "Default ", "Room name contains characters that are not allowed."),
    ],
)
async def test_a_piped_client_checks_the_rules_before_connecting(
    option: str, value: str, why: str
) -> None:
    code, out, err = await run_process(  # nothing listens there: it never tries
        "aiohttp_chat.client", "--url", "ws://127.0.0.1:9/chat", option, value, input="hi\n"
    )
    shown = value.replace("\x1b", "\\x1b")  # as the client escapes it
    assert (code, out, err) == (1, "", f"aiohttp-chat: {option} {shown}: {why}\n")


async def test_piped_lines_are_paced_to_the_announced_limits_and_all_arrive(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()  # the default limits: 10 a second, 20 at once
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as watcher:
        await watcher.receive_json(timeout=5)
        lines = "".join(f"{n}\n" for n in range(1, 31))
        code, out, err = await run_process("aiohttp_chat.client", "--url", server.url(),
                                           "--nick", "Seq", input=lines)  # fmt: skip
        assert (code, err) == (0, "")
        assert "Too many requests" not in out
        said = []
        while (event := await watcher.receive_json(timeout=5))["action"] != "left":
            if event["action"] == "chat_message":
                said.append(event["message"])
    assert said == [str(n) for n in range(1, 31)]


async def test_a_piped_run_with_a_refused_line_fails_and_says_how_many(
    server_process: Callable[..., ServerProcess],
) -> None:
    code, out, err = await run_process("aiohttp_chat.client", "--url", server_process().url(),
                                       input="fine\n/join ab\n/nick x\nfine too\n")  # fmt: skip
    assert (code, err) == (1, "aiohttp-chat: the server refused 2 lines (shown above with !!!)\n")
    assert "!!! /join ab: Room name must be a string and between 3-20 chars." in out


async def test_client_process_verbose_shows_traffic_on_stderr(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    code, _, err = await run_process(
        "aiohttp_chat.client", "--url", server.url(), "--verbose", input="hi\n"
    )
    assert code == 0
    # > sent, < received, as curl shows them
    assert '> {"action":"chat_message","message":"hi"}' in err
    assert '< {"action":"chat_message","success":true,"message":"hi","id":"' in err


@pytest.mark.parametrize(
    ("url", "example"),
    [("127.0.0.1:8080", "ws://127.0.0.1:8080/chat"), ("not a url", "ws://not a url/chat"),
     ("ftp://host", "ws://host/chat"), ("ws://", "ws://127.0.0.1:8080/chat")],
)  # fmt: skip
async def test_client_process_says_what_a_url_needs(url: str, example: str) -> None:
    code, _, err = await run_process("aiohttp_chat.client", "--url", url)
    assert code == 2
    assert err.splitlines()[-1] == (
        "python -m aiohttp_chat.client: error: argument --url: must start with ws:// or "
        f"wss:// (wss for TLS), as in {example}, got {url}"
    )


async def test_client_process_at_the_echo_endpoint_says_it_is_not_the_chat(
    server_process: Callable[..., ServerProcess],
) -> None:
    url = server_process().url("/echo")
    code, out, err = await run_process("aiohttp_chat.client", "--url", url, input="hi\n")
    assert code == 1 and "??? " not in out  # nothing is sent before a greeting
    assert err == (
        "aiohttp-chat: this is not a chat endpoint: it sent no greeting (the chat is at /chat)\n"
    )


async def test_client_process_cannot_connect() -> None:
    code, _, err = await run_process(
        "aiohttp_chat.client", "--url", "ws://127.0.0.1:9/chat", input=""
    )
    assert (code, err) == (
        1,
        "aiohttp-chat: cannot reach ws://127.0.0.1:9/chat: connection refused\n",
    )


async def test_client_process_names_a_refused_handshake(
    server_process: Callable[..., ServerProcess],
) -> None:
    url = server_process().url("/nowhere")
    code, _, err = await run_process("aiohttp_chat.client", "--url", url, input="")
    assert (code, err) == (
        1,
        f"aiohttp-chat: cannot connect to {url}: the server answered HTTP 404 Not Found\n",
    )


async def _start_client(server: ServerProcess) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiohttp_chat.client",
        "--url",
        server.url(),
        stdin=asyncio.subprocess.PIPE,  # kept open: the user is not typing
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line.startswith(b"*** Connected to Default as")
    return proc


async def test_client_process_exits_1_when_the_server_goes_away(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    proc = await _start_client(server)
    server.stop(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 1
    assert err.decode() == (
        "aiohttp-chat: The server closed the connection (code 1001: Server shutdown).\n"
    )


async def test_client_process_ctrl_c_exits_0_quietly(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    proc = await _start_client(server)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert (proc.returncode, err.decode()) == (0, "")


async def test_client_process_sigterm_leaves_politely(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as watcher:
        await watcher.receive_json(timeout=5)
        proc = await _start_client(server)
        assert (await watcher.receive_json(timeout=5))["action"] == "joined"
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        assert (proc.returncode, err.decode()) == (0, "")
        left = await watcher.receive_json(timeout=5)
    assert left["action"] == "left" and left["shame"] is False


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # a burst, on purpose
async def test_join_shows_the_rooms_recent_messages_and_history_shows_them_again(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    talker = await connect()
    await talker.join("Lounge")
    for i in range(25):
        await talker.ask(action="chat_message", message=f"m{i}")
    shown: list[str] = []
    entered = asyncio.Event()

    def output(text: str) -> None:
        shown.append(text)
        if "Recent messages in Lounge" in text:
            entered.set()

    ws = await client.ws_connect("/chat", autoping=False)
    keyboard = Keyboard("/join Lounge")
    running = asyncio.create_task(chat(ws, keyboard, output))
    await asyncio.wait_for(entered.wait(), 5)
    await talker.ask(action="chat_message", message="live")
    keyboard.lines.put_nowait("/history 3")
    keyboard.lines.put_nowait(None)
    await asyncio.wait_for(running, 5)
    recent = next(text for text in shown if "Recent messages" in text).split("\n")
    assert [line.split("] ", 1)[1] for line in recent[1:]] == [
        f"{talker.nick}: m{i}" for i in range(5, 25)
    ]  # the last 20
    assert f">>>{talker.nick}: live" in shown
    again = shown[-1].split("\n")
    assert again[0] == "*** Last messages in Lounge:"
    assert [line.split("] ", 1)[1] for line in again[1:]] == [
        f"{talker.nick}: {text}" for text in ("m23", "m24", "live")
    ]


class Shown:
    """What the client printed, for a test to wait on."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, text: str) -> None:
        self.texts.append(text)
        self._changed.set()

    async def wait_for(self, part: str) -> str:
        """The first text printed that holds `part` (waiting for it, if need be)."""
        async with asyncio.timeout(5):
            while not (found := [text for text in self.texts if part in text]):
                self._changed.clear()
                await self._changed.wait()
        return found[0]


async def test_mentions_and_the_rooms_members_on_a_real_server(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    bob, carol = await connect(), await connect()
    await bob.set_nick("Bob")
    await carol.set_nick("Carol")
    shown = Shown()
    view = ChatView(mention_style=MENTION_STYLES["bold"], bell=True)
    view.connected(resumed=False, nick="Alice", in_handshake=True)
    ws = await client.ws_connect("/chat", params=view.query(), autoping=False)
    keyboard = Keyboard("/users")  # answered after what the client asked for on entering
    running = asyncio.create_task(chat(ws, keyboard, shown, view=view))
    await shown.wait_for("*** In Default:")
    assert view.nicks() == ["Bob", "Carol"]  # nobody spoke yet: by name

    await bob.ask(action="chat_message", message="@alice, look")
    await carol.ask(action="chat_message", message="malice aforethought")
    assert await shown.wait_for("look") == "\a\x1b[1m>>>Bob: @alice, look\x1b[0m"
    assert await shown.wait_for("aforethought") == ">>>Carol: malice aforethought"
    assert view.nicks() == ["Carol", "Bob"]  # who spoke last first

    await bob.ask(action="set_nick", nick="Bobby")
    await shown.wait_for("*** Bob is now known as Bobby")
    await carol.ws.close()
    await shown.wait_for("*** Carol left Default")
    assert view.nicks() == ["Bobby"]
    keyboard.lines.put_nowait("Bobby: thanks")  # your own: never a mention
    keyboard.lines.put_nowait(None)
    await asyncio.wait_for(running, 5)
    assert ">>>Alice: Bobby: thanks" in shown.texts


async def test_more_and_rooms_against_the_original_server(
    aiohttp_client: Callable[..., Any],
) -> None:
    """The original knows neither history nor a list of rooms: /more says so without asking
    (it greets with `join`, so the client knows it for one), /rooms shows its refusal."""
    asked: list[str] = []

    async def original(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"action": "join", "room": "Default", "user": "User42"})
        async for message in ws:
            action = message.json()["action"]
            asked.append(action)
            if action == "user_list":
                await ws.send_json({"action": action, "success": True, "room": "Default",
                                    "users": ["User42", "Bob"]})  # fmt: skip
            else:
                await ws.send_json({"action": action, "success": False, "message": "Not allowed."})
        return ws

    app = web.Application()
    app.router.add_get("/chat", original)
    test_client: TestClient[Any, Any] = await aiohttp_client(TestServer(app))
    shown = Shown()
    view = ChatView()
    view.connected(resumed=False)
    ws = await test_client.ws_connect("/chat", autoping=False)
    await chat(ws, Keyboard("/more", "/rooms", None), shown, view=view)
    assert shown.texts == [
        "*** User42 joined Default",
        "*** This server cannot show what came before in Default; "
        "/history N shows its last N messages.",
        "!!! /rooms: Not allowed.",
    ]
    assert "history" not in asked[asked.index("room_list") :]  # /more sent nothing
    assert view.nicks() == ["Bob"]


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # the talker's burst
async def test_more_pages_back_to_the_beginning_and_rooms_lists_them(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    talker, cook = await connect(), await connect()
    await talker.join("Lounge")
    await cook.join("Kitchen")
    for i in range(45):
        await talker.ask(action="chat_message", message=f"m{i}")
    shown = Shown()
    ws = await client.ws_connect("/chat", autoping=False)
    keyboard = Keyboard("/join Lounge")
    running = asyncio.create_task(chat(ws, keyboard, shown))

    def said(text: str) -> list[str]:
        return [line.split("] ", 1)[1] for line in text.split("\n") if line.startswith("  [")]

    recent = await shown.wait_for("*** Recent messages in Lounge:")
    assert said(recent) == [f"{talker.nick}: m{i}" for i in range(25, 45)]
    keyboard.lines.put_nowait("/more")
    earlier = await shown.wait_for("*** Earlier messages in Lounge:")
    assert said(earlier) == [f"{talker.nick}: m{i}" for i in range(5, 25)]
    assert "Beginning" not in earlier
    keyboard.lines.put_nowait("/more")
    first = await shown.wait_for("*** Beginning of the history kept for Lounge.")
    assert said(first) == [f"{talker.nick}: m{i}" for i in range(5)]
    assert first.split("\n")[-1] == "*** Beginning of the history kept for Lounge."
    keyboard.lines.put_nowait("/more")  # nothing more to ask for
    keyboard.lines.put_nowait("/rooms")
    rooms = await shown.wait_for("*** Rooms")
    assert rooms == (  # Default emptied as the client moved: not listed
        "*** Rooms, most people first:\n  Lounge   2 people (you are here)\n  Kitchen  1 person"
    )
    keyboard.lines.put_nowait(None)
    await asyncio.wait_for(running, 5)
    assert shown.texts[-2] == "*** Beginning of the history kept for Lounge."
