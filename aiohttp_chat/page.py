"""The chat page: `GET /` and its assets under `/static/`, served by the chat's own application.

The page (`static/`, package data) is plain HTML, CSS and ES modules: no build step, nothing
loaded from another host. It speaks the same protocol on `/chat` as the terminal client.
Every page response carries a strict Content-Security-Policy: scripts, styles and images only
from this server, WebSocket connections only to it, no inline code of any kind. So even text
that slipped into the page as HTML could not run.

One asset is made rather than stored: `/static/confusables.json`, the rules of the server's
alike rule for names (`protocol.skeleton_rules`), which the page loads once to tell whether a
message names its reader as the server compares nicks. It is built once, on the first
request, in a thread, served gzipped to a browser that takes gzip, and revalidated by its ETag
like the files (a 304 while unchanged).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from pathlib import Path
from typing import Final, NamedTuple

from aiohttp import web

from . import protocol
from .memo import Memo

STATIC: Final = Path(__file__).with_name("static")
STATIC_PREFIX: Final = "/static/"
SKELETON_RULES_PATH: Final = STATIC_PREFIX + "confusables.json"

# 'self' covers ws: and wss: to the page's own host and port (CSP Level 3, in every current
# browser); nothing else may be fetched, framed, submitted to or used as a base.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on each load (a 304 while unchanged), so an upgraded server's page and
    # modules are never mixed with cached ones.
    "Cache-Control": "no-cache",
}


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


class Encoded(NamedTuple):
    """A made asset: its bytes, gzipped, and its entity tag (a digest of the bytes)."""

    plain: bytes
    gzipped: bytes
    etag: str


def skeleton_rules_asset() -> Encoded:
    rules = protocol.skeleton_rules()
    plain = json.dumps(rules, ensure_ascii=False, separators=(",", ":")).encode()
    etag = hashlib.sha256(plain).hexdigest()[:32]
    return Encoded(plain, gzip.compress(plain, compresslevel=9, mtime=0), etag)


def _takes_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` header names gzip (and not with `q=0`)."""
    for item in accept_encoding.lower().split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name == "gzip":
            q = next((param[2:] for param in params if param.startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


# Made once, on the first request, in a thread: a quarter of a second of work (every code
# point folded) that would stop every connection meanwhile; those who ask meanwhile wait for
# that one making.
_made_skeleton_rules = Memo(lambda: asyncio.to_thread(skeleton_rules_asset))


async def skeleton_rules(request: web.Request) -> web.StreamResponse:
    asset = await _made_skeleton_rules()
    vary = {"Vary": "Accept-Encoding"}
    if _takes_gzip(request.headers.get("Accept-Encoding", "")):
        body, etag = asset.gzipped, f"{asset.etag}-gzip"  # each encoding has its own tag
        headers = {**vary, "Content-Encoding": "gzip"}
    else:
        body, etag, headers = asset.plain, asset.etag, vary
    if any(tag.value == etag for tag in request.if_none_match or ()):
        response = web.Response(status=304, headers=vary)
    else:
        response = web.Response(body=body, headers=headers, content_type="application/json")
    response.etag = etag
    return response


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Add the page's security headers to the page and its assets (not to WebSockets)."""
    if isinstance(response, web.WebSocketResponse):
        return  # before `request.path`, which the request would keep for the connection's life
    if request.path == "/" or request.path.startswith(STATIC_PREFIX):
        response.headers.update(HEADERS)


def serve(app: web.Application) -> None:
    """Serve the page on `app`: `/`, `/static/...` and their headers."""
    app.add_routes(
        [
            web.get("/", index),
            web.get(SKELETON_RULES_PATH, skeleton_rules),  # before the folder that would 404 it
            web.static("/static", STATIC),
        ]
    )
    app.on_response_prepare.append(_secure)
