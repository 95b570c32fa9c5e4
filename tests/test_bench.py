"""`python -m aiohttp_chat.bench`, run as a user runs it, on a small scale."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import pytest

from aiohttp_chat.bench.__main__ import main

from .support.needs import require_program
from .support.processes import run_process
from .support.servers import ServerProcess

SMALL = ("--duration", "1", "--warmup", "0.5", "--rooms", "2", "--members", "6")


async def test_every_scenario_runs_and_loses_nothing() -> None:
    code, out, err = await run_process(
        "aiohttp_chat.bench",
        *SMALL,
        *("--senders", "2", "--connections", "300", "--room-size", "30", "--json"),
        *("--idle-seconds", "1"),
        limit=120,
    )
    assert code == 0, err
    results = json.loads(out)
    assert list(results) == ["fanout", "latency", "slow", "limits", "scraped", "idle"]
    fanout, latency, slow, limits, scraped, idle = (results[name]["values"] for name in results)
    assert scraped["metrics_scrapes"] >= 1
    for figures in (fanout, latency, limits, scraped):
        assert figures["deliveries_per_s"] > 0
        assert figures["deliveries_per_server_cpu_s"] > 0
        assert figures["messages_lost"] == 0 and figures["out_of_order"] == 0
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert latency["offered_messages_per_s"] > 0
    assert slow["messages_lost"] == 0
    assert idle["connections"] == 300
    assert idle["broadcast_reached"] == idle["broadcast_expected"] == 29
    assert idle["server_kib_per_connection"] > 0
    assert idle["kernel_kib_per_connection"] > 0 and idle["server_idle_cpu_percent"] >= 0
    assert idle["healthz_failed"] == 0 and 0 < idle["healthz_p50_ms"] <= idle["healthz_max_ms"]
    assert 0 < idle["broadcast_median_ms"] <= idle["broadcast_last_ms"]
    assert idle["most_connections_per_process"] < idle["open_files_hard_limit"]


async def test_the_rooms_scenario_spreads_rooms_over_two_nodes() -> None:
    require_program("redis-server")
    code, out, err = await run_process(
        "aiohttp_chat.bench", "rooms", *SMALL, "--senders", "2", "--json", limit=120
    )
    assert code == 0, err
    figures = json.loads(out)["rooms"]["values"]
    for placement in ("affinity", "mixed"):
        assert figures[f"{placement}_deliveries_per_server_cpu_s"] > 0
        assert figures[f"{placement}_messages_lost"] == figures[f"{placement}_out_of_order"] == 0
        assert figures[f"{placement}_cpu_per_delivery_vs_lone"] > 0
    assert figures["affinity_cpu_per_delivery_vs_lone_at_node_rate"] > 0


@pytest.mark.timeout(200)  # the bench process may take its whole `limit` on a loaded machine
async def test_an_attack_runs_beside_polite_clients_and_history_rooms_beside_a_control() -> None:
    """The ping flood as the attack scenarios run one (what it did is counted, the polite
    clients lose nothing), and the history attack on a capped server and on a control."""
    code, out, err = await run_process(
        "aiohttp_chat.bench", "ping-flood", "history-rooms", *SMALL, "--senders", "2", "--json",
        limit=180,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    flood, history = results["ping-flood"]["values"], results["history-rooms"]["values"]
    assert flood["attacker_pings"] > 0 and flood["attacker_closed_by_server"] > 0  # dropped
    assert flood["attacked_messages_lost"] == 0 and flood["attacked_deliveries_per_s"] > 0
    assert flood["p99_vs_quiet"] > 0
    assert flood["server_log_bytes"] < 1000  # at WARNING, a flood is not the log's business
    assert history["rooms_written"] == 200_000
    assert history["server_growth_mib"] > 0 and history["control_growth_mib"] > 0
    grown = history["server_growth_mib"] - history["control_growth_mib"]
    assert history["history_growth_vs_cap"] == pytest.approx(
        grown * 2**20 / history["history_max_bytes"]
    )


async def test_a_refused_handshake_ends_the_run_with_one_line(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process("--max-pending-per-ip", "0")  # the bench opens 200 at once
    wrong_path = f"ws://127.0.0.1:{server.port}"  # the chat page, not /chat
    code, _, err = await run_process("aiohttp_chat.bench", "fanout", "--url", wrong_path)
    assert code == 1
    assert err.splitlines()[-1] == (
        f"python -m aiohttp_chat.bench: cannot connect to {wrong_path}: the server answered 200 OK"
    )
    assert "Traceback" not in err and "InvalidStateError" not in err


async def test_compare_runs_the_scenario_on_a_second_server_and_gives_ratios(
    server_process: Callable[..., ServerProcess],
) -> None:
    other = server_process("--rate-limit", "0")
    url = other.url()
    code, out, err = await run_process(
        "aiohttp_chat.bench", "fanout", *SMALL, "--runs", "2", "--compare", url,
        "--compare-pid", str(other.proc.pid), "--json", limit=120,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    assert list(results) == ["fanout", f"fanout on {url}", f"fanout: ratio, this / {url}"]
    ours, theirs, ratio = (results[name]["values"] for name in results)
    assert theirs["messages_lost"] == 0 and theirs["deliveries_per_server_cpu_s"] > 0
    expected = ours["deliveries_per_server_cpu_s"] / theirs["deliveries_per_server_cpu_s"]
    assert abs(ratio["deliveries_per_server_cpu_s"] - expected) < 1e-9


async def test_table_output_and_bad_scenario() -> None:
    code, out, _ = await run_process("aiohttp_chat.bench", "fanout", *SMALL, limit=60)
    assert code == 0
    assert "deliveries_per_server_cpu_s" in out and "messages_lost" in out
    code, _, err = await run_process("aiohttp_chat.bench", "nope")
    assert code == 2 and "unknown scenario nope" in err


SCALE_POINT = {
    *("mode", "sweep", "rooms", "members", "connections", "senders_per_room"),
    *("deliveries_per_s", "server_cpu_s", "deliveries_per_server_cpu_s", "server_rss_mib"),
    *("latency_p50_ms", "latency_p99_ms", "messages_lost", "out_of_order"),
    "redis_cpu_us_per_delivery",
}


@pytest.mark.timeout(180)
def test_scale_measures_each_room_size_and_count_alone_and_on_redis_and_draws_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_program("redis-server")
    png = tmp_path / "scale.png"
    main(["scale", "--redis", "--sizes", "2,5", "--room-counts", "1,2", "--members", "4",
          "--senders", "2", "--duration", "0.5", "--warmup", "0.2", "--plot", str(png),
          "--json"])  # fmt: skip
    results = json.loads(capsys.readouterr().out)
    assert list(results) == ["scale"]
    scale = results["scale"]
    assert scale["plot"] == str(png)
    assert scale["values"] == {"points": 8, "messages_lost": 0, "out_of_order": 0}
    drawn = [(p["mode"], p["sweep"], p["rooms"], p["members"]) for p in scale["points"]]
    shapes = [("members", 1, 2), ("members", 1, 5), ("rooms", 1, 4), ("rooms", 2, 4)]
    assert drawn == [(mode, *shape) for mode in ("alone", "redis") for shape in shapes]
    for point in scale["points"]:
        assert set(point) == SCALE_POINT
        assert point["connections"] == point["rooms"] * point["members"]
        assert point["senders_per_room"] == (1 if point["members"] == 2 else 2)
        assert point["deliveries_per_s"] > 0 and point["deliveries_per_server_cpu_s"] > 0
        assert point["messages_lost"] == point["out_of_order"] == 0
        assert 0 < point["latency_p50_ms"] <= point["latency_p99_ms"]
        assert point["server_rss_mib"] > 0
        assert (point["redis_cpu_us_per_delivery"] is None) == (point["mode"] == "alone")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    height, width, _ = matplotlib.image.imread(png).shape  # the whole file decodes
    assert width > height > 0


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["scale", "--sizes", "10,0"], "not a list of positive numbers: '10,0'"),
        (["scale", "--room-counts", "4,x"], "not a list of numbers: '4,x'"),
        (["scale", "--sizes", "20000"], "1 x 20000 is 20,000 connections; one server process"),
        (["scale", "--room-counts", "400"], "400 x 50 is 20,000 connections"),
        (["scale", "--url", "ws://127.0.0.1:9/chat"], "scale: start their own servers"),
        (["reconnect", "--connections", "0"], "not a positive whole number: '0'"),
        (["reconnect", "--connections", "18001"], "one server process holds at most 18,000"),
    ],
)
def test_scale_and_reconnect_refuse_what_they_cannot_measure(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert error in capsys.readouterr().err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("redis", [False, True], ids=["alone", "redis"])
def test_reconnect_brings_every_member_back_under_its_nick_in_its_room(
    redis: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    if redis:
        require_program("redis-server")
    main(["reconnect", "--connections", "50", "--room-size", "10", "--processes", "2", "--json",
          *(["--redis"] if redis else [])])  # fmt: skip
    figures = json.loads(capsys.readouterr().out)["reconnect"]["values"]
    assert figures["members"] == figures["members_back"] == 50
    assert figures["members_never_back"] == figures["nicks_lost"] == figures["rooms_lost"] == 0
    # every member tried at least once more; the failed tries are all counted by kind
    assert figures["attempts"] == 50 + figures["attempts_failed"]
    kinds = {key: value for key, value in figures.items() if key.startswith("failed_")}
    assert sum(kinds.values()) == figures["attempts_failed"]
    assert figures["listening_again_s"] > 0 and figures["all_back_s"] is not None
    assert 0 < figures["reconnect_p50_ms"] <= figures["reconnect_p99_ms"]
