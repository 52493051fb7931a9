"""The scaling plot of a benchmark run: time and peak memory against rows per day, per workload."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.dataset import SIMULATED
from benchmarks.report import LABELS, Summary

PLOT = Path(__file__).parent / "scaling.png"


def plot_scaling(summaries: Sequence[Summary], path: Path = PLOT) -> Path:
    """Two panels (median seconds, peak RSS in GiB) on log-log axes, one line per workload."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    seconds_axes, memory_axes = figure.subplots(1, 2)
    for workload, label in LABELS.items():
        own = sorted(
            (s for s in summaries if s.workload == workload and s.shape == SIMULATED),
            key=lambda s: s.emissions_per_day,
        )
        if not own:
            continue
        rows = [s.emissions_per_day / 1e6 for s in own]
        seconds_axes.plot(rows, [s.median_seconds for s in own], marker="o", label=label)
        memory_axes.plot(rows, [s.max_peak_rss_bytes / 2**30 for s in own], marker="o")
    for axes, title in (
        (seconds_axes, "median seconds"),
        (memory_axes, "peak RSS (GiB, process tree)"),
    ):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("emission rows per day (millions)")
        axes.set_title(title)
        axes.grid(True, which="major", alpha=0.3)
    figure.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    figure.subplots_adjust(left=0.06, right=0.98, top=0.92, bottom=0.32, wspace=0.2)
    figure.savefig(path)
    return path
