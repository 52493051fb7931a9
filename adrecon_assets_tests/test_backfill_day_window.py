"""Day-window assets in backfills: an asset backfill maps its days through the D-1 and trailing
partition mappings and so also requests days after the range; those are skipped, not failed.
A `reconcile_days` job backfill has exactly the chosen days, so there a missing input fails."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from adrecon_assets.checks.sla import reconciled_by_sla_hour
from adrecon_assets.definitions import ASSETS
from adrecon_assets.jobs import RECONCILE_DAYS, reconcile_days
from adrecon_assets.partitions import first_day
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows

DAY = "2026-01-02"
DAY_WINDOW_ASSETS = ["joined_clicks", "anomaly_metrics", "placement_performance"]


@pytest.fixture
def lake_with_one_day(paths: Paths) -> Paths:
    write_topic(
        paths.lake, Topic.EMISSIONS, DAY, [emission("e1", "o1", "top", 100, f"{DAY}T10:00:00")]
    )
    write_topic(paths.lake, Topic.CLICKS, DAY, [click("c1", "e1", "o1", f"{DAY}T10:00:05")])
    return paths


def downstream_selection() -> list[dg.AssetsDefinition]:
    return [asset for asset in ASSETS if not any(k.path[0].startswith("raw_") for k in asset.keys)]


def test_day_added_by_a_backfill_without_its_own_inputs_is_skipped(
    lake_with_one_day: Paths, polars_resources: dict[str, object]
) -> None:
    result = dg.materialize(
        downstream_selection(),
        partition_key=DAY,
        resources=polars_resources,
        tags={"dagster/backfill": "abcdefgh"},
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    assert not (lake_with_one_day.warehouse / "joined_clicks").exists()


def test_same_day_without_its_inputs_outside_a_backfill_fails_naming_them(
    lake_with_one_day: Paths, polars_resources: dict[str, object]
) -> None:
    result = dg.materialize(
        downstream_selection(), partition_key=DAY, resources=polars_resources, raise_on_error=False
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = str(failure.step_failure_data.error.message)
    assert "raw_clicks, raw_emissions for 2026-01-02 never materialized" in message


def test_backfill_run_with_its_inputs_materializes_normally(
    lake_with_one_day: Paths, polars_resources: dict[str, object]
) -> None:
    result = dg.materialize(
        ASSETS, partition_key=DAY, resources=polars_resources, tags={"dagster/backfill": "abcdefgh"}
    )
    assert result.success
    materialized = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert set(DAY_WINDOW_ASSETS) <= materialized


def day_job(resources: dict[str, object]) -> dg.JobDefinition:
    """`reconcile_days` as deployed: every asset (the SLA check is defined, left out)."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[reconciled_by_sla_hour],
        jobs=[reconcile_days],
        resources=resources,
    ).resolve_job_def(RECONCILE_DAYS)


def test_day_job_backfill_reconciles_each_chosen_day_with_every_asset(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = [first_day() + timedelta(days=offset) for offset in range(2)]
    build_random_lake(paths.lake, days[0], len(days), seed=11)
    job = day_job(polars_resources)
    for day in days:  # as the run queue runs a job backfill: one day at a time, oldest first
        result = job.execute_in_process(
            partition_key=day.isoformat(), tags={"dagster/backfill": "abcdefgh"}
        )
        assert result.success
        materialized = {
            event.asset_key.path[-1] for event in result.get_asset_materialization_events()
        }
        assert materialized == {key.path[-1] for asset in ASSETS for key in asset.keys}
        assert serving_rows(paths.serving_db, day) == expected_rows(paths, day) != []


def test_day_job_backfill_without_the_days_inputs_fails_naming_them(
    lake_with_one_day: Paths, polars_resources: dict[str, object]
) -> None:
    result = day_job(polars_resources).execute_in_process(
        partition_key=DAY,
        tags={"dagster/backfill": "abcdefgh"},
        asset_selection=[key for asset in downstream_selection() for key in asset.keys],
        raise_on_error=False,
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "raw_clicks, raw_emissions for 2026-01-02 never materialized" in str(
        failure.step_failure_data.error.message
    )
