"""The whole `dagster asset materialize` CLI run of one benchmark day against the DuckDB SQL
job, with the DuckDB job's rows and figures kept for reuse (it takes ~10 minutes at 100M rows/day,
and its result does not depend on the pipeline's code):

    python -m benchmarks.cli_against_duckdb --size 100000000 --cache /work/benchcache \\
        --reference /tmp/duckdb-100M     # CLI run, then DuckDB once (reused after)

Prints each measurement (seconds, CPU, process-tree peak RSS, steps), the ratio and whether the
CLI run served exactly the DuckDB job's rows."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from benchmarks.dataset import CACHE_ROOT, lake_for_size, prestaged_warehouse
from benchmarks.machine import load_average
from benchmarks.measure import Measurement, measure
from benchmarks.report import gib
from benchmarks.run import same_rows
from benchmarks.workload import STATISTICS_FILE


def measured(workload: str, size: int, cache: Path, work: Path, keep: Path) -> Measurement:
    lake = lake_for_size(size, cache)
    result = measure(workload, lake.lake, prestaged_warehouse(lake), work, lake.day, size)
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / STATISTICS_FILE, keep / f"{workload}.parquet")
    (keep / f"{workload}.json").write_text(json.dumps(asdict(result)))
    if (work / "cli.log").exists():  # the run's Dagster log: step and engine times
        shutil.copy(work / "cli.log", keep / "cli.log")
    print(
        f"{workload} {size:,}: {result.seconds:.1f} s (process {result.process_seconds:.1f} s, "
        f"{result.cpu_seconds:.1f} CPU-s) peak {gib(result.peak_rss_bytes)} {result.steps}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--cache", type=Path, default=CACHE_ROOT)
    parser.add_argument("--reference", type=Path, required=True, help="DuckDB result folder")
    parser.add_argument("--work", type=Path, help="scratch (default CACHE/work)")
    arguments = parser.parse_args()
    work = arguments.work or arguments.cache / "work"
    reference = arguments.reference
    print(f"load before: {load_average()}", flush=True)
    cli = measured("cli", arguments.size, arguments.cache, work / "cli", reference)
    if (reference / "duckdb.json").exists():
        duckdb = Measurement(**json.loads((reference / "duckdb.json").read_text()))
        print(f"duckdb {arguments.size:,}: reused {duckdb.seconds:.1f} s from {reference}")
    else:
        duckdb = measured("duckdb", arguments.size, arguments.cache, work / "duckdb", reference)
    exact = same_rows(reference / "cli.parquet", reference / "duckdb.parquet")
    print(f"cli / duckdb = {cli.seconds / duckdb.seconds:.2f}x, exact: {exact}")
    print(f"load after: {load_average()}")


if __name__ == "__main__":
    main()
