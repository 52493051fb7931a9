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
    "cli": "(b') Polars, whole `dagster asset materialize --select '*'` CLI run",
    "spark": "(c) Spark engine local[2], own JVM",
    "connect": "(c') Spark engine on a warm Spark Connect server local[2] (client RSS)",
    "duckdb": "(d) DuckDB SQL job (reference)",
    "spark_sql": "(e) hand-written Spark SQL job, local[2], own JVM (Spark's own limit)",
    "connect_sql": "(e') hand-written Spark SQL job on the warm Spark Connect server",
}
FULL_SIZE = 20_000_000
LARGE_SIZE = 100_000_000
# Ratio of median times against the DuckDB SQL job at a size: issue 7's (20M rows/day) and
# issue 15's (100M rows/day for the whole CLI run; a warm Spark Connect at 20M).
RATIO_TARGETS = (
    ("polars", FULL_SIZE, 1.0),
    ("dagster", FULL_SIZE, 1.25),
    ("spark", FULL_SIZE, 4.0),
    ("connect", FULL_SIZE, 4.0),
    ("cli", LARGE_SIZE, 0.5),
)
# Peak RSS of a workload at a size.
PEAK_RSS_TARGETS = (("polars", FULL_SIZE, 6 * 2**30), ("cli", LARGE_SIZE, 4 * 2**30))
# Time growth between two sizes: at most this factor (issue 7: 4x data, 4.4x; issue 15: 5x, 5.5x).
GROWTH_TARGETS = ((FULL_SIZE // 4, FULL_SIZE, 4.4), (FULL_SIZE, LARGE_SIZE, 5.5))
ATTACH_TARGET_SECONDS = 1.0
CLI_TARGET_SECONDS = 6.0


@dataclass(frozen=True)
class Summary:
    workload: str
    emissions_per_day: int
    runs: int
    median_seconds: float
    median_process_seconds: float
    median_cpu_seconds: float
    max_peak_rss_bytes: int
    median_steps: dict[str, float]
    median_server_cpu_seconds: float = 0.0
    max_server_peak_rss_bytes: int = 0


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
                median_cpu_seconds=statistics.median(run.cpu_seconds for run in runs),
                max_peak_rss_bytes=max(run.peak_rss_bytes for run in runs),
                median_steps={
                    name: statistics.median(run.steps.get(name, 0.0) for run in runs)
                    for name in step_names
                },
                median_server_cpu_seconds=statistics.median(run.server_cpu_seconds for run in runs),
                max_server_peak_rss_bytes=max(run.server_peak_rss_bytes for run in runs),
            )
        )
    return summaries


def ratio(summary: Summary, summaries: Sequence[Summary]) -> float | None:
    """Median time over the DuckDB job's median time at the same size."""
    for other in summaries:
        if other.workload == BASELINE and other.emissions_per_day == summary.emissions_per_day:
            return summary.median_seconds / other.median_seconds
    return None


def cpu_ratio(summary: Summary, summaries: Sequence[Summary]) -> float | None:
    """Median CPU seconds over the DuckDB job's at the same size (a load-independent view)."""
    baseline = find(summaries, BASELINE, summary.emissions_per_day)
    if baseline is None or not baseline.median_cpu_seconds:
        return None
    return summary.median_cpu_seconds / baseline.median_cpu_seconds


def find(summaries: Sequence[Summary], workload: str, size: int) -> Summary | None:
    return next(
        (s for s in summaries if s.workload == workload and s.emissions_per_day == size), None
    )


def growth(workload: str, small: int, large: int, summaries: Sequence[Summary]) -> float | None:
    """Median time at `large` rows/day over median time at `small`."""
    low, high = find(summaries, workload, small), find(summaries, workload, large)
    if low is None or high is None:
        return None
    return high.median_seconds / low.median_seconds


def gib(value: int) -> str:
    return f"{value / 2**30:.2f} GiB"


def results_table(summaries: Sequence[Summary]) -> list[str]:
    lines = [
        "| workload | emission rows/day | runs | median s | ratio vs (d) | process s | cpu s "
        "| cpu ratio vs (d) | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for summary in sorted(
        summaries, key=lambda s: (s.emissions_per_day, list(LABELS).index(s.workload))
    ):
        value = ratio(summary, summaries)
        cpu = cpu_ratio(summary, summaries)
        lines.append(
            f"| {LABELS[summary.workload]} | {summary.emissions_per_day:,} | {summary.runs} | "
            f"{summary.median_seconds:.2f} | {'-' if value is None else f'{value:.2f}x'} | "
            f"{summary.median_process_seconds:.2f} | {summary.median_cpu_seconds:.1f} | "
            f"{'-' if cpu is None else f'{cpu:.2f}x'} | {gib(summary.max_peak_rss_bytes)} |"
        )
    return lines


def target_lines(
    summaries: Sequence[Summary], cli_seconds: float | None, exact: dict[tuple[str, int], bool]
) -> list[str]:
    """One line per target of issues 7 and 15 that this run measured: met or missed."""
    lines = []
    for workload, size, target in RATIO_TARGETS:
        summary = find(summaries, workload, size)
        value = None if summary is None else ratio(summary, summaries)
        if value is not None:
            verdict = "met" if value <= target else "MISSED"
            lines.append(
                f"- {LABELS[workload]} <= {target}x (d) at {size:,} rows/day: "
                f"{value:.2f}x, {verdict}"
            )
    for workload, size, limit in PEAK_RSS_TARGETS:
        summary = find(summaries, workload, size)
        if summary is not None:
            verdict = "met" if summary.max_peak_rss_bytes <= limit else "MISSED"
            lines.append(
                f"- peak RSS of {LABELS[workload]} at {size:,} rows/day <= {gib(limit)}: "
                f"{gib(summary.max_peak_rss_bytes)}, {verdict}"
            )
    for small, large, allowed in GROWTH_TARGETS:
        for workload in LABELS:
            factor = growth(workload, small, large, summaries)
            if factor is not None:
                verdict = "met" if factor <= allowed else "MISSED"
                lines.append(
                    f"- growth of {LABELS[workload]} from {small:,} to {large:,} rows/day "
                    f"({large / small:.0f}x data): {factor:.2f}x time (target <= {allowed}x), "
                    f"{verdict}"
                )
    attaches = [
        s.median_steps["spark_attach"] for s in summaries if "spark_attach" in s.median_steps
    ]
    if attaches:
        worst = max(attaches)
        verdict = "met" if worst < ATTACH_TARGET_SECONDS else "MISSED"
        lines.append(
            f"- Spark Connect session attach < {ATTACH_TARGET_SECONDS:.0f} s: "
            f"{worst:.2f} s (largest median), {verdict}"
        )
    if cli_seconds is not None:
        verdict = "met" if cli_seconds <= CLI_TARGET_SECONDS else "MISSED"
        lines.append(
            f"- Dagster CLI `asset materialize --select '*'` of a tiny day <= "
            f"{CLI_TARGET_SECONDS:.0f} s: {cli_seconds:.2f} s (median), {verdict}"
        )
    for (workload, size), agrees in exact.items():
        lines.append(
            f"- {LABELS[workload]} serves exactly the rows of (d) at {size:,} rows/day: "
            f"{'yes' if agrees else 'NO'}"
        )
    return lines


SPARK_WORKLOADS = ("spark", "connect", "spark_sql", "connect_sql")


def spark_lines(summaries: Sequence[Summary]) -> list[str]:
    """Spark's wall and CPU time and peak memory, driver and server apart: in local[2] the
    executors run in the driver's JVM (the process tree); on Connect the client process is the
    driver program and the server runs the executors."""
    lines = [
        "| workload | emission rows/day | median s | driver cpu s | driver peak RSS "
        "| server cpu s | server peak RSS | cpu s in all |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for summary in summaries:
        if summary.workload not in SPARK_WORKLOADS:
            continue
        on_server = summary.max_server_peak_rss_bytes > 0
        lines.append(
            f"| {LABELS[summary.workload]} | {summary.emissions_per_day:,} | "
            f"{summary.median_seconds:.2f} | {summary.median_cpu_seconds:.1f} | "
            f"{gib(summary.max_peak_rss_bytes)} | "
            f"{f'{summary.median_server_cpu_seconds:.1f}' if on_server else '-'} | "
            f"{gib(summary.max_server_peak_rss_bytes) if on_server else '-'} | "
            f"{summary.median_cpu_seconds + summary.median_server_cpu_seconds:.1f} |"
        )
    return lines if len(lines) > 2 else []


def step_lines(summaries: Sequence[Summary]) -> list[str]:
    """Median seconds per step, the profile behind each total."""
    lines = []
    for summary in sorted(
        summaries, key=lambda s: (list(LABELS).index(s.workload), s.emissions_per_day)
    ):
        steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in summary.median_steps.items())
        lines.append(f"- {LABELS[summary.workload]}, {summary.emissions_per_day:,}: {steps}")
    return lines
