"""The server's settings, each declared once, as a field (`options.py`): `Settings` for the
application, `ProcessSettings` for `server.main`. The command line (`build_parser`), the
environment twins (`parse_args`) and the README's table of options (`option_table`) are
derived from them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar
from urllib.parse import urlsplit

from . import handshakes, options, presence, protocol
from .cli import command_name
from .frames import DEFAULT_MAX_OUTBOUND_BYTES, DEFAULT_PING_RATE, PING_BURST
from .history import DEFAULT_MAX_BYTES, DEFAULT_PER_ROOM, DEFAULT_TTL
from .limits import (
    DEFAULT_ROOM_CHANGES,
    FLOOD_REFUSALS,
    FLOOD_WINDOW,
    ROOM_CHANGE_BURST,
    Network,
    normalize_origin,
    parse_network,
)
from .options import listed, switch, value

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS: Final = ("text", "json")
LOOPS: Final = ("auto", "uvloop", "asyncio")
REDIS_SCHEMES: Final = ("redis", "rediss", "unix")
N = TypeVar("N", int, float)
T = TypeVar("T")
DEFAULT_HEARTBEAT: Final[float | None] = 60.0


# -------------------------------------------------------------------------------- values


def _positive(kind: Callable[[str], N]) -> Callable[[str], N]:
    def parse(text: str) -> N:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _not_negative(kind: Callable[[str], N], zero: str) -> Callable[[str], N]:
    def parse(text: str) -> N:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 ({zero}) or more, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _port(lowest: int) -> Callable[[str], int]:
    """A TCP port from `lowest` (0: any free one) to 65535; the kernel would wrap 70000."""

    def parse(text: str) -> int:
        value = int(text)
        if not lowest <= value <= 65535:
            any_free = " (0 takes any free port)" if lowest == 0 else ""
            raise argparse.ArgumentTypeError(
                f"must be a port from {lowest} to 65535{any_free}, got {text}"
            )
        return value

    parse.__name__ = "port"  # what argparse names in its message
    return parse


def _redis_url(text: str) -> str:
    """A URL redis-py can connect to, checked at start rather than at the first request."""
    parts = urlsplit(text)
    if parts.scheme not in REDIS_SCHEMES or not (parts.hostname or parts.path):
        raise argparse.ArgumentTypeError(
            f"must be a redis://HOST[:PORT][/DB], rediss:// or unix:// URL, got {text!r}"
        )
    try:
        parts.port  # noqa: B018 (it raises for a port out of range or not a number)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, in {text!r}") from None
    return text


def _network(text: str) -> Network:
    try:
        return parse_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _origin(text: str) -> str:
    origin = normalize_origin(text)
    if origin != "*" and "://" not in origin:
        raise argparse.ArgumentTypeError(f"an origin is scheme://host[:port] or *, got {text}")
    return origin


def _server_name(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    if not name or any(c in name for c in "/:@ ") or "://" in text:
        raise argparse.ArgumentTypeError(f"a server name is a host name, got {text}")
    return name


def _heartbeat_seconds(text: str) -> float | None:
    return _not_negative(float, "off")(text) or None


_heartbeat_seconds.__name__ = "float"


# -------------------------------------------------------------------------------- declared


@dataclass(frozen=True, slots=True)
class Settings:
    """What the application (`server.create_app`) reads; tests make one directly."""

    host: str = value(
        "0.0.0.0",
        "address to listen on",
        str,  # (`server.listening` reads it from here, for the metrics port too)
    )
    heartbeat: float | None = value(
        DEFAULT_HEARTBEAT,
        "seconds between pings; a peer silent for a whole interval is dropped; 0 turns it off",
        _heartbeat_seconds,
        readme="seconds between pings; a peer silent for a whole interval (no pong, no message) "
        "is dropped, one to two intervals after its last sign of life; `0` turns it off",
    )
    max_frame_bytes: int = value(
        64 * 1024,
        "largest frame accepted; a larger one closes the connection with 1009",
        _positive(int),
        readme="a larger frame closes the connection with 1009",
    )
    max_message_chars: int = value(
        protocol.DEFAULT_MAX_MESSAGE_CHARS,
        "longest chat message, in characters",
        _positive(int),
        readme="longest chat message, in characters (code points)",
    )
    max_outbound_bytes: int = value(
        DEFAULT_MAX_OUTBOUND_BYTES,
        "unsent data a peer may have queued; past it the peer is closed with 1008 Too slow",
        _positive(int),
        readme="unsent data a client may have queued, the answers to its pings included; past "
        "it the client is closed with 1008 `Too slow` (cut if it does not take the close within "
        "2 s) and its room hears `left` with `shame: true`",
    )
    ping_rate: float = value(
        DEFAULT_PING_RATE,
        f"pings a second a client may send, sustained (after {PING_BURST} at once); more go "
        f"unanswered, and more than {FLOOD_REFUSALS} of those within {FLOOD_WINDOW:g} s close it "
        f"with 1008 {protocol.FLOODING_REASON}; 0 answers every ping",
        _not_negative(float, "no limit"),
        readme=f"pings a second a client may send, sustained, after {PING_BURST} at once; only "
        f"the latest of those that arrive together is answered, those over the rate are not, and "
        f"more than {FLOOD_REFUSALS} of those within {FLOOD_WINDOW:g} s close the connection with "
        f"1008 `{protocol.FLOODING_REASON}`; `0` answers every ping",
    )
    compress: bool = switch(
        "offer permessage-deflate (costs CPU and memory per client)",
        readme="offer permessage-deflate; chat messages are small, and per-client deflate "
        "multiplies CPU and memory",
    )
    history: int = value(
        DEFAULT_PER_ROOM,
        "chat messages kept per room for the history request; 0 keeps none",
        _not_negative(int, "none"),
        readme="chat messages kept per room for `history`; `0` keeps none (messages still get ids)",
    )
    history_ttl: float = value(
        DEFAULT_TTL,
        "seconds a room's history is kept after its last message",
        _positive(float),
        readme="seconds a room's history is kept after its last message, also once the room is "
        "empty",
    )
    history_max_bytes: int = value(
        DEFAULT_MAX_BYTES,
        "message data kept across all rooms; past it the rooms idle longest are forgotten "
        "(without --redis-url; Redis is bounded by its own maxmemory)",
        _positive(int),
        readme="memory the history may hold across all rooms, counted as Python holds it (the "
        "strings, the tuples, each room's objects and its place in the index; "
        "`aiohttp_chat_history_bytes` shows it); past it the rooms idle longest are forgotten "
        "first. Without Redis only: with Redis, history lives there, bounded by Redis's own "
        "`maxmemory` (see [Scaling out](#scaling-out))",
    )
    rate_limit: float = value(
        10.0,
        "chat requests per second a connection may make, sustained; 0 turns the limit off",
        _not_negative(float, "off"),
        readme="requests per second a connection may make, sustained (a token bucket); over it: "
        f"`{protocol.RATE_LIMITED}`; more than {FLOOD_REFUSALS} refusals within "
        f"{FLOOD_WINDOW:g} s close the connection with 1008 `{protocol.FLOODING_REASON}`; `0` "
        "turns it off",
    )
    rate_burst: int = value(
        20,
        "requests a connection may make at once before the rate applies",
        _positive(int),
    )
    max_connections: int = value(
        10_000,
        "open WebSockets this process accepts; more are answered 503; 0 turns the cap off",
        _not_negative(int, "off"),
        readme="open WebSockets this process accepts; more are answered `503` with "
        "`Retry-After: 5`; `0` accepts as many as its open files allow. The server raises its "
        "soft limit of open files to the hard one at start and lowers this cap to what it can "
        "really open (it says so in the log), so that `/healthz` still answers when the chat is "
        "full",
    )
    max_connections_per_ip: int = value(
        256,
        "open WebSockets from one client address; more are answered 429; 0 turns it off",
        _not_negative(int, "off"),
        readme="open WebSockets from one client address (an IPv6 client counts by its /64, as "
        "every per-address limit does); more are answered `429`; `0` turns it off",
    )
    room_changes: float = value(
        float(DEFAULT_ROOM_CHANGES),
        f"rooms one client address may enter a minute (new chat connections and join_room), "
        f"across its connections, after {ROOM_CHANGE_BURST} at once; 0 turns the limit off",
        _not_negative(float, "off"),
        readme="rooms one client address may enter a minute (new chat connections and "
        f"`join_room`), across all its connections, after {ROOM_CHANGE_BURST} at once (counted "
        "by each process: with `--workers N` or several nodes, each has its own budget); over it "
        f"`join_room` is answered `{protocol.ROOM_CHANGES_LIMITED}` and a new connection `429`; "
        "`0` turns it off",
    )
    announce_limit: int = value(
        presence.DEFAULT_ANNOUNCE_LIMIT,
        "members from which a room hears no joined and left (counting the one arriving or "
        "leaving; with Redis, on all the nodes); 0 always announces them",
        _not_negative(int, "always announce"),
        readme="members from which a room is quiet: it hears no `joined` and `left` (counting "
        "the one arriving or leaving; with Redis, across the nodes), so that filling a room of "
        "n does not cost n²/2 deliveries; chat messages, `nick_changed` and replies are told as "
        "ever, and `user_list` says who is there; `0` always announces them, as the original",
    )
    handshake_timeout: float = value(
        handshakes.DEFAULT_TIMEOUT,
        "seconds a new connection has to complete its request, and an HTTP connection its "
        "next one after a second more of keep-alive; 0 turns it off",
        _not_negative(float, "off"),
        readme="seconds a new connection has to send a complete request (and a TLS handshake to "
        "finish); it is cut otherwise, however slowly it sends. After an answer, an HTTP "
        "connection may stay idle for this plus a second (aiohttp's keep-alive closes it then), "
        "and is cut if it has neither read its answer nor sent its next request this long after "
        "that; `0` turns it off",
    )
    http_lifetime: float = value(
        handshakes.DEFAULT_LIFETIME,
        "seconds a connection that stays plain HTTP (not a WebSocket) is kept, however busy; "
        "0 turns it off",
        _not_negative(float, "off"),
        readme="seconds a connection that stays plain HTTP (the page, `/healthz`, `/metrics`) is "
        "kept, however busy, so that no client holds a pending slot for good; `0` turns it off",
    )
    max_pending: int = value(
        handshakes.DEFAULT_MAX_PENDING,
        "connections not yet WebSockets (HTTP requests, handshakes under way) this process "
        "holds; more are answered 503 at once; 0 turns the cap off",
        _not_negative(int, "off"),
        readme="connections that are not (yet) WebSockets (a request under way, the page, "
        "`/healthz`, on the chat's port and `--metrics-port`) this process holds; one more is "
        "answered `503` at once, before a byte of it is read; at most a quarter of the open "
        "files left after 256; `0` turns the cap off (and reserves no files for it)",
    )
    max_pending_per_ip: int = value(
        handshakes.DEFAULT_MAX_PER_ADDRESS,
        "connections not yet WebSockets from one peer address (a trusted proxy excepted); "
        "more are answered 429 at once; 0 turns it off",
        _not_negative(int, "off"),
        readme="the same, from one peer address (a trusted proxy excepted); one more is "
        "answered `429` at once; `0` turns it off",
    )
    trusted_proxies: tuple[Network, ...] = listed(
        (),
        "a reverse proxy (CIDR) whose X-Forwarded-For names the client",
        _network,
        metavar="CIDR",
        readme="a reverse proxy whose `X-Forwarded-For` names the client (the right-most "
        "address that is not itself a trusted proxy); from anyone else the header is ignored",
    )
    allowed_origins: tuple[str, ...] = listed(
        (),
        "a web page origin (https://host[:port]) whose pages may connect, besides the "
        "server's own; * allows all",
        _origin,
        metavar="ORIGIN",
        readme="a web page origin (`https://host[:port]`) whose pages may connect; `*` allows "
        "all; requests without `Origin` (terminal clients) and from the server's own pages are "
        "always accepted, others get `403`",
    )
    server_names: tuple[str, ...] = listed(
        (),
        "a name of this server, as its pages are reached (chat.example.com): its own page's "
        "Origin is recognised only for those, loopback names and IP addresses",
        _server_name,
        metavar="NAME",
        readme="a name this server's pages are reached by (`chat.example.com`, as a reverse "
        "proxy forwards it in `Host`); a page counts as the server's own only when its `Host` "
        "is one of these, a loopback name or address (`localhost`, `*.localhost`, `127.0.0.1`, "
        "`[::1]`), or the address the connection came in on, so that a DNS-rebinding page "
        "(`Origin` and `Host` both `evil.example:8080`) is refused",
    )
    redis_url: str | None = value(
        None,
        "Redis shared by several server processes, e.g. redis://127.0.0.1:6379/0; "
        "without it this process is the whole server",
        _redis_url,
        readme="Redis shared by several server processes (see [Scaling out](#scaling-out)), "
        "`redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, `rediss://` for TLS or `unix://PATH`; "
        "while it cannot be reached, the log says so at once and then once a minute, naming it "
        "(without its password); without it this process is the whole server",
    )
    redis_cluster: bool = switch(
        "--redis-url names a node of a Redis Cluster (7 or newer): keys and channels spread "
        "over its shards, with sharded pub/sub",
        readme="`--redis-url` names a node of a Redis Cluster (7 or newer): keys and channels "
        "spread over its shards, with sharded pub/sub (see [Scaling out](#scaling-out))",
    )
    metrics_from: tuple[Network, ...] = listed(
        (parse_network("127.0.0.0/8"), parse_network("::1")),
        "a network (CIDR) whose clients may read /metrics; others get 403",
        _network,
        metavar="CIDR",
        readme="networks whose clients may read `/metrics` (the client address, behind trusted "
        "proxies the forwarded one); others get `403`",
    )
    metrics_port: int | None = value(
        None,
        "also serve /metrics and /healthz on this port; with --workers N, worker i uses "
        "PORT+i, so that each is its own Prometheus target",
        _port(1),
        metavar="PORT",
        readme="also serve `/metrics` and `/healthz` on this port; with `--workers N`, worker i "
        "uses PORT+i",
    )


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    """What `server.main` reads around the application: how this process runs it (its port,
    workers, TLS, event loop and logging). Declared apart from `Settings` because no
    application needs them: a test serves one on any port, with its own loop and logs."""

    port: int = value(
        8080,
        "TCP port to listen on; 0 takes any free one",
        _port(0),
        readme="TCP port, 1–65535; `0` takes any free one, and the log says which (`Listening "  # noqa: RUF001
        "on 0.0.0.0:41234, the page at http://127.0.0.1:41234/`)",
    )
    workers: int = value(
        1,
        "server processes to run on this host and port (SO_REUSEPORT); above 1 needs --redis-url",
        _positive(int),
        readme="server processes on this host and port (SO_REUSEPORT); above 1 needs `--redis-url`",
    )
    tls_cert: str | None = value(
        None,
        "certificate chain (PEM) to serve https and wss",
        str,
        metavar="FILE",
        readme="serve `https` and `wss` on the same port with this certificate chain (PEM) and "
        "the key of `--tls-key`",
    )
    tls_key: str | None = value(
        None,
        "private key (PEM) of --tls-cert",
        str,
        metavar="FILE",
        readme="the private key (PEM) of `--tls-cert`; the two go together",
    )
    loop: str = value(
        "auto",
        "event loop: uvloop delivers about 10% more per CPU-second; auto takes it if installed",
        str.lower,
        choices=LOOPS,
        readme="event loop: `uvloop` (installed with the server on Linux and macOS) delivers "
        "about 10% more per CPU-second and accepts connections faster; `auto` takes it when "
        "installed, `asyncio` is the standard library's",
    )
    log_level: str = value(
        "INFO",
        "log level",
        str.upper,
        choices=LOG_LEVELS,
        readme="`INFO` logs one line per connect and disconnect, never per message; `DEBUG` logs "
        "every request",
    )
    log_format: str = value(
        "text",
        "text for people, json (one object per line) for log shippers",
        str.lower,
        choices=LOG_FORMATS,
        readme="`json`: one JSON object per line (`time`, `level`, `logger`, `message`, and "
        "`address`, `nick`, `room` for a connection's lines), for log shippers",
    )
    reuse_port: bool = switch(None)  # each of --workers N's processes, told by its supervisor


SETTINGS_OPTIONS: Final = options.declared(Settings)
PROCESS_OPTIONS: Final = options.declared(ProcessSettings)
OPTIONS: Final = SETTINGS_OPTIONS + PROCESS_OPTIONS


def build_parser() -> argparse.ArgumentParser:
    """The command line of `server.main`, one option per declared field."""
    parser = argparse.ArgumentParser(
        prog=command_name("aiohttp_chat.server"),
        description="WebSocket chat server with rooms and nicknames (/chat) and an echo (/echo).",
        epilog="Every option can also be set with the environment variable named in brackets; "
        "a command-line option wins over the environment.",
    )
    options.add_group(parser, "chat server", SETTINGS_OPTIONS)
    options.add_group(parser, "this process", PROCESS_OPTIONS)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`argv` parsed (`options.parse`); options that cannot work together are a usage error."""
    args = options.parse(parser, argv, OPTIONS)
    _check(parser, args)
    return args


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options each valid that cannot work together (--tls-cert and --tls-key: `process`)."""
    if args.workers > 1 and not args.redis_url:
        parser.error("--workers above 1 needs --redis-url: processes share their state in Redis")
    if args.workers > 1 and args.port == 0:
        parser.error("--workers above 1 needs a fixed --port: they share it (SO_REUSEPORT)")


def settings_from(args: argparse.Namespace) -> Settings:
    """The application's settings out of `parse_args`'s answer."""
    return Settings(**{each.name: getattr(args, each.name) for each in SETTINGS_OPTIONS})


def process_from(args: argparse.Namespace) -> ProcessSettings:
    """This process's settings out of `parse_args`'s answer."""
    return ProcessSettings(**{each.name: getattr(args, each.name) for each in PROCESS_OPTIONS})


def option_table() -> str:
    """The README's table of options, in Markdown (`tests/test_config.py` compares them)."""
    return options.table(OPTIONS)
