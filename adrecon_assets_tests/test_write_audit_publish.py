"""Write, audit, publish (contract 4): no row reaches the serving store before the blocking
checks passed on exactly the staged rows; a failed audit leaves the published day as it was."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq

from adrecon_assets import serving
from adrecon_assets.checks.reconciliation import (
    ONLINE_CLICKS_NOT_ERASED,
    PUBLISH_EMPTY_DAY,
    TOTALS_BALANCE,
)
from adrecon_assets.definitions import ASSETS
from adrecon_assets.engines.base import AggregateReport, Engine
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import write_topic
from adrecon_assets_tests.test_bad_input import (
    DAY,
    GOOD_CLICKS,
    GOOD_EMISSIONS,
    GOOD_STATS,
    ONLINE_STATS,
    failure_text,
    folder,
    run_day,
    seed_online_day,
    stats_of_day,
)


class OffByOneRefundEngine(PolarsEngine):
    """A broken engine: its aggregate writes one refund_micros one micro too high (the totals
    of its own report stay right, so only an audit of the written rows can see it)."""

    def aggregate(
        self, day: date, flagged_folder: Path, emission_counts_folder: Path, out_folder: Path
    ) -> AggregateReport:
        report = super().aggregate(day, flagged_folder, emission_counts_folder, out_folder)
        (part,) = out_folder.glob("*.parquet")
        rows = pl.read_parquet(part)
        rows = rows.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.col("refund_micros") + 1)
            .otherwise(pl.col("refund_micros"))
            .alias("refund_micros")
        )
        rows.write_parquet(part)
        return report


class BrokenEngineResource(EngineResource):
    def get_engine(self) -> Engine:
        return OffByOneRefundEngine()


def reconciled_entry(database: Path) -> tuple[object, ...] | None:
    with duckdb.connect(str(database)) as connection:
        return serving.reconciled_entry(connection, DAY)


def published_statistics(paths: Paths) -> list[dict[str, object]]:
    output = Warehouse(paths.warehouse).folder(Dataset.RECONCILED_STATISTICS, DAY)
    return pq.read_table(output).to_pylist()


def test_a_broken_engine_fails_the_audit_and_the_published_day_stays(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    write_topic(paths.lake, Topic.EMISSIONS, DAY, GOOD_EMISSIONS)
    write_topic(paths.lake, Topic.CLICKS, DAY, GOOD_CLICKS)
    good = run_day(polars_resources)
    assert good.success and stats_of_day(paths.serving_db) == GOOD_STATS
    entry = reconciled_entry(paths.serving_db)
    assert entry is not None and entry[2] == good.run_id
    warehouse_before = published_statistics(paths)

    broken = run_day({**polars_resources, "engine": BrokenEngineResource()})

    assert not broken.success
    message = failure_text(broken)
    assert "reconciled_statistics 2026-01-02 not published" in message
    assert f"{TOTALS_BALANCE}: 1 differences" in message
    assert "o1/top: refund_micros 1 (recount 0)" in message
    (check,) = [e for e in broken.get_asset_check_evaluations() if e.check_name == TOTALS_BALANCE]
    assert not check.passed and check.metadata["staged_refund_micros"].value == 1
    # Nothing published: serving rows, the reconciled_days entry and the warehouse as before.
    assert stats_of_day(paths.serving_db) == GOOD_STATS
    assert reconciled_entry(paths.serving_db) == entry
    assert published_statistics(paths) == warehouse_before
    materialized = {e.asset_key.path[-1] for e in broken.get_asset_materialization_events()}
    assert "reconciled_statistics" not in materialized


def lake_without_clicks(paths: Paths) -> None:
    seed_online_day(paths.serving_db)
    write_topic(paths.lake, Topic.EMISSIONS, DAY, GOOD_EMISSIONS)
    (folder(paths, Topic.CLICKS) / "_SUCCESS").touch()


def test_an_empty_day_over_online_clicks_fails_without_touching_serving(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    lake_without_clicks(paths)
    result = run_day(polars_resources)
    assert not result.success
    assert stats_of_day(paths.serving_db) == ONLINE_STATS
    assert reconciled_entry(paths.serving_db) is None
    message = failure_text(result)
    assert f"{ONLINE_CLICKS_NOT_ERASED}: the lake gives no clicks" in message
    assert "the online layer counted 9" in message
    override = '{"ops": {"reconciled_statistics": {"config": {"publish_empty_day": true}}}}'
    assert f"--config-json '{override}'" in message


def test_the_operator_override_publishes_the_empty_day(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    lake_without_clicks(paths)
    override = {"ops": {"reconciled_statistics": {"config": {PUBLISH_EMPTY_DAY: True}}}}
    result = dg.materialize(
        ASSETS,
        partition_key=DAY.isoformat(),
        resources=polars_resources,
        run_config=override,
        raise_on_error=False,
    )
    assert result.success
    assert stats_of_day(paths.serving_db) == [
        ("o1", "top", 1, 0, 0, 0, 0, "offline"),
        ("o2", "side", 1, 0, 0, 0, 0, "offline"),
    ]
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == ONLINE_CLICKS_NOT_ERASED
    ]
    assert check.passed and "operator override" in (check.description or "")
    assert reconciled_entry(paths.serving_db) is not None
