"""Property-based fuzzing: whatever a client sends, the server answers it and stays sane.

Arbitrary text frames (JSON values, requests with fields of any type, plain strings) and
binary frames go to /chat from a client sharing a room with a second client, and to /echo.
The server must answer every frame exactly once, never close the connection (none of these
frames reaches a documented limit), never log an error, and never send the second client a
frame that breaks the protocol.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiohttp_chat import protocol
from aiohttp_chat.server import Settings

from .support.peers import Peer, open_peer

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
ACTIONS = st.sampled_from(protocol.ACTIONS)
REQUESTS = st.fixed_dictionaries(
    {"action": ACTIONS | JSON},
    optional={field: JSON for field in ("nick", "room", "message", "limit", "after", "before")},
)
# Names that are valid but would make the fuzzer's state drift are as likely as any other.
NAMES = st.text(min_size=3, max_size=20)
VALID = st.one_of(
    st.builds(lambda n: {"action": "set_nick", "nick": n}, NAMES),
    st.builds(lambda r: {"action": "join_room", "room": r}, NAMES),
    st.builds(lambda m: {"action": "chat_message", "message": m}, st.text(min_size=1)),
)
FRAMES = st.one_of(
    st.text(max_size=200).map(lambda text: (WSMsgType.TEXT, text)),
    JSON.map(lambda value: (WSMsgType.TEXT, json.dumps(value))),
    (REQUESTS | VALID).map(lambda request: (WSMsgType.TEXT, json.dumps(request))),
    st.binary(max_size=64).map(lambda data: (WSMsgType.BINARY, data)),
)
FUZZING = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one server, many examples
)
BROADCASTS = {
    "joined": {"room": str, "user": str},
    "left": {"room": str, "user": str, "shame": bool},
    "nick_changed": {"room": str, "from_user": str, "to_user": str},
    "chat_message": {"message": str, "user": str, "id": str, "time": str},
}


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, and no number beyond a double."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def finite(text: str) -> float:
        if not math.isfinite(value := float(text)):
            raise ValueError(f"{text} does not fit a double")
        return value

    return json.loads(text, parse_constant=refuse, parse_float=finite)


def assert_broadcast(message: Any) -> None:
    """`message` is one of the protocol's broadcasts, with exactly its fields and types."""
    assert isinstance(message, dict), message
    fields = BROADCASTS[message["action"]]
    assert set(message) == {"action", *fields}, message
    for name, kind in fields.items():
        assert type(message[name]) is kind, message


async def send(peer: Peer, kind: WSMsgType, data: str | bytes) -> None:
    if kind is WSMsgType.TEXT:
        assert isinstance(data, str)
        await peer.ws.send_str(data)
    else:
        assert isinstance(data, bytes)
        await peer.ws.send_bytes(data)


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])  # examples come fast
@FUZZING
@given(frames=st.lists(FRAMES, min_size=1, max_size=8))
async def test_chat_answers_everything_and_tells_the_room_only_protocol(
    client: TestClient[Any, Any],
    errors: pytest.LogCaptureFixture,
    frames: list[tuple[WSMsgType, str | bytes]],
) -> None:
    watcher = await open_peer(client)
    fuzzer = await open_peer(client)
    try:
        for kind, data in frames:
            await send(fuzzer, kind, data)
            reply = await fuzzer.reply()  # exactly one reply for each frame, in order
            assert type(reply["success"]) is bool, reply
            if not reply["success"]:
                assert set(reply) == {"action", "success", "message"}, reply
                assert isinstance(reply["message"], str) and reply["message"], reply
        # Whatever the fuzzer made the server broadcast was queued before its last reply,
        # so before the answer to the watcher's next request.
        for message in await watcher.broadcasts():
            assert_broadcast(message)
        assert not fuzzer.ws.closed
    finally:
        await fuzzer.ws.close()
        await watcher.ws.close()
    assert [r.getMessage() for r in errors.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("settings", [Settings(rate_limit=0)])
@FUZZING
@given(frames=st.lists(FRAMES, min_size=1, max_size=8))
@example(frames=[(WSMsgType.TEXT, text) for text in ("Infinity", "-Infinity", "NaN", "1e999")])
async def test_echo_answers_everything(
    client: TestClient[Any, Any],
    errors: pytest.LogCaptureFixture,
    frames: list[tuple[WSMsgType, str | bytes]],
) -> None:
    ws = await client.ws_connect("/echo")
    try:
        for kind, data in frames:
            if kind is WSMsgType.TEXT:
                await ws.send_str(str(data))
            else:
                await ws.send_bytes(bytes(data))
            reply = await ws.receive_json(timeout=5)
            if kind is WSMsgType.BINARY:
                assert reply == {"success": False, "message": "Binary frames are not supported."}
                continue
            try:
                value = strict_json(str(data))
            except ValueError:
                assert reply == {"success": False, "message": "Message must be valid JSON."}
            else:
                assert reply == {"echo": value}
        assert not ws.closed
    finally:
        await ws.close()
    assert [r.getMessage() for r in errors.records if r.levelno >= logging.WARNING] == []
