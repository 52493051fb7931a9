"""Summaries of the measurements: medians, ratios against the DuckDB SQL job, growth, targets."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.measure import Measurement

BASELINE = "duckdb"
LABELS = {
    "polars": "(a) Polars chain, no Dagster",
    "dagster": "(b) Polars through Dagster materialize",
    "spark": "(c) Spark engine local[2]",
    "duckdb": "(d) DuckDB SQL job (reference)",
}
# Issue 7's targets: ratio of median times against the DuckDB SQL job at the largest size.
RATIO_TARGETS = {"polars": 1.0, "dagster": 1.25, "spark": 4.0}
PEAK_RSS_TARGET_BYTES = 6 * 2**30
GROWTH_TARGET = 4.4  # 4x data, at most 4.4x time
CLI_TARGET_SECONDS = 6.0


@dataclass(frozen=True)
class Summary:
    workload: str
    emissions_per_day: int
    runs: int
    median_seconds: float
    median_process_seconds: float
    max_peak_rss_bytes: int
    median_steps: dict[str, float]


def summarize(measurements: Sequence[Measurement]) -> list[Summary]:
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault((measurement.workload, measurement.emissions_per_day), []).append(
            measurement
        )
    summaries = []
    for (workload, size), runs in groups.items():
        step_names = list(runs[0].steps)
        summaries.append(
            Summary(
                workload=workload,
                emissions_per_day=size,
                runs=len(runs),
                median_seconds=statistics.median(run.seconds for run in runs),
                median_process_seconds=statistics.median(run.process_seconds for run in runs),
                max_peak_rss_bytes=max(run.peak_rss_bytes for run in runs),
                median_steps={
                    name: statistics.median(run.steps.get(name, 0.0) for run in runs)
                    for name in step_names
                },
            )
        )
    return summaries


def ratio(summary: Summary, summaries: Sequence[Summary]) -> float | None:
    """Median time over the DuckDB job's median time at the same size."""
    for other in summaries:
        if other.workload == BASELINE and other.emissions_per_day == summary.emissions_per_day:
            return summary.median_seconds / other.median_seconds
    return None


def growth(workload: str, summaries: Sequence[Summary]) -> tuple[int, int, float] | None:
    """Time at the largest size over time at the smallest, with both sizes."""
    own = sorted(
        (s for s in summaries if s.workload == workload), key=lambda s: s.emissions_per_day
    )
    if len(own) < 2:
        return None
    small, large = own[0], own[-1]
    return (
        small.emissions_per_day,
        large.emissions_per_day,
        large.median_seconds / small.median_seconds,
    )


def gib(value: int) -> str:
    return f"{value / 2**30:.2f} GiB"


def results_table(summaries: Sequence[Summary]) -> list[str]:
    lines = [
        "| workload | emission rows/day | runs | median s | ratio vs (d) | process s | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for summary in sorted(
        summaries, key=lambda s: (s.emissions_per_day, list(LABELS).index(s.workload))
    ):
        value = ratio(summary, summaries)
        lines.append(
            f"| {LABELS[summary.workload]} | {summary.emissions_per_day:,} | {summary.runs} | "
            f"{summary.median_seconds:.2f} | {'-' if value is None else f'{value:.2f}x'} | "
            f"{summary.median_process_seconds:.2f} | {gib(summary.max_peak_rss_bytes)} |"
        )
    return lines


def target_lines(
    summaries: Sequence[Summary], cli_seconds: float | None, exact: dict[str, tuple[int, bool]]
) -> list[str]:
    """One line per issue 7 target, at the largest size each workload ran: met or missed."""
    largest: dict[str, Summary] = {}
    for summary in summaries:
        known = largest.get(summary.workload)
        if known is None or summary.emissions_per_day > known.emissions_per_day:
            largest[summary.workload] = summary
    lines = []
    for workload, target in RATIO_TARGETS.items():
        summary = largest.get(workload)
        value = None if summary is None else ratio(summary, summaries)
        if summary is None or value is None:
            lines.append(f"- {LABELS[workload]} <= {target}x (d): not measured")
        else:
            verdict = "met" if value <= target else "MISSED"
            lines.append(
                f"- {LABELS[workload]} <= {target}x (d) at {summary.emissions_per_day:,} "
                f"rows/day: {value:.2f}x, {verdict}"
            )
    polars = largest.get("polars")
    if polars is not None:
        verdict = "met" if polars.max_peak_rss_bytes <= PEAK_RSS_TARGET_BYTES else "MISSED"
        lines.append(f"- peak RSS of (a) <= 6 GiB: {gib(polars.max_peak_rss_bytes)}, {verdict}")
    for workload in LABELS:
        grown = growth(workload, summaries)
        if grown is not None:
            small, large, factor = grown
            allowed = GROWTH_TARGET * large / small / 4
            verdict = "met" if factor <= allowed else "MISSED"
            lines.append(
                f"- growth of {LABELS[workload]} from {small:,} to {large:,} rows/day "
                f"({large / small:.0f}x data): {factor:.2f}x time (target <= {allowed:.2f}x), "
                f"{verdict}"
            )
    if cli_seconds is not None:
        verdict = "met" if cli_seconds <= CLI_TARGET_SECONDS else "MISSED"
        lines.append(
            f"- Dagster CLI `asset materialize --select '*'` of a tiny day <= "
            f"{CLI_TARGET_SECONDS:.0f} s: {cli_seconds:.2f} s (median), {verdict}"
        )
    for workload, (size, agrees) in exact.items():
        lines.append(
            f"- {LABELS[workload]} serves exactly the rows of (d) at {size:,} rows/day: "
            f"{'yes' if agrees else 'NO'}"
        )
    return lines


def step_lines(summaries: Sequence[Summary]) -> list[str]:
    """Median seconds per step, the profile behind each total."""
    lines = []
    for summary in sorted(
        summaries, key=lambda s: (list(LABELS).index(s.workload), s.emissions_per_day)
    ):
        steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in summary.median_steps.items())
        lines.append(f"- {LABELS[summary.workload]}, {summary.emissions_per_day:,}: {steps}")
    return lines
