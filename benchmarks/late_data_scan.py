"""Time one late_data_sensor scan over 1,000 lake partitions of 100 files each.

500 days x 2 topics, every partition recorded as materialized in a temporary Dagster instance
with its current fingerprint, then one late file dropped: the scan (two instance queries per
topic plus one os.scandir per folder) must find exactly that change in under 2 s.

    .venv/bin/python benchmarks/late_data_scan.py [--days 500] [--files 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    first = today - timedelta(days=args.days)
    # The partitions definition reads the start date at import: set it before importing.
    os.environ["ADRECON_START_DATE"] = first.isoformat()
    import dagster as dg

    from adrecon_assets.lake import Lake
    from adrecon_assets.rules import Topic
    from adrecon_assets.sensors.history import recent_days
    from adrecon_assets.sensors.late_data import find_lake_changes
    from adrecon_assets.warehouse import RAW_DATASET

    with tempfile.TemporaryDirectory() as root, dg.instance_for_test() as instance:
        lake = Lake(Path(root) / "lake")
        days = recent_days(args.days + 1, datetime.now(UTC))[: args.days]
        started = time.perf_counter()
        for topic in Topic:
            for day in days:
                folder = lake.folder(topic, day)
                folder.mkdir(parents=True)
                for index in range(args.files):
                    (folder / f"part-{index:04d}.parquet").write_bytes(b"PAR1")
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        RAW_DATASET[topic].value,
                        partition=day.isoformat(),
                        metadata={"lake_fingerprint": lake.partition(topic, day).fingerprint},
                    )
                )
        partitions = len(days) * len(Topic)
        print(
            f"generated {partitions} partitions x {args.files} files in "
            f"{time.perf_counter() - started:.1f} s"
        )
        late_day = days[len(days) // 2]
        (lake.folder(Topic.CLICKS, late_day) / "late.parquet").write_bytes(b"PAR1")

        started = time.perf_counter()
        changes = find_lake_changes(instance, lake, days)
        seconds = time.perf_counter() - started
        found = [(change.topic.value, change.day.isoformat()) for change in changes]
        print(
            f"scan of {partitions} partitions ({partitions * args.files} files): "
            f"{seconds:.3f} s, changes found: {found}"
        )
        if found != [("clicks", late_day.isoformat())]:
            raise SystemExit(f"expected exactly clicks {late_day}")
        if seconds >= 2.0:
            raise SystemExit("scan took 2 s or more")


if __name__ == "__main__":
    main()
