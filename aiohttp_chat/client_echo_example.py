"""A small, complete WebSocket client: the place to start learning asyncio with aiohttp.

It connects to the server's `/echo` endpoint and runs two tasks side by side:

- `send_forever` sends `{"message": "Hello world!"}` every `--interval` seconds;
- `print_replies` prints every reply the server sends back (`{"echo": ...}`).

As soon as either task ends (or fails), the other one is cancelled, the WebSocket is closed
and the program exits. Try it, with the server running in another terminal:

    python -m aiohttp_chat.client_echo_example --interval 1 --count 3
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType

from aiohttp_chat.client_console import unreachable


async def send_forever(ws: ClientWebSocketResponse, interval: float) -> None:
    """Send a message, wait, repeat. Never ends by itself: it is cancelled from outside."""
    while True:
        await ws.send_json({"message": "Hello world!"})
        await asyncio.sleep(interval)


async def print_replies(ws: ClientWebSocketResponse, count: int | None) -> None:
    """Print each reply; return after `count` replies, or when the server closes."""
    received = 0
    # `async for` over a WebSocket yields messages until the connection closes.
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            print(f"Received: {message.json()}")
            received += 1
            if received == count:
                return
    print(f"The server closed the connection (code {ws.close_code}).")


async def main_async(
    url: str, interval: float, count: int | None, tls: ssl.SSLContext | bool = True
) -> None:
    # One ClientSession per program; `ws_connect` upgrades an HTTP request to a WebSocket.
    # For a wss:// URL, `ssl` says how to check the server's certificate.
    async with ClientSession() as session, session.ws_connect(url, ssl=tls) as ws:
        print(f"Connected to {url}")
        tasks = [
            asyncio.create_task(send_forever(ws, interval)),
            asyncio.create_task(print_replies(ws, count)),
        ]
        # Wait until the first task finishes, whichever it is: done with its count, the
        # server went away, or an exception was raised in it.
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # Cancel the others and *await* them, so none is left running ("Task was destroyed
        # but it is pending!"). return_exceptions=True collects their CancelledError.
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Re-raise an exception from the finished task, if any, so it is not hidden.
        for task in done:
            task.result()
    # Leaving the `async with` blocks closed the WebSocket (with a close frame) and the session.


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        # Name the command as run (`python -m ...`), not this file, in the usage line.
        prog=f"python -m {__spec__.name}" if __spec__ else None,
        description="Talk to the aiohttp-chat /echo endpoint.",
    )
    parser.add_argument("--url", default="ws://0.0.0.0:8080/echo", help="(default: %(default)s)")
    parser.add_argument(
        "--interval", type=float, default=15.0, help="seconds between messages (default: 15)"
    )
    parser.add_argument("--count", type=int, help="stop after this many replies (default: never)")
    parser.add_argument("--ca-file", help="for wss://, trust this CA certificate file (PEM)")
    parser.add_argument("--insecure", action="store_true", help="for wss://, check nothing")
    args = parser.parse_args(argv)
    # TLS: by default the server's certificate is checked against the system's trust store;
    # --ca-file trusts another CA (your own, say); --insecure checks nothing, so say so.
    tls: ssl.SSLContext | bool = True
    if args.insecure:
        print("Warning: --insecure: the server's certificate is not checked.", file=sys.stderr)
        tls = False
    elif args.ca_file:
        tls = ssl.create_default_context(cafile=args.ca_file)
    try:
        asyncio.run(main_async(args.url, args.interval, args.count, tls))
    except KeyboardInterrupt:
        pass  # Ctrl-C: asyncio.run already cancelled the tasks and ran the cleanup above.
    except OSError as exc:  # aiohttp's connection errors are OSErrors too
        # The terminal client's plain words for what went wrong (client_console.py).
        raise SystemExit(unreachable(args.url, exc)) from None


if __name__ == "__main__":
    main()
