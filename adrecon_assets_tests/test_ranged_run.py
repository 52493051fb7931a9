"""A ranged `reconcile_days` run (one run over several days, as a single-run backfill launches
it) gives exactly what one run per day gives, records each day separately, and names a failing
day without hiding the days around it."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from adrecon_assets import serving
from adrecon_assets.checks.sla import reconciled_by_sla_hour
from adrecon_assets.definitions import ASSETS
from adrecon_assets.jobs import RECONCILE_DAYS, reconcile_days
from adrecon_assets.partitions import first_day
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows, write_online_rows

DAYS = 4
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def run_days() -> list[date]:
    return [first_day() + timedelta(days=offset) for offset in range(DAYS)]


def day_job(resources: dict[str, object]) -> dg.JobDefinition:
    """`reconcile_days` as deployed: every asset and the SLA check."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[reconciled_by_sla_hour],
        jobs=[reconcile_days],
        resources=resources,
    ).resolve_job_def(RECONCILE_DAYS)


def ranged_run(resources: dict[str, object], days: list[date]) -> dg.ExecuteInProcessResult:
    return day_job(resources).execute_in_process(
        tags={
            RANGE_START: days[0].isoformat(),
            RANGE_END: days[-1].isoformat(),
            "dagster/backfill": "ranged",
        },
        raise_on_error=False,
    )


def anomaly_rows(paths: Paths, day: date) -> list[tuple[object, ...]]:
    folder = Warehouse(paths.warehouse).folder(Dataset.ANOMALY_METRICS, day)
    return pl.read_parquet(folder / "*.parquet").sort("placement").rows()


def test_ranged_run_equals_one_run_per_day_and_the_reference(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    job = day_job(polars_resources)
    for day in days:
        assert job.execute_in_process(partition_key=day.isoformat()).success
    per_day = {day: (serving_rows(paths.serving_db, day), anomaly_rows(paths, day)) for day in days}

    result = ranged_run(polars_resources, days)

    assert result.success
    for day in days:
        rows, anomalies = per_day[day]
        assert rows == expected_rows(paths, day) != []
        assert serving_rows(paths.serving_db, day) == rows
        # Baselines are float means and deviations: equal up to the summation order's last bit.
        assert anomaly_rows(paths, day) == [
            tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in row)
            for row in anomalies
        ]
    # One materialization per asset and day, each with that day's own numbers.
    materialized = result.get_asset_materialization_events()
    assert len(materialized) == len({key for asset in ASSETS for key in asset.keys}) * DAYS
    statistics = {
        event.partition: event.materialization.metadata["clicks"].value
        for event in materialized
        if event.asset_key == dg.AssetKey("reconciled_statistics")
    }
    assert statistics == {
        day.isoformat(): sum(row[4] for row in per_day[day][0])  # type: ignore[misc]
        for day in days
    }
    # Each check evaluated once per day, on that day; the SLA too (reconciled in time).
    sla = {
        evaluation.partition: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "reconciled_by_sla_hour"
    }
    assert sla == {day.isoformat(): True for day in days}
    evaluations = [
        (evaluation.check_name, evaluation.partition)
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey("joined_clicks")
    ]
    assert sorted(evaluations) == sorted(
        (name, day.isoformat())
        for name in ("duplicate_click_rate", "every_click_joined_once", "orphan_click_rate")
        for day in days
    )


def test_failing_day_of_a_ranged_run_names_itself_and_the_others_are_recorded(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    broken = days[2]
    corrupt = paths.lake / Topic.CLICKS.value / f"date_partition={broken}" / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet")
    write_online_rows(serving.DuckDBServingStore(paths.serving_db), broken)
    online = serving_rows(paths.serving_db, broken)

    result = ranged_run(polars_resources, days)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert failure.step_key == "raw_clicks"
    message = str(failure.step_failure_data.error.message)
    assert f"1 of {DAYS} days failed ({broken}: bad lake input:" in message
    assert "corrupt.parquet" in message
    recorded = {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("raw_clicks")
    }
    assert recorded == {day.isoformat() for day in days if day != broken}
    assert serving_rows(paths.serving_db, broken) == online != []
