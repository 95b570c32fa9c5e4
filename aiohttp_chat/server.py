"""The chat server: one aiohttp application with the `/chat` and `/echo` WebSocket views
(and the chat page at `/`, from `page.py`).

Run it with `python -m aiohttp_chat.server --help`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from prometheus_client import CollectorRegistry

from . import frames, logs, metrics, page, probes, process, protocol, utils, workers
from .chat import ChatSession, encode_failure
from .config import Settings, build_parser, parse_args, process_from, settings_from
from .endings import Ended, Ending
from .frames import ChatSocket, Outbox
from .handshakes import Handshakes
from .history import MemoryHistory
from .limits import Admission, RateLimit
from .metrics import Stats
from .rooms import LocalRooms, Rooms
from .tasks import Tasks
from .utils import Registry

if TYPE_CHECKING:  # imported for real only with --redis-url: a single server needs no Redis
    from .cluster import ClusterRooms  # noqa: F401 (named in a string below)

logger = logging.getLogger(__name__)

SETTINGS: Final = web.AppKey("settings", Settings)
ROOMS: Final = web.AppKey[Registry[ChatSocket]]("rooms")
ECHO_SOCKETS: Final = web.AppKey[set[ChatSocket]]("echo_sockets")
OUTBOX: Final = web.AppKey("outbox", Outbox)
CHAT_ROOMS: Final = web.AppKey("chat_rooms", Rooms)  # this process's, or over Redis
ADMISSION: Final = web.AppKey("admission", Admission)
HANDSHAKES: Final = web.AppKey("handshakes", Handshakes)
STATS: Final = web.AppKey("stats", Stats)
LIMITS: Final = web.AppKey[protocol.Message]("limits")  # as `connecting` announces them
REGISTRY: Final = web.AppKey("registry", CollectorRegistry)
CLUSTER: Final = web.AppKey["ClusterRooms"]("cluster")  # the same, only with --redis-url


# -------------------------------------------------------------------------------- views


async def _accept(request: web.Request, *, enters_room: bool) -> tuple[ChatSocket, str]:
    """Upgrade the request to a WebSocket and count it open (`Admission.closed` must follow);
    or refuse it before the upgrade: 426 for plain HTTP, 403, 429 or 503 by the limits.
    Returns the socket and the client's address."""
    app = request.app
    settings, admission = app[SETTINGS], app[ADMISSION]
    socket = ChatSocket(
        app[OUTBOX],
        max_msg_size=settings.max_frame_bytes,
        compress=settings.compress,
        timeout=frames.CLOSE_TIMEOUT,
    )
    if not socket.can_prepare(request).ok:
        raise web.HTTPUpgradeRequired(
            text="This endpoint speaks WebSocket only: connect with a WebSocket client.\n",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )
    headers = request.headers
    address = admission.client_address(request.remote, probes.forwarded_for(request))
    local = request.transport.get_extra_info("sockname") if request.transport else None
    refusal = admission.refusal(
        address,
        headers.get("Origin"),
        headers.get("Host"),
        enters_room=enters_room,
        local=local[0] if isinstance(local, tuple) else None,
    )
    if refusal is not None:
        logger.debug("Refused %s: %s", address, refusal.text)
        app[STATS].handshakes_refused[refusal.reason] += 1
        raise _REFUSED[refusal.status](text=refusal.text, headers=refusal.headers)
    admission.opened(address)
    try:
        await socket.prepare(request)
    except BaseException:
        admission.closed(address)
        raise
    app[HANDSHAKES].upgraded(request.transport)
    return socket, address


_REFUSED: Final[dict[int, type[web.HTTPError]]] = {
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,
}


async def ws_echo(request: web.Request) -> web.StreamResponse:
    """Answer every JSON text frame V with `{"echo": V}`."""
    socket, address = await _accept(request, enters_room=False)
    sockets, limit = request.app[ECHO_SOCKETS], _rate_limit(request.app[SETTINGS])
    try:
        sockets.add(socket)
        async for message in socket:
            if socket.is_control(message):
                if socket.ended is not None:  # one ping too many
                    break
                continue
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if not _within_rate(limit, socket, address, "echo"):
                if socket.ended is not None:
                    break
                reply = _ECHO_RATE_LIMITED
            elif message.type is WSMsgType.TEXT:
                reply = _echo(message.data)
            else:
                reply = protocol.encode(protocol.echo_error(protocol.BINARY_NOT_SUPPORTED))
            await socket.send_frame(reply, WSMsgType.TEXT)
    except ConnectionResetError:
        pass  # the peer vanished while we answered
    finally:
        sockets.discard(socket)
        request.app[ADMISSION].closed(address)
    return socket


def _echo(text: str) -> bytes:
    try:
        return protocol.encode(protocol.echo_reply(protocol.decode_exact(text)))
    except ValueError:
        return protocol.encode(protocol.echo_error(protocol.NOT_JSON))


def _rate_limit(settings: Settings) -> RateLimit | None:
    if not settings.rate_limit:
        return None
    return RateLimit(settings.rate_limit, settings.rate_burst, time.monotonic())


def _within_rate(limit: RateLimit | None, socket: ChatSocket, address: str, who: str) -> bool:
    """Whether one more request is within `limit`; if not, and the peer keeps going after
    refusals, it is dropped (then `socket.ended` says so), refused before any work is done
    for it."""
    if limit is None or limit.allow(time.monotonic()):
        return True
    if limit.flooding():
        logger.info("%s (%s) keeps flooding after refusals: closing", address, who)
        socket.drop(Ending.FLOODING)
    return False


async def ws_chat(request: web.Request) -> web.StreamResponse:
    """One chat connection: register it, answer its requests, unregister it, always."""
    socket, address = await _accept(request, enters_room=True)
    app = request.app
    try:
        rooms, settings = app[CHAT_ROOMS], app[SETTINGS]
        session = ChatSession(
            rooms,
            socket,
            "",
            max_message_chars=settings.max_message_chars,
            may_change_room=partial(_may_change_room, app[ADMISSION], address),
        )
        limit = _rate_limit(settings)
        message = _NO_MESSAGE
        try:
            if not await session.enter(protocol.Wish.from_query(request.query), app[LIMITS]):
                logger.warning("No free default nick in %s", session.room)
                reason = protocol.NICK_UNAVAILABLE_REASON.encode()
                await socket.end(WSCloseCode.TRY_AGAIN_LATER, reason)
                return socket
            _log_connected(address, session)
            while True:  # inline, not a helper coroutine: one frame less per idle connection
                message = await socket.receive()
                if socket.is_control(message):
                    if socket.ended is not None:  # one ping too many
                        break
                    continue
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break  # (`_ended` reads how: the peer's close frame, or none)
                if not _within_rate(limit, socket, address, session.nick):
                    if socket.ended is not None:
                        break
                    reply = _rate_limited(message, session.stats)
                elif message.type is WSMsgType.TEXT:
                    answer = await session.handle_text(message.data)
                    if limit is not None:  # the time it took was the server's, not theirs
                        limit.served(time.monotonic())
                    if answer is None:  # a chat message with Redis: answered once kept
                        continue
                    reply = answer
                else:
                    reply = _BINARY_REFUSED
                if not session.answer(reply):  # in order with the broadcasts queued for it
                    await session.answered()
        except Exception:  # a bug, never bad input: log it, end this connection only, cleanly
            logger.exception("Internal error serving %s (%s)", address, session.nick)
            await socket.end(WSCloseCode.INTERNAL_ERROR, b"Internal error")
        finally:
            if session.nick:  # else it never entered
                try:  # its last chat messages (kept by Redis) are heard before it leaves
                    async with asyncio.timeout(ANSWERED_GRACE):
                        await session.answered()
                except TimeoutError:
                    logger.warning("%s (%s) left with chat messages unanswered", address,
                                   session.nick)  # fmt: skip
                finally:
                    _ended(address, session, socket.peer_ended(message))
    finally:
        app[ADMISSION].closed(address)
    return socket


def _ended(address: str, session: ChatSession, ended: Ended) -> None:
    """Unregister a chat connection that ended, and count and log how (`endings.py`)."""
    # Only a close frame from the peer is a polite leave; anything else is shameful.
    session.leave(shame=ended.why is not Ending.POLITE)
    session.stats.disconnects[ended.why.value] += 1
    logger.info("%s (%s) %s, code %s", address, session.nick, ended.why.said, ended.code,
                extra=session.log_fields(address))  # fmt: skip


def _may_change_room(admission: Admission, address: str) -> bool:
    return admission.change_room(address, time.monotonic())


def _log_connected(address: str, session: ChatSession) -> None:
    """Logged from here, not from `ws_chat`: `logging` looks up its caller's frame, and the
    frame of a coroutine, once looked up, stays an object for the connection's life (336 B)."""
    fields = session.log_fields(address)
    logger.info("%s connected as %s", address, session.nick, extra=fields)


def _rate_limited(message: WSMessage, stats: Stats) -> bytes:
    """The refusal of a request over the rate limit, naming its action as sent."""
    action = protocol.action_of(message.data) if message.type is WSMsgType.TEXT else None
    stats.request(action, "rate_limited")
    return encode_failure(action, protocol.RATE_LIMITED)


# How long a connection that ended may wait for its chat messages still with Redis (a few
# of Redis's timeouts, redirections included) before it leaves all the same.
ANSWERED_GRACE: Final = 10.0
_NO_MESSAGE: Final = WSMessage(WSMsgType.ERROR, None, None)  # nothing received (yet)
_BINARY_REFUSED: Final = protocol.encode(protocol.fail(None, protocol.BINARY_NOT_SUPPORTED))
_ECHO_RATE_LIMITED: Final = protocol.encode(protocol.echo_error(protocol.RATE_LIMITED))


# -------------------------------------------------------------------------------- app


def _all_sockets(app: web.Application) -> list[ChatSocket]:
    sockets = [*app[ECHO_SOCKETS]]
    sockets += (socket for members in app[ROOMS].values() for socket in members.values())
    return sockets


async def _sweep(app: web.Application) -> AsyncIterator[None]:
    """One task pings every socket and drops the silent ones (cheaper than a timer each)."""
    interval, sweeping = app[SETTINGS].heartbeat, Tasks()
    if interval:
        sweeping.spawn(frames.sweep_forever(partial(_all_sockets, app), interval))
    yield
    await sweeping.aclose()


async def _close_all(app: web.Application) -> None:
    """On shutdown, close every WebSocket with 1001 GOING_AWAY and wait for the closes."""
    sockets = _all_sockets(app)
    if sockets:
        logger.info("Shutting down: closing %d WebSocket(s)", len(sockets))
    await asyncio.gather(
        *(s.end(WSCloseCode.GOING_AWAY, b"Server shutdown") for s in sockets),
        return_exceptions=True,
    )


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    """Join the other server processes through Redis for the app's lifetime."""
    await app[CLUSTER].start()
    yield
    await app[CLUSTER].stop()


async def _close_outbox(app: web.Application) -> None:
    await app[OUTBOX].aclose()


def create_app(
    settings: Settings | None = None, *, rng: random.Random | None = None
) -> web.Application:
    """The application, with no side effects: nothing runs until it is started. `rng`: what
    default nicks are drawn from (a test's; by default the `random` module)."""
    app = web.Application()
    settings = app[SETTINGS] = settings or Settings()
    app[ROOMS] = utils.new_registry()
    app[ECHO_SOCKETS] = set()
    app[STATS] = Stats()
    app[LIMITS] = protocol.limits(
        settings.rate_limit, settings.rate_burst, settings.max_message_chars
    )
    app[OUTBOX] = Outbox(settings.max_outbound_bytes, settings.ping_rate, app[STATS])
    app[HANDSHAKES] = Handshakes(
        timeout=settings.handshake_timeout,
        lifetime=settings.http_lifetime,
        max_pending=settings.max_pending,
        max_per_address=settings.max_pending_per_ip,
        trusted_proxies=settings.trusted_proxies,
        stats=app[STATS],
    )
    app[ADMISSION] = Admission(
        max_connections=settings.max_connections,
        max_per_address=settings.max_connections_per_ip,
        trusted_proxies=settings.trusted_proxies,
        allowed_origins=settings.allowed_origins,
        room_changes=settings.room_changes,
        server_names=settings.server_names,
    )
    if settings.redis_url:
        from .cluster import ClusterRooms  # only with --redis-url: a single server needs no Redis

        app[CHAT_ROOMS] = app[CLUSTER] = ClusterRooms(
            settings.redis_url, app[ROOMS], settings, app[STATS], rng
        )
    else:
        history = MemoryHistory(settings.history, settings.history_ttl, settings.history_max_bytes)
        app[CHAT_ROOMS] = LocalRooms(
            app[ROOMS], history, app[STATS], rng, announce_limit=settings.announce_limit
        )
    app[REGISTRY] = metrics.registry(app[STATS], partial(_gauges, app))
    app.cleanup_ctx.append(_sweep)
    if settings.redis_url:
        app.cleanup_ctx.append(_cluster)
    app.on_shutdown.append(_close_all)
    app.on_cleanup.append(_close_outbox)
    app.add_routes([web.get("/echo", ws_echo), web.get("/chat", ws_chat), *_probes(app)])
    app.on_response_prepare.append(_answered)
    page.serve(app)
    if settings.metrics_port:
        app.cleanup_ctx.append(_probes_port)
    return app


async def _answered(request: web.Request, response: web.StreamResponse) -> None:
    """A request was answered: its connection met the handshake deadline (an upgrade is
    handed over at once instead, `_accept`: no deadline to set again)."""
    if response.status != HTTPStatus.SWITCHING_PROTOCOLS:
        request.app[HANDSHAKES].answered(request.transport)


# -------------------------------------------------------------------------------- operating


def _gauges(app: web.Application) -> metrics.Readings:
    rooms = app[ROOMS]
    chat = sum(len(members) for members in rooms.values())
    readings = metrics.Readings({"chat": chat, "echo": len(app[ECHO_SOCKETS])}, len(rooms))
    if not isinstance(local := app[CHAT_ROOMS], LocalRooms):  # Redis keeps the history
        return readings
    history = local.history
    return readings._replace(history_bytes=history.bytes, history_rooms=history.rooms())


def _health(app: web.Application) -> tuple[bool, dict[str, object]]:
    return probes.health_report(app[ADMISSION].open, len(app[ROOMS]), app[STATS].redis_up)


def _probes(app: web.Application) -> list[web.RouteDef]:
    settings = app[SETTINGS]
    return [
        web.get("/healthz", probes.healthz(partial(_health, app))),
        web.get("/metrics", probes.metrics(app[REGISTRY], app[ADMISSION], settings.metrics_from)),
    ]


async def _probes_port(app: web.Application) -> AsyncIterator[None]:
    """/healthz and /metrics on a port of their own too (--metrics-port), their connections
    pending, capped and given a deadline with the chat's: they hold the same files."""
    side = web.Application()
    side.add_routes(_probes(app))
    side[SETTINGS], side[STATS], side[HANDSHAKES] = app[SETTINGS], app[STATS], app[HANDSHAKES]
    side.on_response_prepare.append(_answered)
    port = app[SETTINGS].metrics_port
    assert port is not None
    async with listening(side, port):
        logger.info("Serving /metrics and /healthz on port %s too", port)
        yield


# -------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parse_args(parser, argv)
    settings, run = settings_from(args), process_from(args)
    logs.configure(run.log_level, run.log_format)
    tls = process.tls_context(parser, run.tls_cert, run.tls_key)
    if run.workers > 1:
        argv = sys.argv[1:] if argv is None else argv
        raise SystemExit(workers.supervise(argv, run.workers, settings.metrics_port))
    loop = process.event_loop(parser, run.loop)
    settings = process.within_open_files(settings)
    process.collect_rarely()
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            runner.run(serve(create_app(settings), run.port, tls, reuse_port=run.reuse_port))
    except OSError as exc:  # (see `listening`: it names the address, maybe --metrics-port's)
        logger.error("%s", exc.strerror or exc)
        raise SystemExit(1) from None
    logger.info("Server stopped")


async def serve(
    app: web.Application, port: int, tls: ssl.SSLContext | None = None, *, reuse_port: bool = False
) -> None:
    """Serve `app` until SIGINT or SIGTERM, then close every WebSocket (1001) and stop."""
    async with listening(app, port, tls, reuse_port=reuse_port) as server:
        host, port = app[SETTINGS].host, server.sockets[0].getsockname()[1]  # (0: the one given)
        logger.info("Listening on %s:%s, the page at %s (and /chat, /echo)", host, port,
                    process.page_url(host, port, tls=tls is not None))  # fmt: skip
        await process.until_stopped()


def listening(
    app: web.Application, port: int, tls: ssl.SSLContext | None = None, *, reuse_port: bool = False
) -> contextlib.AbstractAsyncContextManager[asyncio.Server]:
    """`app` served on its settings' host and `port` for the block (`process.listening`)."""
    gate, stats = app[HANDSHAKES], app[STATS]
    host = app[SETTINGS].host
    return process.listening(app, host, port, gate, stats, tls=tls, reuse_port=reuse_port)


if __name__ == "__main__":
    main()
