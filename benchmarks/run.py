"""`make bench`: time the reconciliation of one day four ways and write benchmarks/RESULTS.md.

    python -m benchmarks.run                 # 1/4, 1/2 and 1x of 20M emission rows/day, 3 runs
    python -m benchmarks.run --quick         # a tiny day, 1 run: smoke-tests the harness

Workloads alternate within each round (a b c d a b c d ...), each in a fresh process, so the
noise of a shared machine falls on all of them alike; ratios are taken against the DuckDB job.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from benchmarks import report
from benchmarks.dagster_cli import time_cli_run
from benchmarks.dataset import CACHE_ROOT, lake_for_size, prestaged_warehouse
from benchmarks.machine import describe
from benchmarks.measure import Measurement, measure
from benchmarks.workload import STATISTICS_FILE, WORKLOADS

FULL_SIZE = 20_000_000
DEFAULT_SIZES = (FULL_SIZE // 4, FULL_SIZE // 2, FULL_SIZE)
QUICK_SIZE = 20_000
TINY_DAY_SIZE = 2_000
RESULTS = Path(__file__).parent / "RESULTS.md"


@dataclass(frozen=True)
class BenchmarkRun:
    measurements: list[Measurement]
    exact: dict[str, tuple[int, bool]]
    """Per workload: the largest size it ran, and whether it served the DuckDB job's rows."""
    cli_seconds: float | None
    machine: dict[str, str]


def same_rows(left: Path, right: Path) -> bool:
    return pl.read_parquet(left).equals(pl.read_parquet(right))


@dataclass(frozen=True)
class WorkloadLimit:
    """Run a slow workload only up to `max_size` rows/day and in its first `rounds` rounds."""

    max_size: int
    rounds: int

    def allows(self, size: int, round_number: int) -> bool:
        return size <= self.max_size and round_number <= self.rounds


def run_benchmark(
    sizes: list[int],
    repeats: int,
    workloads: list[str],
    cache_root: Path,
    cli_repeats: int,
    limits: dict[str, WorkloadLimit] | None = None,
    log: Callable[[str], object] = print,
) -> BenchmarkRun:
    machine = describe()
    measurements: list[Measurement] = []
    exact: dict[str, tuple[int, bool]] = {}
    for size in sizes:
        lake = lake_for_size(size, cache_root)
        prestaged = prestaged_warehouse(lake)
        log(f"{size:,} emission rows/day: {lake.emission_rows:,} emission rows over 2 days, ")
        log(f"  {lake.click_rows:,} click rows over 2 days")
        outputs = cache_root / "outputs" / str(size)
        shutil.rmtree(outputs, ignore_errors=True)
        outputs.mkdir(parents=True)
        for round_number in range(1, repeats + 1):
            for workload in workloads:
                limit = (limits or {}).get(workload)
                if limit is not None and not limit.allows(size, round_number):
                    continue
                work = cache_root / "work" / workload
                result = measure(workload, lake.lake, prestaged, work, lake.day, size)
                measurements.append(result)
                (work / STATISTICS_FILE).replace(outputs / f"{workload}.parquet")
                log(
                    f"  round {round_number} {workload:8s} {result.seconds:7.2f} s "
                    f"(process {result.process_seconds:.2f} s) "
                    f"peak {report.gib(result.peak_rss_bytes)} {result.steps}"
                )
        # Exactness at the largest size each workload ran (the last one written wins).
        for workload in workloads:
            output = outputs / f"{workload}.parquet"
            if workload != "duckdb" and output.exists() and "duckdb" in workloads:
                exact[workload] = (size, same_rows(output, outputs / "duckdb.parquet"))
    cli_seconds = None
    if cli_repeats:
        tiny = lake_for_size(TINY_DAY_SIZE, cache_root)
        runs = [
            time_cli_run(tiny.lake, cache_root / "work" / "cli", tiny.day)
            for _ in range(cli_repeats)
        ]
        cli_seconds = statistics.median(runs)
        log(f"dagster CLI run of a tiny day: {', '.join(f'{s:.2f}' for s in runs)} s")
    return BenchmarkRun(measurements, exact, cli_seconds, machine)


def markdown(run: BenchmarkRun, command: str) -> str:
    summaries = report.summarize(run.measurements)
    lines = [
        "# Benchmark results (issue 7)",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in run.machine.items()),
        "",
        "## Medians",
        "",
        "Seconds are work time inside a fresh process (imports excluded; Spark's session start "
        "included); `process s` is the whole process. Peak RSS is the whole process tree.",
        "",
        *report.results_table(summaries),
        "",
        "## Targets",
        "",
        *report.target_lines(summaries, run.cli_seconds, run.exact),
        "",
        "## Steps (median seconds)",
        "",
        *report.step_lines(summaries),
        "",
    ]
    return "\n".join(lines)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda text: [int(v) for v in text.split(",")])
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--cli-repeats", type=int)
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="WORKLOAD=MAX_SIZE:ROUNDS",
        help="run a slow workload only up to MAX_SIZE rows/day and in its first ROUNDS rounds",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny day, one run of each")
    parser.add_argument("--cache", type=Path, default=CACHE_ROOT)
    parser.add_argument("--results", type=Path, help=f"markdown output (default {RESULTS})")
    arguments = parser.parse_args(argv)
    arguments.sizes = arguments.sizes or ([QUICK_SIZE] if arguments.quick else list(DEFAULT_SIZES))
    arguments.repeats = arguments.repeats or (1 if arguments.quick else 3)
    if arguments.cli_repeats is None:
        arguments.cli_repeats = 1 if arguments.quick else 3
    arguments.workloads = arguments.workloads.split(",")
    unknown = set(arguments.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {sorted(WORKLOADS)}")
    if arguments.results is None and not arguments.quick:
        arguments.results = RESULTS
    return arguments


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    arguments = parse_arguments(argv)
    limits = {}
    for text in arguments.limit:
        workload, _, bounds = text.partition("=")
        max_size, _, rounds = bounds.partition(":")
        limits[workload] = WorkloadLimit(int(max_size), int(rounds or arguments.repeats))
    run = run_benchmark(
        arguments.sizes,
        arguments.repeats,
        arguments.workloads,
        arguments.cache,
        arguments.cli_repeats,
        limits,
    )
    text = markdown(run, "python -m benchmarks.run " + " ".join(argv))
    print(text)
    if arguments.results is not None:
        arguments.results.write_text(text)
    return 0 if all(agrees for _, agrees in run.exact.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
