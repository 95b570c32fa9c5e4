"""Why a chat connection ended: one value, recorded where it is decided, and read by the
log line, the metric and the close frame.

The server decides in `frames.ChatSocket`: `drop` (a peer too slow to read, one that
floods, one resumed on a new connection), `end` (the server closes it: shutting down, an
internal error) and `sweep` (a peer silent through a whole heartbeat: vanished, 1006).
Whatever else ends a connection is the peer's doing, or aiohttp's on its behalf, and the view
reads it off what `receive()` returned (`ChatSocket.peer_ended`): its close frame, a frame
too big that aiohttp refused, or nothing at all. The first recorded stands.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from aiohttp import WSCloseCode

from . import protocol


class Ending(enum.Enum):
    """Why; the value names it for the metrics (`chat_disconnects_total{reason}`)."""

    POLITE = "polite"  # the peer's close frame came first
    VANISHED = "vanished"  # no close frame: the connection was lost, or broke the protocol
    TOO_SLOW = "too_slow"  # dropped: more unsent than `--max-outbound-bytes`
    FLOODING = "flooding"  # dropped: kept going after its requests (or pings) were refused
    FRAME_TOO_BIG = "frame_too_big"  # a frame above `--max-frame-bytes`
    SERVER = "server"  # closed by the server: shutting down, or an internal error
    RESUMED = "resumed"  # dropped: resumed on a new connection, with its token

    @property
    def said(self) -> str:
        """How the log line says it."""
        return _SAID.get(self, "was disconnected by the server")

    @property
    def close_frame(self) -> tuple[int, bytes] | None:
        """The close code and reason a connection dropped for this is sent; None if the
        server does not drop for it."""
        return _DROPS.get(self)


class Ended(NamedTuple):
    """How one connection ended: why, and with which close code (the peer's if it closed
    first, else ours, else what aiohttp saw: 1006 for a connection lost)."""

    why: Ending
    code: int | None


_SAID: Final = {
    Ending.POLITE: "left",
    Ending.VANISHED: "vanished without a close frame",
    Ending.RESUMED: "was resumed on a new connection",
}
_DROPS: Final = {
    Ending.TOO_SLOW: (WSCloseCode.POLICY_VIOLATION, protocol.TOO_SLOW_REASON.encode()),
    Ending.FLOODING: (WSCloseCode.POLICY_VIOLATION, protocol.FLOODING_REASON.encode()),
    Ending.RESUMED: (protocol.RESUMED_CODE, protocol.RESUMED_REASON.encode()),
}
