"""Time one late_data_sensor scan over many lake partitions of 100 files each.

Local lake (default): 500 days x 2 topics = 1,000 partitions, every partition recorded as
materialized in a temporary Dagster instance with its current fingerprint, then one late file
dropped: the scan (two instance queries per topic plus one os.scandir per folder) must find
exactly that change in under 2 s.

S3 lake (`--lake s3`): the same on moto's S3 server on 127.0.0.1 (objects put straight into
its in-process backend, since uploading 100,000s through HTTP only measures moto), scanned
through the lake interface as the sensor does; it reports the LIST requests per scan (one paged
listing per topic: ceil(objects / 1,000) pages) and must find exactly the late object.

    .venv/bin/python benchmarks/late_data_scan.py [--days 500] [--files 100]
    .venv/bin/python benchmarks/late_data_scan.py --lake s3 --days 1000 --files 100
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any


@contextmanager
def local_lake(root: Path) -> Iterator[tuple[Any, Callable[[str, date, str], None], Any]]:
    from adrecon_assets.lake import LocalLake
    from adrecon_assets.rules import Topic

    lake = LocalLake(root / "lake")

    def put(topic: str, day: date, name: str) -> None:
        folder = lake.folder(Topic(topic), day)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"PAR1")

    yield lake, put, None


@contextmanager
def s3_lake() -> Iterator[tuple[Any, Callable[[str, date, str], None], Any]]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from adrecon_assets.lake import Lake, partition_name
    from adrecon_assets_tests.s3_server import counting_list_requests, running_s3_server

    with running_s3_server() as server, counting_list_requests() as requests:
        os.environ.update(server.environment)
        bucket = server.new_bucket()
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]

        def put(topic: str, day: date, name: str) -> None:
            key = f"lake/{topic}/{partition_name(day)}/{name}"
            backend.put_object(bucket, key, b"PAR1")

        yield Lake(f"s3://{bucket}/lake"), put, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--lake", choices=("local", "s3"), default="local")
    parser.add_argument(
        "--window", type=int, default=0, help="scan only the newest N days (the sensor's lookback)"
    )
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    first = today - timedelta(days=args.days)
    # The partitions definition reads the start date at import: set it before importing.
    os.environ["ADRECON_START_DATE"] = first.isoformat()
    import dagster as dg

    from adrecon_assets.rules import Topic
    from adrecon_assets.sensors.instance_records import recent_days
    from adrecon_assets.sensors.late_data import find_lake_changes
    from adrecon_assets.warehouse import RAW_DATASET

    with (
        tempfile.TemporaryDirectory() as root,
        dg.instance_for_test() as instance,
        s3_lake() if args.lake == "s3" else local_lake(Path(root)) as (lake, put, requests),
    ):
        days = recent_days(args.days + 1, datetime.now(UTC))[: args.days]
        started = time.perf_counter()
        for topic in Topic:
            for day in days:
                for index in range(args.files):
                    put(topic.value, day, f"part-{index:04d}.parquet")
            for day, partition in lake.partitions(topic, days).items():
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        RAW_DATASET[topic].value,
                        partition=day.isoformat(),
                        metadata={"lake_fingerprint": partition.fingerprint},
                    )
                )
        partitions = len(days) * len(Topic)
        print(
            f"generated {partitions} {args.lake} partitions x {args.files} files in "
            f"{time.perf_counter() - started:.1f} s"
        )
        scanned = days[-args.window :] if args.window else days
        late_day = scanned[len(scanned) // 2]
        put(Topic.CLICKS.value, late_day, "late.parquet")

        lists_before = requests.count if requests else 0
        started = time.perf_counter()
        changes = find_lake_changes(instance, lake, scanned)
        seconds = time.perf_counter() - started
        found = [(change.topic.value, change.day.isoformat()) for change in changes]
        listing = f", LIST requests: {requests.count - lists_before}" if requests else ""
        print(
            f"scan of {len(scanned) * len(Topic)} of {partitions} partitions "
            f"({len(scanned) * len(Topic) * args.files} of {partitions * args.files} files): "
            f"{seconds:.3f} s{listing}, changes found: {found}"
        )
        if found != [("clicks", late_day.isoformat())]:
            raise SystemExit(f"expected exactly clicks {late_day}")
        if args.lake == "local" and seconds >= 2.0:
            raise SystemExit("scan took 2 s or more")


if __name__ == "__main__":
    main()
