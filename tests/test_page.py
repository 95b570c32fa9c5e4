"""The chat page as HTTP serves it: the page, its assets, their headers (no browser here;
test_page_browser.py drives the page itself)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from aiohttp_chat import protocol
from aiohttp_chat.client_console import HELP
from aiohttp_chat.page import CONTENT_SECURITY_POLICY, SKELETON_RULES_PATH, STATIC

ASSET = re.compile(r'(?:src|href)="(/[^"]*)"')
IMPORT = re.compile(r'from "\./([^"]+)"')
PAGE_HELP = re.compile(r"^export const HELP = `(.*?)`;$", re.MULTILINE | re.DOTALL)
COMMAND = re.compile(r"^  (/\S+(?: \S+)?)  ", re.MULTILINE)  # `  /users [ROOM]  list who...`


async def test_the_page_is_served_at_the_root_with_strict_headers(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>aiohttp-chat</title>" in await response.text()


def test_the_policy_allows_only_this_server_and_nothing_inline() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "connect-src", "img-src"):
        assert directives[kind] == "'self'", kind  # no 'unsafe-inline', no other hosts
    assert directives["frame-ancestors"] == "'none'"


async def test_every_asset_the_page_names_is_served_with_the_headers(
    client: TestClient[Any, Any],
) -> None:
    page = await (await client.get("/")).text()
    named = set(ASSET.findall(page))
    for module in STATIC.glob("*.js"):  # and every module a module imports
        named |= {f"/static/{name}" for name in IMPORT.findall(module.read_text())}
    assert {"/static/app.js", "/static/style.css", "/static/chat.js"} <= named
    for path in sorted(named):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        expected = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        assert expected[path[path.rindex(".") :]] in response.content_type, path


async def test_the_alike_rule_is_served_as_data_gzipped_and_revalidated(
    client: TestClient[Any, Any],
) -> None:
    """The page's copy of the server's rule for alike names comes from the server's own data,
    gzipped for a browser that takes it, and a 304 while it has not changed."""
    rules = protocol.skeleton_rules()
    assert len(rules["prototypes"]) > 6000 and rules["folds"][str(ord("\u00df"))] == "ss"
    for encoding in ("gzip, deflate, br", "identity"):
        response = await client.get(SKELETON_RULES_PATH, headers={"Accept-Encoding": encoding})
        assert response.status == 200, encoding
        assert response.headers.get("Content-Encoding") == ("gzip" if "gzip" in encoding else None)
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.content_type == "application/json"
        assert await response.json() == rules  # (the client undoes the gzip)
        etag = response.headers["ETag"]
        again = await client.get(
            SKELETON_RULES_PATH, headers={"Accept-Encoding": encoding, "If-None-Match": etag}
        )
        assert again.status == 304, encoding
        assert await again.read() == b""
    plain = await client.get(SKELETON_RULES_PATH, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in plain.headers


async def test_the_static_folder_serves_its_own_files_only(client: TestClient[Any, Any]) -> None:
    for path in ("/static/missing.js", "/static/../server.py", "/static/%2e%2e/server.py"):
        response = await client.get(path)
        assert response.status in (403, 404), path


def test_the_page_loads_nothing_from_another_host() -> None:
    for asset in STATIC.iterdir():
        text = asset.read_text()
        urls = re.findall(r"\b(?:https?|wss?)://", text)
        assert urls == [] or (asset.suffix == ".svg" and urls == ["http://"]), asset.name


async def test_websockets_get_no_page_headers(client: TestClient[Any, Any]) -> None:
    async with client.ws_connect("/chat") as ws:
        assert "Content-Security-Policy" not in ws._response.headers
        await ws.receive_json()


def test_the_page_and_the_terminal_client_list_the_same_commands() -> None:
    """Two helps, one per language: the same commands with the same arguments, in the same
    order (what each says of them may differ: the page has no Ctrl-D)."""
    page_help = PAGE_HELP.search((STATIC / "texts.js").read_text())
    assert page_help is not None
    commands = COMMAND.findall(HELP)
    assert len(commands) >= 6 and "/users [ROOM]" in commands
    assert COMMAND.findall(page_help[1]) == commands
