"""What keeps one client from drowning a room or exhausting the server.

- `RateLimit`: one connection's requests, a token bucket (a burst, then a sustained rate), as
  ergo's fakelag does: no timer, just `time.monotonic()` on each request. A connection that
  keeps going after being refused is flooding and gets closed.
- `Admission`: who may open a WebSocket at all, decided before the upgrade: the Origin rule,
  the connection caps (per process and per client address), and the client's address when it
  comes through trusted proxies. It also keeps each address's budget of room changes: every
  arrival in a room (a new chat connection, a `join_room`) costs each member a broadcast, so
  20 clients each within their request rate could make a room hear 176 events a second.

Plain state and functions of the addresses they are given, and of the time, given or read
from `time.monotonic()`; the views call them. Per-address limits count an IPv6 client by its
/64 (`address_key`).
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from yarl import URL

from . import protocol

FLOOD_REFUSALS: Final = 20  # more refusals than this ...
FLOOD_WINDOW: Final = 10.0  # ... within this many seconds is flooding
DEFAULT_ROOM_CHANGES: Final = 60  # a minute, per client address ...
ROOM_CHANGE_BURST: Final = 10  # ... after this many at once
MAX_CREDIT: Final = 60.0  # seconds of the server's own waiting a bucket may be credited for
CREDIT_KEPT: Final = 1.0  # seconds without a request after which that credit is gone

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimit:
    """A token bucket: `burst` requests at once, `rate` per second sustained."""

    __slots__ = ("_refused", "burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), now
        self._refused: deque[float] | None = None  # when requests were refused, lately

    def allow(self, now: float) -> bool:
        """Whether a request made at `now` may be carried out (it takes a token)."""
        elapsed, tokens = now - self.stamp, self.tokens
        if tokens < self.burst:
            tokens = min(self.burst, tokens + elapsed * self.rate)
        elif elapsed > CREDIT_KEPT:  # credit from `served`: for the requests queued meanwhile
            tokens = float(self.burst)
        self.stamp = now
        if tokens >= 1:
            self.tokens = tokens - 1
            return True
        self.tokens = tokens
        if self._refused is None:
            self._refused = deque(maxlen=FLOOD_REFUSALS + 1)
        self._refused.append(now)
        return False

    def wait(self, now: float) -> float:
        """Seconds until a request made at `now` would be allowed (0: at once), for a client
        that paces itself instead of being refused."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def full(self, now: float) -> bool:
        """Whether the bucket is full at `now` (taking nothing)."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst

    def served(self, now: float) -> None:
        """The request `allow` let through last was answered at `now`. While the server was
        busy with it (waiting for Redis, say), the client's next requests queued up unread;
        that time refills the bucket beyond its burst, so that a client within its rate is
        not refused when the server catches up on them all at once."""
        credit = self.tokens + (now - self.stamp) * self.rate
        self.tokens = min(credit, self.burst + MAX_CREDIT * self.rate)
        self.stamp = now

    def flooding(self) -> bool:
        """More than `FLOOD_REFUSALS` requests refused within `FLOOD_WINDOW` seconds."""
        refused = self._refused
        return (
            refused is not None
            and len(refused) > FLOOD_REFUSALS
            and refused[-1] - refused[0] <= FLOOD_WINDOW
        )


class Refusal(NamedTuple):
    status: int
    text: str
    headers: dict[str, str]
    reason: str  # as /metrics names it (`metrics.REFUSALS`)


_RETRY: Final = {"Retry-After": str(protocol.RETRY_AFTER)}
FULL: Final = Refusal(503, protocol.SERVER_FULL, _RETRY, "full")
TOO_MANY_FROM_ADDRESS: Final = Refusal(429, protocol.TOO_MANY_CONNECTIONS, {}, "per_address")
FOREIGN_ORIGIN: Final = Refusal(403, protocol.ORIGIN_NOT_ALLOWED, {}, "origin")
ROOM_CHANGES: Final = Refusal(429, protocol.TOO_MANY_CONNECTIONS, {}, "room_changes")
# Before a byte of the request is read (`handshakes.py`): too many connections still pending.
PENDING_FULL: Final = Refusal(503, protocol.SERVER_FULL, _RETRY, "pending_full")
PENDING_FROM_ADDRESS: Final = Refusal(429, protocol.TOO_MANY_CONNECTIONS, {}, "pending_per_address")


class Admission:
    """The WebSockets open on this process, by client address, and who may open one more.

    `max_connections` and `max_per_address` of 0 turn those caps off. `allowed_origins`
    holds normalized origins (`https://chat.example.com`), or `*` for all.
    """

    def __init__(
        self,
        *,
        max_connections: int = 0,
        max_per_address: int = 0,
        trusted_proxies: Iterable[Network] = (),
        allowed_origins: Iterable[str] = (),
        room_changes: float = 0,
        server_names: Iterable[str] = (),
    ) -> None:
        self.max_connections, self.max_per_address = max_connections, max_per_address
        self.server_names = frozenset(name.strip().lower().rstrip(".") for name in server_names)
        self.trusted_proxies = tuple(trusted_proxies)
        self.allowed_origins = frozenset(map(normalize_origin, allowed_origins))
        self.room_changes = room_changes  # a minute, per address; 0: no budget
        self.open = 0
        self.by_address: dict[str, int] = {}
        self._budgets: dict[str, RateLimit] = {}  # room changes, kept while not refilled
        self._since_pruned = 0

    def client_address(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address: the peer's, or from a trusted proxy the right-most address
        in `X-Forwarded-For` that is not itself a trusted proxy. `forwarded_for` holds every
        line of that header, in order: read as one list, as RFC 9110 says to, since a proxy
        may add a line of its own after the client's instead of appending to it."""
        address = peer or "unknown"
        if not forwarded_for or not self._trusted(address):
            return address
        for hop in reversed(",".join(forwarded_for).split(",")):
            address = hop.strip()
            if not self._trusted(address):
                return address
        return address  # every hop a trusted proxy: the farthest one

    def refusal(
        self,
        address: str,
        origin: str | None,
        host: str | None,
        *,
        enters_room: bool = False,
        local: str | None = None,
        now: float | None = None,
    ) -> Refusal | None:
        """Why a WebSocket from `address` may not open now, or None if it may (then one that
        `enters_room` has taken a room change from the address's budget). `local` is the
        address the connection came in on."""
        if origin is not None and not self._origin_allowed(origin, host, local):
            return FOREIGN_ORIGIN
        if self.max_connections and self.open >= self.max_connections:
            return FULL
        key = address_key(address)
        if self.max_per_address and self.by_address.get(key, 0) >= self.max_per_address:
            return TOO_MANY_FROM_ADDRESS
        now = time.monotonic() if now is None else now
        if enters_room and not self.change_room(address, now):
            return ROOM_CHANGES
        return None

    def change_room(self, address: str, now: float) -> bool:
        """Take a room change from `address`'s budget; False if it has none left."""
        if not self.room_changes:
            return True
        key = address_key(address)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = RateLimit(self.room_changes / 60, ROOM_CHANGE_BURST, now)
        return budget.allow(now)

    def opened(self, address: str) -> None:
        self.open += 1
        count(self.by_address, address, 1)
        self._since_pruned += 1
        if self._since_pruned >= 1024:  # now and then, forget the budgets that refilled
            self._since_pruned = 0
            self.prune(time.monotonic())

    def prune(self, now: float) -> None:
        """Forget the room-change budgets that are full again, of addresses with no
        connection: forgetting one sooner would let a client reset it by reconnecting."""
        refilled = [
            address
            for address, budget in self._budgets.items()
            if address not in self.by_address and budget.full(now)
        ]
        for address in refilled:
            del self._budgets[address]

    def closed(self, address: str) -> None:
        self.open -= 1
        count(self.by_address, address, -1)

    def _trusted(self, address: str) -> bool:
        return bool(self.trusted_proxies) and within(address, self.trusted_proxies)

    def _origin_allowed(self, origin: str, host: str | None, local: str | None) -> bool:
        if "*" in self.allowed_origins or normalize_origin(origin) in self.allowed_origins:
            return True
        return host is not None and same_host(origin, host) and self.own_host(host, local)

    def own_host(self, host: str, local: str | None) -> bool:
        """Whether `host` (a `Host` header) names this server: a loopback name or address,
        the address the connection came in on, or one of `server_names`.

        `Origin` equal to `Host` alone proves nothing: a page of evil.example whose name
        is then pointed at this server (DNS rebinding) sends `Origin: http://evil.example:8080`
        with `Host: evil.example:8080`. A name is ours only if we were told so."""
        try:
            name = (URL(f"http://{host.strip()}").host or "").lower().rstrip(".")
        except ValueError:
            return False
        if name == "localhost" or name.endswith(".localhost") or name in self.server_names:
            return True  # *.localhost never leaves the machine (RFC 6761, and browsers)
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False  # a name we were not given
        return ip.is_loopback or (local is not None and _same_ip(ip, local))


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, other: str) -> bool:
    """Whether `ip` is the address `other`, an IPv4 address mapped to IPv6 included."""
    try:
        theirs = ipaddress.ip_address(other)
    except ValueError:
        return False
    unmapped = [getattr(a, "ipv4_mapped", None) or a for a in (ip, theirs)]
    return unmapped[0] == unmapped[1]


def address_key(address: str) -> str:
    """What the limits per client address count by: the address, but for IPv6 its /64,
    which one subscriber is given whole (RFC 6177), so that a client cannot pass the caps
    by using its 2**64 addresses in turn. An IPv4-mapped address counts as the IPv4 one."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def count(by_address: dict[str, int], address: str, change: int) -> None:
    """Add `change` (1 or -1) to the count of `address`'s key, forgetting it at 0."""
    key = address_key(address)
    left = by_address.get(key, 0) + change
    if left:
        by_address[key] = left
    else:
        del by_address[key]


def within(address: str, networks: Iterable[Network]) -> bool:
    """Whether `address` (an IP address as text) is in one of `networks`."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def normalize_origin(origin: str) -> str:
    """An origin as browsers send it: lowercase, no trailing slash, `*` as it is."""
    return origin.strip().lower().rstrip("/")


def same_host(origin: str, host: str) -> bool:
    """Whether `origin`'s host and port are the request's `Host` (the server's own page).

    A `Host` without a port means the origin's scheme's default port."""
    try:
        page = URL(origin.strip())
        served = URL(f"{page.scheme or 'http'}://{host.strip()}")
    except ValueError:
        return False
    if not page.host or not page.scheme:
        return False
    return (page.host.lower(), page.port) == ((served.host or "").lower(), served.port)


def parse_network(text: str) -> Network:
    """A CIDR (`10.0.0.0/8`) or a single address, as a network."""
    return ipaddress.ip_network(text.strip(), strict=False)
