"""Time reading one lake day from S3 against the same day from disk (contract 2.1).

Simulates a day (`adrecon_simulate`, 4 files a topic plus the late file), mirrors the lake into
a bucket of moto's S3 server on 127.0.0.1, then stages both topics of the day with the Polars
engine (footer checks, typing, quarantine rules, the valid rows written to the warehouse),
alternating disk and S3, and prints the median of each. Staging is the only step that reads
the lake; every later step reads the local warehouse.

    .venv/bin/python benchmarks/s3_day_read.py [--emissions-per-day 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

DAY = date(2026, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emissions-per-day", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from adrecon_assets.engines.polars_engine import PolarsEngine
    from adrecon_assets.lake import Lake
    from adrecon_assets.rules import Topic
    from adrecon_assets_tests.s3_server import LakeMirror, running_s3_server
    from adrecon_simulate import SimulationConfig, simulate

    with tempfile.TemporaryDirectory() as root, running_s3_server() as server:
        os.environ.update(server.environment)
        lake_root = Path(root) / "lake"
        config = SimulationConfig(
            lake=lake_root,
            serving_db=None,
            start=DAY,
            days=1,
            emissions_per_day=args.emissions_per_day,
            seed=3,
        )
        simulate(config)
        mirror = LakeMirror(server, lake_root, server.new_bucket())
        started = time.perf_counter()
        mirror.sync()
        print(f"uploaded the lake to moto in {time.perf_counter() - started:.1f} s")

        engine = PolarsEngine()
        timings: dict[str, list[float]] = {"disk": [], "s3": []}
        rows: dict[str, int] = {}
        for _ in range(args.repeats):
            for kind, lake in (("disk", Lake(lake_root)), ("s3", Lake(mirror.url))):
                out = Path(root) / "out"
                shutil.rmtree(out, ignore_errors=True)
                started = time.perf_counter()
                rows[kind] = 0
                for topic in Topic:
                    partition = lake.partition(topic, DAY)
                    report = engine.stage_topic(
                        partition, out / topic.value, out / f"q-{topic.value}"
                    )
                    rows[kind] += report.rows_in
                timings[kind].append(time.perf_counter() - started)
        if rows["disk"] != rows["s3"]:
            raise SystemExit(f"rows differ: {rows}")
        size = sum(
            lake_file.size
            for topic in Topic
            for lake_file in Lake(lake_root).partition(topic, DAY).files
        )
        print(
            f"one day ({rows['disk']:,} lake rows, {size / 1e6:.1f} MB of Parquet) staged: "
            f"disk {statistics.median(timings['disk']):.2f} s, "
            f"S3 (moto, 127.0.0.1) {statistics.median(timings['s3']):.2f} s "
            f"(median of {args.repeats})"
        )


if __name__ == "__main__":
    main()
