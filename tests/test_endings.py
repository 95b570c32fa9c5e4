"""Why a connection ended: one value, and what the log, the metric and the close frame read."""

from aiohttp import WSCloseCode

from aiohttp_chat import protocol
from aiohttp_chat.endings import Ending
from aiohttp_chat.metrics import DISCONNECTS


def test_the_metric_labels_stay_what_dashboards_know() -> None:
    labels = ("polite", "vanished", "too_slow", "flooding", "frame_too_big", "server", "resumed")
    assert labels == DISCONNECTS


def test_the_server_drops_a_peer_only_for_what_has_a_close_frame_of_its_own() -> None:
    dropped = {ending: ending.close_frame for ending in Ending if ending.close_frame is not None}
    assert dropped == {
        Ending.TOO_SLOW: (WSCloseCode.POLICY_VIOLATION, protocol.TOO_SLOW_REASON.encode()),
        Ending.FLOODING: (WSCloseCode.POLICY_VIOLATION, protocol.FLOODING_REASON.encode()),
        Ending.RESUMED: (protocol.RESUMED_CODE, protocol.RESUMED_REASON.encode()),
    }


def test_the_log_says_left_only_for_a_polite_leave() -> None:
    assert [ending for ending in Ending if ending.said == "left"] == [Ending.POLITE]
    assert Ending.SERVER.said == Ending.TOO_SLOW.said == "was disconnected by the server"
    assert Ending.VANISHED.said == "vanished without a close frame"
