"""One Polars engine step of day D in this process, with its time and peak memory: the
per-step profile behind a CLI run's peak RSS.

    python -m benchmarks.step_memory {stage_clicks,stage_emissions,join,flag} LAKE WAREHOUSE DAY

WAREHOUSE holds D-1's raw_emissions (a hard-linked copy of the benchmark's pre-staged
warehouse) and, for `join` and `flag`, the outputs of the steps before. Prints one JSON line:
seconds, CPU seconds and the process's peak RSS (ru_maxrss, imports included)."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from adrecon_assets.engines.base import EmissionSource
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.lake import Lake
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import RAW_DATASET, Dataset, Warehouse


def step(name: str, lake: Lake, warehouse: Warehouse, day: date) -> Callable[[], object]:
    engine = PolarsEngine()
    if name.startswith("stage_"):
        topic = Topic(name.removeprefix("stage_"))
        return lambda: engine.stage_topic(
            lake.partition(topic, day),
            warehouse.folder(RAW_DATASET[topic], day),
            warehouse.quarantine_folder(topic, day),
        )
    joined = warehouse.folder(Dataset.JOINED_CLICKS, day)
    if name == "join":
        sources = [
            EmissionSource(source_day, warehouse.folder(Dataset.RAW_EMISSIONS, source_day))
            for source_day in (day - timedelta(days=1), day)
        ]
        clicks = warehouse.folder(Dataset.RAW_CLICKS, day)
        counts = warehouse.folder(Dataset.EMISSION_COUNTS, day)
        return lambda: engine.join_clicks(day, clicks, sources, joined, counts)
    if name == "flag":
        flagged = warehouse.folder(Dataset.FRAUD_FLAGS, day)
        return lambda: engine.flag_fraud(day, joined, lake.denylist(), flagged)
    raise SystemExit(f"unknown step {name!r}")


def main(argv: list[str]) -> None:
    name, lake, warehouse = argv[0], Lake(Path(argv[1])), Warehouse(Path(argv[2]))
    run = step(name, lake, warehouse, date.fromisoformat(argv[3]))
    started = time.perf_counter()
    report = run()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "step": name,
                "seconds": round(seconds, 1),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
                "report": repr(report),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
