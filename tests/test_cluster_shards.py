"""What the batch reads from a Redis Cluster's redirections, and which key routes a command
(`cluster/shards.py`); the redirections themselves, from a real cluster, are
`test_cluster_slots.py`'s."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from aiohttp_chat.cluster import keys
from aiohttp_chat.cluster.shards import Redirection, first_key, redirection, slot_of


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("MOVED 3999 127.0.0.1:6381", Redirection("MOVED", 3999, ("127.0.0.1", 6381))),
        ("ASK 12 10.0.0.7:7000", Redirection("ASK", 12, ("10.0.0.7", 7000))),
        ("MOVED 5 ::1:7001", Redirection("MOVED", 5, ("::1", 7001))),  # IPv6
        ("MOVED 5 redis-2.example:7001", Redirection("MOVED", 5, ("redis-2.example", 7001))),
        (
            "TRYAGAIN Multiple keys request during rehashing of slot",
            Redirection("TRYAGAIN", -1, None),
        ),
    ],
)
def test_a_redirection_says_where_to(error: str, expected: Redirection) -> None:
    assert redirection(Exception(error)) == expected


@pytest.mark.parametrize(
    "error",
    [
        "NOSCRIPT No matching script. Please use EVAL.",
        "CLUSTERDOWN The cluster is down",
        "MOVED 3999 :6381",  # no address to go to (an unknown endpoint)
        "MOVED 3999 ?:6381",
        "MOVED x 127.0.0.1:6381",
        "MOVED 3999 127.0.0.1",
        "ASK",
        "",
    ],
)
def test_anything_else_is_no_redirection(error: str) -> None:
    assert redirection(Exception(error)) is None


def test_a_command_goes_where_its_first_key_lives() -> None:
    log, epoch = keys.history("Lounge"), keys.epoch("Lounge")
    assert first_key(("EVALSHA", "abc", 2, log, epoch, "arg")) == log
    assert first_key(("EVALSHA", "abc", 0, "arg")) is None
    assert first_key(("SPUBLISH", keys.room_channel("Lounge"), b"x")) == keys.room_channel("Lounge")
    assert first_key(("PING",)) is None
    # A room's keys and channel share one slot, whatever its name holds.
    for room in ("Lounge", "lounge", "{}", "Salle à manger"):
        slots = {slot_of(key) for key in (*keys.names(room), keys.room_channel(room))}
        assert slots == {key_slot(keys.history(room).encode())}, room
