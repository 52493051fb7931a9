"""One partition's whole chain on an engine, called directly (no Dagster): what the six assets
do for day D, step by step, with D-1's raw_emissions already staged (as after yesterday's run)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from adrecon_assets import serving
from adrecon_assets.engines.base import EmissionSource, Engine
from adrecon_assets.lake import Lake
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import RAW_DATASET, Dataset, Warehouse


class StepTimer:
    """Seconds per named step, for the profile column of the results."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def step(self, name: str, started: float) -> None:
        self.seconds[name] = round(time.perf_counter() - started, 3)


def run_engine_chain(
    engine: Engine, lake_root: Path, warehouse_root: Path, serving_db: Path, day: date
) -> dict[str, float]:
    """Stage clicks and emissions of `day`, join, flag, aggregate and replace the day in the
    serving store. Returns seconds per step."""
    lake, warehouse, timer = Lake(lake_root), Warehouse(warehouse_root), StepTimer()
    for topic in (Topic.CLICKS, Topic.EMISSIONS):
        started = time.perf_counter()
        engine.stage_topic(
            lake.partition(topic, day),
            warehouse.folder(RAW_DATASET[topic], day),
            warehouse.quarantine_folder(topic, day),
        )
        timer.step(f"stage_{topic.value}", started)
    sources = [
        EmissionSource(source_day, warehouse.folder(Dataset.RAW_EMISSIONS, source_day))
        for source_day in (day - timedelta(days=1), day)
        if warehouse.exists(Dataset.RAW_EMISSIONS, source_day)
    ]
    joined = warehouse.folder(Dataset.JOINED_CLICKS, day)
    counts = warehouse.folder(Dataset.EMISSION_COUNTS, day)
    flagged = warehouse.folder(Dataset.FRAUD_FLAGS, day)
    statistics = warehouse.folder(Dataset.RECONCILED_STATISTICS, day)
    started = time.perf_counter()
    clicks = warehouse.folder(Dataset.RAW_CLICKS, day)
    engine.join_clicks(day, clicks, sources, joined, counts)
    timer.step("join_clicks", started)
    started = time.perf_counter()
    engine.flag_fraud(day, joined, lake.denylist(), flagged)
    timer.step("flag_fraud", started)
    started = time.perf_counter()
    engine.aggregate(day, flagged, counts, statistics)
    timer.step("aggregate", started)
    started = time.perf_counter()
    with duckdb.connect(str(serving_db)) as connection:
        serving.replace_day(
            connection,
            serving.OFFER_PLACEMENT_STATS,
            day,
            pq.read_table(statistics),
            {"source": serving.OFFLINE_SOURCE},
        )
    timer.step("serving_write", started)
    return timer.seconds
