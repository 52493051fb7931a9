"""Run one day through the Polars engine's steps directly (no Dagster), and compare with the
independent reference, so every rule test checks the engine and the reference at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa

from adrecon_assets.engines.base import (
    AggregateReport,
    EmissionSource,
    Engine,
    FlagReport,
    JoinReport,
)
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.lake import Lake
from adrecon_assets.partitions import first_day, previous_day
from adrecon_assets.rules import STATS_COLUMNS, STATS_KEY, Topic
from adrecon_assets.warehouse import RAW_DATASET, Dataset, Warehouse
from adrecon_assets_tests.reference import reference_day

StatsRow = tuple[date, str, str, int, int, int, int, int]


@dataclass(frozen=True)
class DayRun:
    join: JoinReport
    flags: FlagReport
    totals: AggregateReport
    reasons: dict[str, str | None]
    statistics: list[StatsRow]


def table_rows(table: pa.Table | pl.DataFrame) -> list[tuple[object, ...]]:
    """Rows of the STATS_COLUMNS in order, as plain Python tuples."""
    frame = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return list(frame.select(STATS_COLUMNS).iter_rows())


def stage(engine: Engine, lake: Lake, warehouse: Warehouse, topic: Topic, day: date) -> Path:
    out = warehouse.folder(RAW_DATASET[topic], day)
    report = engine.stage_topic(
        lake.partition(topic, day), out, warehouse.quarantine_folder(topic, day)
    )
    assert report.quarantined_rows == 0, report.quarantined
    return out


def run_polars_day(lake_root: Path, warehouse_root: Path, day: date) -> DayRun:
    """Stage, join, flag and aggregate day D exactly as the assets chain the engine's steps."""
    return run_engine_day(PolarsEngine(), lake_root, warehouse_root, day)


def run_engine_day(
    engine: Engine,
    lake_root: Path,
    warehouse_root: Path,
    day: date,
    previous_day_engine: Engine | None = None,
) -> DayRun:
    """`run_polars_day` on any engine; D-1's emissions staged by `previous_day_engine` if given
    (as after a switch of engines between two days)."""
    lake, warehouse = Lake(lake_root), Warehouse(warehouse_root)
    clicks = stage(engine, lake, warehouse, Topic.CLICKS, day)
    sources = []
    before = previous_day(day)
    if before is not None:
        sources.append(
            EmissionSource(
                before,
                stage(previous_day_engine or engine, lake, warehouse, Topic.EMISSIONS, before),
            )
        )
    sources.append(EmissionSource(day, stage(engine, lake, warehouse, Topic.EMISSIONS, day)))
    joined = warehouse.folder(Dataset.JOINED_CLICKS, day)
    counts = warehouse.folder(Dataset.EMISSION_COUNTS, day)
    join = engine.join_clicks(day, clicks, sources, joined, counts)
    flagged = warehouse.folder(Dataset.FRAUD_FLAGS, day)
    flags = engine.flag_fraud(day, joined, lake.denylist(), flagged)
    statistics = warehouse.folder(Dataset.RECONCILED_STATISTICS, day)
    totals = engine.aggregate(day, flagged, counts, statistics)
    reasons = dict(pl.read_parquet(flagged / "*.parquet").select("click_id", "fraud_reason").rows())
    # By key: the rows' order in the warehouse file is not part of its contract.
    rows = table_rows(pl.read_parquet(statistics / "*.parquet").sort(STATS_KEY))
    return DayRun(join, flags, totals, reasons, rows)  # type: ignore[arg-type]


def reconcile(lake_root: Path, warehouse_root: Path, day: date | str) -> DayRun:
    """The engine's result for day D, after asserting that the reference computes the same."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    run = run_polars_day(lake_root, warehouse_root, day)
    expected_statistics, expected_reasons = reference_day(lake_root, day, first_day())
    assert run.reasons == expected_reasons, "engine and reference disagree on fraud reasons"
    assert run.statistics == table_rows(expected_statistics), (
        "engine and reference disagree on statistics"
    )
    return run
