"""The server's settings, and how they are read from the command line and the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from . import handshakes, protocol
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


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"  # where to listen (main() passes it to the server itself too)
    heartbeat: float | None = 60.0
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = protocol.DEFAULT_MAX_MESSAGE_CHARS
    max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES
    ping_rate: float = DEFAULT_PING_RATE  # pings a second a connection may send; 0: no limit
    compress: bool = False
    redis_url: str | None = None  # None: this process is the whole server
    redis_cluster: bool = False  # redis_url names a node of a Redis Cluster
    history: int = DEFAULT_PER_ROOM  # messages kept per room; 0 keeps none
    history_ttl: float = DEFAULT_TTL  # seconds after a room's last message
    history_max_bytes: int = DEFAULT_MAX_BYTES  # across rooms, without Redis
    rate_limit: float = 10.0  # requests per second per connection; 0 turns it off
    rate_burst: int = 20
    max_connections: int = 10_000  # per process; 0 turns it off
    max_connections_per_ip: int = 256  # per client address; 0 turns it off
    handshake_timeout: float = handshakes.DEFAULT_TIMEOUT  # 0 turns it off
    http_lifetime: float = handshakes.DEFAULT_LIFETIME  # of plain HTTP; 0 turns it off
    max_pending: int = handshakes.DEFAULT_MAX_PENDING  # not yet WebSockets; 0 turns it off
    max_pending_per_ip: int = handshakes.DEFAULT_MAX_PER_ADDRESS  # per peer; 0 turns it off
    room_changes: float = DEFAULT_ROOM_CHANGES  # a minute per client address; 0 turns it off
    trusted_proxies: tuple[Network, ...] = ()
    allowed_origins: tuple[str, ...] = ()  # besides the server's own; "*" allows all
    server_names: tuple[str, ...] = ()  # names of this server, besides loopback (Origin)
    tls_cert: str | None = None
    tls_key: str | None = None
    metrics_from: tuple[Network, ...] = (parse_network("127.0.0.0/8"), parse_network("::1"))
    metrics_port: int | None = None  # also serve /metrics and /healthz there


ENV_PREFIX: Final = "AIOHTTP_CHAT_"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS: Final = ("text", "json")
LOOPS: Final = ("auto", "uvloop", "asyncio")
N = TypeVar("N", int, float)


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


REDIS_SCHEMES: Final = ("redis", "rediss", "unix")


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


def _shown(default: object) -> str:
    """A default as a person writes it on the command line, not as Python prints it."""
    if default is None or default == ():
        return "none"
    if isinstance(default, tuple | list):
        return ", ".join(map(str, default))
    return str(default)


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


class _Repeated(argparse.Action):
    """Repeatable: each use adds a value; the first use replaces the environment's list."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = getattr(namespace, self.dest)
        items = [] if given is self.default else list(given)
        setattr(namespace, self.dest, (*items, values))


def _each(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    """A comma-separated list of `kind`, for an environment variable's value."""

    def parse(text: str) -> tuple[Any, ...]:
        return tuple(kind(item) for item in text.split(",") if item.strip())

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _server_name(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    if not name or any(c in name for c in "/:@ ") or "://" in text:
        raise argparse.ArgumentTypeError(f"a server name is a host name, got {text}")
    return name


def _heartbeat_seconds(text: str) -> float | None:
    return _not_negative(float, "off")(text) or None


def _environment_name(flag: str) -> str:
    """The environment twin of an option: `--max-connections` is AIOHTTP_CHAT_MAX_CONNECTIONS."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("aiohttp_chat.server"),
        description="WebSocket chat server with rooms and nicknames (/chat) and an echo (/echo).",
        epilog="Every option can also be set with the environment variable named in brackets; "
        "a command-line option wins over the environment.",
    )
    defaults = Settings()

    def option(flag: str, help: str, default: object, **kwargs: Any) -> None:
        env = _environment_name(flag)
        if (raw := os.environ.get(env)) is not None:
            kind = kwargs.get("type")
            if kwargs.get("action") is _Repeated:
                kind = _each(kind or str)
            default = _from_environment(env, raw, kind, kwargs.get("choices"))
        shown = _shown(default).replace("%", "%%")  # (argparse formats help with %)
        parser.add_argument(
            flag, default=default, help=f"{help} (default: {shown}) [{env}]", **kwargs
        )

    option("--host", "address to listen on", "0.0.0.0")
    option("--port", "TCP port to listen on; 0 takes any free one", 8080, type=_port(0))
    option(
        "--heartbeat",
        "seconds between pings; a peer silent for a whole interval is dropped; 0 turns it off",
        defaults.heartbeat,
        type=_heartbeat_seconds,
    )
    option(
        "--max-frame-bytes",
        "largest frame accepted; a larger one closes the connection with 1009",
        defaults.max_frame_bytes,
        type=_positive(int),
    )
    option(
        "--max-message-chars",
        "longest chat message, in characters",
        defaults.max_message_chars,
        type=_positive(int),
    )
    option(
        "--max-outbound-bytes",
        "unsent data a peer may have queued; past it the peer is closed with 1008 Too slow",
        defaults.max_outbound_bytes,
        type=_positive(int),
    )

    option(
        "--ping-rate",
        f"pings a second a client may send, sustained (after {PING_BURST} at once); more go "
        f"unanswered, and more than {FLOOD_REFUSALS} of those within {FLOOD_WINDOW:g} s close it "
        f"with 1008 {protocol.FLOODING_REASON}; 0 answers every ping",
        defaults.ping_rate,
        type=_not_negative(float, "no limit"),
    )

    def switch(flag: str, help: str) -> None:
        """An on/off option, off by default; its environment twin takes 1 or 0."""
        env = _environment_name(flag)
        parser.add_argument(
            flag,
            action=argparse.BooleanOptionalAction,
            default=_from_environment(env, os.environ.get(env, "0"), _switch, None),
            help=f"{help} (default: off) [{env}=1]",
        )

    switch("--compress", "offer permessage-deflate (costs CPU and memory per client)")
    option(
        "--history",
        "chat messages kept per room for the history request; 0 keeps none",
        defaults.history,
        type=_not_negative(int, "none"),
    )
    option(
        "--history-ttl",
        "seconds a room's history is kept after its last message",
        defaults.history_ttl,
        type=_positive(float),
    )
    option(
        "--history-max-bytes",
        "message data kept across all rooms; past it the rooms idle longest are forgotten "
        "(without --redis-url; Redis is bounded by its own maxmemory)",
        defaults.history_max_bytes,
        type=_positive(int),
    )
    option(
        "--rate-limit",
        "chat requests per second a connection may make, sustained; 0 turns the limit off",
        defaults.rate_limit,
        type=_not_negative(float, "off"),
    )
    option(
        "--rate-burst",
        "requests a connection may make at once before the rate applies",
        defaults.rate_burst,
        type=_positive(int),
    )
    option(
        "--max-connections",
        "open WebSockets this process accepts; more are answered 503; 0 turns the cap off",
        defaults.max_connections,
        type=_not_negative(int, "off"),
    )
    option(
        "--max-connections-per-ip",
        "open WebSockets from one client address; more are answered 429; 0 turns it off",
        defaults.max_connections_per_ip,
        type=_not_negative(int, "off"),
    )
    option(
        "--room-changes",
        f"rooms one client address may enter a minute (new chat connections and join_room), "
        f"across its connections, after {ROOM_CHANGE_BURST} at once; 0 turns the limit off",
        defaults.room_changes,
        type=_not_negative(float, "off"),
    )
    option(
        "--handshake-timeout",
        "seconds a new connection has to complete its request, and an HTTP connection its "
        "next one after a second more of keep-alive; 0 turns it off",
        defaults.handshake_timeout,
        type=_not_negative(float, "off"),
    )
    option(
        "--http-lifetime",
        "seconds a connection that stays plain HTTP (not a WebSocket) is kept, however busy; "
        "0 turns it off",
        defaults.http_lifetime,
        type=_not_negative(float, "off"),
    )
    option(
        "--max-pending",
        "connections not yet WebSockets (HTTP requests, handshakes under way) this process "
        "holds; more are answered 503 at once; 0 turns the cap off",
        defaults.max_pending,
        type=_not_negative(int, "off"),
    )
    option(
        "--max-pending-per-ip",
        "connections not yet WebSockets from one peer address (a trusted proxy excepted); "
        "more are answered 429 at once; 0 turns it off",
        defaults.max_pending_per_ip,
        type=_not_negative(int, "off"),
    )
    option(
        "--trusted-proxy",
        "a reverse proxy (CIDR) whose X-Forwarded-For names the client; repeatable "
        "(comma-separated in the environment)",
        defaults.trusted_proxies,
        type=_network,
        action=_Repeated,
        metavar="CIDR",
    )
    option(
        "--allowed-origin",
        "a web page origin (https://host[:port]) whose pages may connect, besides the "
        "server's own; * allows all; repeatable (comma-separated in the environment)",
        defaults.allowed_origins,
        type=_origin,
        action=_Repeated,
        metavar="ORIGIN",
    )
    option(
        "--server-name",
        "a name of this server, as its pages are reached (chat.example.com): its own page's "
        "Origin is recognised only for those, loopback names and IP addresses; repeatable "
        "(comma-separated in the environment)",
        defaults.server_names,
        type=_server_name,
        action=_Repeated,
        metavar="NAME",
    )
    option("--tls-cert", "certificate chain (PEM) to serve https and wss", None, metavar="FILE")
    option("--tls-key", "private key (PEM) of --tls-cert", None, metavar="FILE")
    option(
        "--redis-url",
        "Redis shared by several server processes, e.g. redis://127.0.0.1:6379/0; "
        "without it this process is the whole server",
        None,
        type=_redis_url,
    )
    switch(
        "--redis-cluster",
        "--redis-url names a node of a Redis Cluster (7 or newer): keys and channels spread "
        "over its shards, with sharded pub/sub",
    )
    option(
        "--workers",
        "server processes to run on this host and port (SO_REUSEPORT); above 1 needs --redis-url",
        1,
        type=_positive(int),
    )
    option(
        "--metrics-from",
        "a network (CIDR) whose clients may read /metrics; others get 403; repeatable "
        "(comma-separated in the environment)",
        defaults.metrics_from,
        type=_network,
        action=_Repeated,
        metavar="CIDR",
    )
    option(
        "--metrics-port",
        "also serve /metrics and /healthz on this port; with --workers N, worker i uses "
        "PORT+i, so that each is its own Prometheus target",
        None,
        type=_port(1),
        metavar="PORT",
    )
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    option(
        "--loop",
        "event loop: uvloop delivers about 10%% more per CPU-second; auto takes it if installed",
        "auto",
        type=str.lower,
        choices=LOOPS,
    )
    option("--log-level", "log level", "INFO", type=str.upper, choices=LOG_LEVELS)
    option(
        "--log-format",
        "text for people, json (one object per line) for log shippers",
        "text",
        type=str.lower,
        choices=LOG_FORMATS,
    )
    return parser


class InvalidEnvironment:
    """An environment variable's value that its option refuses; reported once parsed."""

    def __init__(self, env: str, raw: str, reason: str) -> None:
        self.env, self.raw, self.reason = env, raw, reason

    def __str__(self) -> str:
        return f"{self.env}={self.raw}"

    def error(self) -> str:
        return f"environment variable {self.env}={self.raw!r}: {self.reason}"


def _from_environment(
    env: str, raw: str, kind: Callable[[str], object] | None, choices: Iterable[object] | None
) -> object:
    """`raw` converted as its option's own value would be, or why it cannot be."""
    try:
        value = raw if kind is None else kind(raw)
    except argparse.ArgumentTypeError as exc:
        return InvalidEnvironment(env, raw, str(exc))
    except ValueError:
        name = getattr(kind, "__name__", "a")
        return InvalidEnvironment(env, raw, f"invalid {name} value")
    if choices is not None and value not in choices:
        listed = ", ".join(map(str, choices))
        return InvalidEnvironment(env, raw, f"invalid choice (choose from {listed})")
    return value


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("must be 1 or 0 (true/false, yes/no, on/off)")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse `argv`; an environment variable with a bad value, not overridden, is an error."""
    args = parser.parse_args(argv)
    for value in vars(args).values():
        if isinstance(value, InvalidEnvironment):
            parser.error(value.error())
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        heartbeat=args.heartbeat,
        max_frame_bytes=args.max_frame_bytes,
        max_message_chars=args.max_message_chars,
        max_outbound_bytes=args.max_outbound_bytes,
        ping_rate=args.ping_rate,
        compress=args.compress,
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
        history=args.history,
        history_ttl=args.history_ttl,
        history_max_bytes=args.history_max_bytes,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        max_connections=args.max_connections,
        max_connections_per_ip=args.max_connections_per_ip,
        room_changes=args.room_changes,
        handshake_timeout=args.handshake_timeout,
        http_lifetime=args.http_lifetime,
        max_pending=args.max_pending,
        max_pending_per_ip=args.max_pending_per_ip,
        trusted_proxies=tuple(args.trusted_proxy),
        allowed_origins=tuple(args.allowed_origin),
        server_names=tuple(args.server_name),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        metrics_from=tuple(args.metrics_from),
        metrics_port=args.metrics_port,
    )
