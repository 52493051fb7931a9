"""`make bench`: time the reconciliation of one day four ways and write benchmarks/RESULTS.md.

    python -m benchmarks.run                 # 5M, 20M (3 runs) and 100M (1 run) rows/day
    python -m benchmarks.run --quick         # a tiny day, 1 run: smoke-tests the harness

Workloads alternate within each round (a b c d a b c d ...), each in a fresh process, so the
noise of a shared machine falls on all of them alike; ratios are taken against the DuckDB job.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psutil
import pyarrow.parquet as pq

from benchmarks import report
from benchmarks.dagster_cli import time_cli_run
from benchmarks.dataset import CACHE_ROOT, SHAPES, SIMULATED, lake_for_size, prestaged_warehouse
from benchmarks.machine import describe, load_average
from benchmarks.measure import Measurement, RunningServer, measure
from benchmarks.plot import PLOT, plot_scaling
from benchmarks.serving_write import ServingWrite, measure_serving_writes, serving_write_lines
from benchmarks.workload import STATISTICS_FILE, WORKLOADS

FULL_SIZE = 20_000_000
LARGE_SIZE = 100_000_000
DEFAULT_SIZES = (FULL_SIZE // 4, FULL_SIZE, LARGE_SIZE)
# A 100M-row day is heavy on a shared machine: one round of each workload there.
LARGE_SIZE_ROUNDS = 1
# The in-process Dagster run stops at the 20M-row day: at 100M rows/day the whole CLI run (cli)
# is the measured one. Spark in its own JVM (and its SQL job) runs once a size, the Connect
# workloads (a warm server) up to three times; issue 24 measures both up to 100M rows/day.
DEFAULT_LIMITS = {
    "spark": (LARGE_SIZE, 1),
    "connect": (LARGE_SIZE, 3),
    "spark_sql": (LARGE_SIZE, 1),
    "connect_sql": (LARGE_SIZE, 3),
    "dagster": (FULL_SIZE, 3),
}
QUICK_SIZE = 20_000
TINY_DAY_SIZE = 2_000
RESULTS = Path(__file__).parent / "RESULTS.md"


@dataclass(frozen=True)
class BenchmarkRun:
    measurements: list[Measurement]
    exact: dict[tuple[str, str, int], bool]
    """Per workload, lake shape and size it ran beside the DuckDB job: whether it served the
    same rows."""
    serving_rows: dict[tuple[str, int], int]
    """Per lake shape and size: the day's serving rows ((offer_id, placement) keys)."""
    cli_seconds: float | None
    machine: dict[str, str]
    load_at_end: str
    serving_writes: dict[str, list[ServingWrite]] = dataclasses.field(default_factory=dict)
    """Per lake (its label): the day's serving write into each store (--serving-writes)."""


def same_rows(left: Path, right: Path) -> bool:
    return pl.read_parquet(left).equals(pl.read_parquet(right))


@dataclass(frozen=True)
class WorkloadLimit:
    """Run a slow workload only up to `max_size` rows/day and in its first `rounds` rounds."""

    max_size: int
    rounds: int

    def allows(self, size: int, round_number: int) -> bool:
        return size <= self.max_size and round_number <= self.rounds


CONNECT_WORKLOADS = ("connect", "connect_sql")


@contextmanager
def attached(server: RunningServer) -> Iterator[list[psutil.Process]]:
    """ADRECON_SPARK_REMOTE points the workload processes at `server` meanwhile."""
    os.environ["ADRECON_SPARK_REMOTE"] = server.remote
    try:
        yield server.processes
    finally:
        os.environ.pop("ADRECON_SPARK_REMOTE", None)


@contextmanager
def warm_connect_server(
    cache_root: Path, log: Callable[[str], object]
) -> Iterator[list[psutil.Process]]:
    """A Spark Connect server (local[2], the Spark workload's driver memory) for the `connect`
    and `connect_sql` runs, started once. Yields the server's processes (the runner's children
    then), whose CPU and memory each run's measurement samples."""
    from adrecon_assets.engines.spark_connect_server import local_connect_server
    from benchmarks.workload import SPARK_DRIVER_MEMORY, SPARK_MASTER

    overrides = {"spark.driver.memory": SPARK_DRIVER_MEMORY}
    started = time.perf_counter()
    with local_connect_server(cache_root / "connect-server.log", SPARK_MASTER, overrides) as url:
        log(f"Spark Connect server at {url} up in {time.perf_counter() - started:.1f} s")
        with attached(RunningServer(url, psutil.Process().children(recursive=True))) as processes:
            yield processes


def run_benchmark(
    sizes: list[int],
    repeats: int,
    workloads: list[str],
    cache_root: Path,
    cli_repeats: int,
    limits: dict[str, WorkloadLimit] | None = None,
    log: Callable[[str], object] = print,
    shapes: tuple[str, ...] = (SIMULATED,),
    serving_writes: bool = False,
    connect_server: RunningServer | None = None,
    connect_warm_up: bool = True,
) -> BenchmarkRun:
    """`connect_server`: the Connect workloads' server, if already running (else one is
    started for them). `connect_warm_up=False` skips the unmeasured warm-up run before the
    first Connect workload (for a check of the harness, whose seconds say nothing)."""
    machine = describe()
    connect = any(workload in CONNECT_WORKLOADS for workload in workloads)
    server: AbstractContextManager[list[psutil.Process]] = nullcontext([])
    if connect:
        server = (
            attached(connect_server) if connect_server else warm_connect_server(cache_root, log)
        )
    with server as server_processes:
        measurements: list[Measurement] = []
        exact: dict[tuple[str, str, int], bool] = {}
        serving_rows: dict[tuple[str, int], int] = {}
        for shape in shapes:
            runs, agreement, rows = run_sizes(
                sizes,
                repeats,
                workloads,
                cache_root,
                limits or {},
                log,
                server_processes,
                shape,
                warmed=not connect_warm_up,
            )
            measurements += runs
            exact.update(agreement)
            serving_rows.update(rows)
    writes: dict[str, list[ServingWrite]] = {}
    for shape in shapes if serving_writes else ():
        for size in sizes:
            served = cache_root / "outputs" / shape / str(size) / "duckdb.parquet"
            if served.exists():
                lake = lake_for_size(size, cache_root, shape)
                writes[report.day_label(size, shape)] = measure_serving_writes(served, lake.day)
                log(f"serving writes of {report.day_label(size, shape)} rows/day timed")
    cli_seconds = None
    if cli_repeats:
        tiny = lake_for_size(TINY_DAY_SIZE, cache_root)
        runs = [
            time_cli_run(tiny.lake, cache_root / "work" / "cli", tiny.day)
            for _ in range(cli_repeats)
        ]
        cli_seconds = statistics.median(runs)
        log(f"dagster CLI run of a tiny day: {', '.join(f'{s:.2f}' for s in runs)} s")
    return BenchmarkRun(
        measurements, exact, serving_rows, cli_seconds, machine, load_average(), writes
    )


def warm_up(cache_root: Path, log: Callable[[str], object]) -> None:
    tiny = lake_for_size(TINY_DAY_SIZE, cache_root)
    run = measure(
        "connect",
        tiny.lake,
        prestaged_warehouse(tiny),
        cache_root / "work" / "connect",
        tiny.day,
        TINY_DAY_SIZE,
    )
    log(f"  warm-up  connect  {run.seconds:7.2f} s on a {TINY_DAY_SIZE:,}-row day (not counted)")


def run_sizes(
    sizes: list[int],
    repeats: int,
    workloads: list[str],
    cache_root: Path,
    limits: dict[str, WorkloadLimit],
    log: Callable[[str], object],
    server_processes: list[psutil.Process],
    shape: str = SIMULATED,
    warmed: bool = False,
) -> tuple[list[Measurement], dict[tuple[str, str, int], bool], dict[tuple[str, int], int]]:
    """`warmed`: whether the Connect server needs no warm-up run before its first workload."""
    measurements: list[Measurement] = []
    exact: dict[tuple[str, str, int], bool] = {}
    serving_rows: dict[tuple[str, int], int] = {}
    for size in sizes:
        lake = lake_for_size(size, cache_root, shape)
        prestaged = prestaged_warehouse(lake)
        log(f"{size:,} emission rows/day ({shape}): {lake.emission_rows:,} emission rows ")
        log(f"  over 2 days, {lake.click_rows:,} click rows")
        outputs = cache_root / "outputs" / shape / str(size)
        shutil.rmtree(outputs, ignore_errors=True)
        outputs.mkdir(parents=True)
        rounds = repeats if size <= FULL_SIZE else min(repeats, LARGE_SIZE_ROUNDS)
        for round_number in range(1, rounds + 1):
            for workload in workloads:
                limit = limits.get(workload)
                if limit is not None and not limit.allows(size, round_number):
                    continue
                if workload in CONNECT_WORKLOADS and not warmed:
                    # One unmeasured run on a tiny day, so the measured ones find a warm JVM
                    # (classes loaded, code generated) as a long-running server would.
                    warm_up(cache_root, log)
                    warmed = True
                work = cache_root / "work" / workload
                server = server_processes if workload in CONNECT_WORKLOADS else None
                result = measure(workload, lake.lake, prestaged, work, lake.day, size, server)
                result = dataclasses.replace(result, shape=shape)
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
                exact[(workload, shape, size)] = same_rows(output, outputs / "duckdb.parquet")
        served = sorted(outputs.glob("*.parquet"))
        if served:
            serving_rows[(shape, size)] = pq.ParquetFile(served[0]).metadata.num_rows
    return measurements, exact, serving_rows


def markdown(run: BenchmarkRun, command: str) -> str:
    summaries = report.summarize(run.measurements)
    lines = [
        "# Benchmark results (issues 7 and 15)",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in run.machine.items()),
        f"- load average (1, 5, 15 min) at the end: {run.load_at_end}",
        "",
        "## Lakes",
        "",
        *report.lake_lines(run.serving_rows),
        "",
        "## Medians",
        "",
        "Seconds are work time inside a fresh process (imports excluded; Spark's session start "
        "or Connect attach included); `process s` is the whole process; `cpu s` is its user + "
        "system CPU time with its children's (on a shared machine the steadier cost figure; "
        "the Connect server's CPU is not in (c')'s). Peak RSS is the whole process tree.",
        "",
        *report.results_table(summaries),
        "",
        "## Targets",
        "",
        *report.target_lines(summaries, run.cli_seconds, run.exact),
        "",
        "## Serving write (the DuckDB job's rows, the store's replace_day)",
        "",
        *serving_write_lines(run.serving_writes),
        "",
        "## Spark: driver and server",
        "",
        *report.spark_lines(summaries),
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
    parser.add_argument(
        "--shapes",
        default=SIMULATED,
        help=f"comma-separated lake shapes, of {', '.join(SHAPES)} (default {SIMULATED})",
    )
    parser.add_argument("--cli-repeats", type=int)
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="WORKLOAD=MAX_SIZE:ROUNDS",
        help="run a slow workload only up to MAX_SIZE rows/day and in its first ROUNDS rounds",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny day, one run of each")
    parser.add_argument(
        "--serving-writes",
        action="store_true",
        help="also time the day's serving write into DuckDB and a local PostgreSQL (needs duckdb)",
    )
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
    arguments.shapes = tuple(arguments.shapes.split(","))
    if set(arguments.shapes) - set(SHAPES):
        parser.error(f"unknown shapes in {arguments.shapes}; choose from {list(SHAPES)}")
    if arguments.results is None and not arguments.quick:
        arguments.results = RESULTS
    return arguments


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    arguments = parse_arguments(argv)
    limits = {
        workload: WorkloadLimit(max_size, min(rounds, arguments.repeats))
        for workload, (max_size, rounds) in DEFAULT_LIMITS.items()
    }
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
        shapes=arguments.shapes,
        serving_writes=arguments.serving_writes,
    )
    text = markdown(run, "python -m benchmarks.run " + " ".join(argv))
    print(text)
    if arguments.results is not None:
        arguments.results.write_text(text)
        plot_scaling(report.summarize(run.measurements), arguments.results.parent / PLOT.name)
    return 0 if all(run.exact.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
