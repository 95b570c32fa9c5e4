"""The operator's endpoints: `/healthz` for load balancers, `/metrics` for Prometheus.

Plain HTTP, never rate limited and never logged per call (the server keeps no access log).
`/metrics` answers only clients whose address (behind trusted proxies, the forwarded one) is
in `metrics_from`; `/healthz` answers everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .limits import Admission, Network, within

Health = Callable[[], tuple[bool, dict[str, Any]]]  # (can serve, the body to answer)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def health_report(
    connections: int, rooms: int, redis_up: bool | None
) -> tuple[bool, dict[str, Any]]:
    """Whether a server with these figures can serve now, and what /healthz says: it can
    unless the Redis it depends on (`redis_up` None: none) is unreachable."""
    body: dict[str, Any] = {"status": "ok", "connections": connections, "rooms": rooms}
    if redis_up is None:
        return True, body
    body["redis"] = "ok" if redis_up else "unreachable"
    if not redis_up:
        body["status"] = "degraded"
    return redis_up, body


def healthz(health: Health) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        ok, body = health()
        return web.json_response(body, status=200 if ok else 503)

    return handle


def metrics(
    registry: CollectorRegistry, admission: Admission, allowed: Iterable[Network]
) -> Handler:
    allowed = tuple(allowed)

    async def handle(request: web.Request) -> web.StreamResponse:
        address = admission.client_address(request.remote, forwarded_for(request))
        if not within(address, allowed):
            raise web.HTTPForbidden(text="Metrics are not served to your address.")
        body = generate_latest(registry)  # a few hundred series: cheap, once per scrape
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle


def forwarded_for(request: web.BaseRequest) -> list[str]:
    """Every `X-Forwarded-For` line of `request`, in order (see `Admission.client_address`)."""
    return request.headers.getall("X-Forwarded-For", [])
