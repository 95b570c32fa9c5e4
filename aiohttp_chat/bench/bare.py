"""The floor: a bare aiohttp WebSocket server, written for speed, that the benchmark can target.

It speaks only what the `idle` and `reconnect` loads need (the greeting, `join_room`, one
chat broadcast) on the same aiohttp and uvloop as the chat server, with nothing of the
product: no validation, ids, history, limits, heartbeat sweep or metrics. What the chat
server costs above it (connect rate, memory per connection) is what the product adds:

    python -m aiohttp_chat.bench.bare --port 8090 &
    python -m aiohttp_chat.bench idle --url ws://127.0.0.1:PORT/chat --server-pid PID \
        --compare ws://127.0.0.1:8090/chat --compare-pid BARE_PID

Not part of the server: it trusts every client completely.
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict

import orjson
from aiohttp import WSMsgType, web

from .load import raise_fd_limit

_numbers = itertools.count()


async def chat(request: web.Request) -> web.WebSocketResponse:
    rooms: defaultdict[str, set[web.WebSocketResponse]] = request.app[ROOMS]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    nick, room = f"User{next(_numbers)}", "Default"
    rooms[room].add(ws)
    greeting = {"action": "connecting", "room": room, "user": nick}
    await ws.send_str(orjson.dumps(greeting).decode())
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            body = orjson.loads(message.data)
            if body.get("action") == "join_room":
                rooms[room].discard(ws)
                room = body["room"]
                rooms[room].add(ws)
                reply = {"action": "join_room", "success": True, "message": ""}
                await ws.send_str(orjson.dumps(reply).decode())
            elif body.get("action") == "chat_message":
                text = body["message"]
                reply = {"action": "chat_message", "success": True, "message": text}
                await ws.send_str(orjson.dumps(reply).decode())
                frame = orjson.dumps({"action": "chat_message", "message": text, "user": nick})
                for other in tuple(rooms[room]):
                    if other is not ws:
                        await other.send_str(frame.decode())
    finally:
        rooms[room].discard(ws)
    return ws


ROOMS = web.AppKey("rooms", defaultdict)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aiohttp_chat.bench.bare")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    raise_fd_limit()
    app = web.Application()
    app[ROOMS] = defaultdict(set)
    app.router.add_get("/chat", chat)
    import uvloop  # type: ignore[import-not-found,unused-ignore]

    web.run_app(app, host=args.host, port=args.port, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
