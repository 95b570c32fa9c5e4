"""Drawing the `scale` sweep in a PNG, with matplotlib (the `bench` extra), imported only here
and only when a plot is asked for: the benchmark runs without it otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .runner import BenchError

MISSING = "drawing the plot needs matplotlib: pip install -e '.[bench]' (or --plot '' for none)"
PANELS = (("members", "members in the room (one room)"), ("rooms", "rooms of {members} members"))
ROWS = (
    ("deliveries_per_server_cpu_s", "deliveries per server CPU-second"),
    ("latency_p99_ms", "p99 latency (ms)"),
)


def require_matplotlib() -> None:
    """Fail now, before anything is measured, if the plot could not be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BenchError(MISSING) from None


def draw(points: Sequence[dict[str, Any]], path: str) -> None:
    """Cost and p99 against room size (left) and against rooms (right), a line per mode."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    figure, axes = plt.subplots(len(ROWS), len(PANELS), figsize=(11, 7.5), squeeze=False)
    for column, (sweep, label) in enumerate(PANELS):
        shown = [p for p in points if p["sweep"] == sweep]
        sizes = {p["members"] for p in shown}
        for row, (key, ylabel) in enumerate(ROWS):
            ax = axes[row][column]
            for mode in dict.fromkeys(p["mode"] for p in shown):
                line = sorted(
                    (p[sweep], p[key])
                    for p in shown
                    if p["mode"] == mode and isinstance(p[key], int | float)
                )
                if line:
                    ax.plot(*zip(*line, strict=True), marker="o", label=mode)
            ax.set_xscale("log")
            ax.minorticks_off()
            ticks = sorted({p[sweep] for p in shown})
            ax.set_xticks(ticks, [f"{tick:,}" for tick in ticks])
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
            ax.set_xlabel(label.format(members=", ".join(map(str, sorted(sizes)))))
            ax.set_ylabel(ylabel)
            ax.set_ylim(bottom=0)
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
    figure.suptitle("aiohttp-chat: what a delivery costs as rooms grow and multiply")
    figure.tight_layout()
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise BenchError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
