"""The chat page: `GET /` and its assets under `/static/`, served by the chat's own application.

The page (`static/`, package data) is plain HTML, CSS and ES modules: no build step, nothing
loaded from another host. It speaks the same protocol on `/chat` as the terminal client.
Every page response carries a strict Content-Security-Policy: scripts, styles and images only
from this server, WebSocket connections only to it, no inline code of any kind. So even text
that slipped into the page as HTML could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

STATIC: Final = Path(__file__).with_name("static")
STATIC_PREFIX: Final = "/static/"

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


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Add the page's security headers to the page and its assets (not to WebSockets)."""
    if isinstance(response, web.WebSocketResponse):
        return  # before `request.path`, which the request would keep for the connection's life
    if request.path == "/" or request.path.startswith(STATIC_PREFIX):
        response.headers.update(HEADERS)


def serve(app: web.Application) -> None:
    """Serve the page on `app`: `/`, `/static/...` and their headers."""
    app.add_routes([web.get("/", index), web.static("/static", STATIC)])
    app.on_response_prepare.append(_secure)
