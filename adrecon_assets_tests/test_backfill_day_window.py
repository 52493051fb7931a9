"""Day-window assets in backfills: Dagster maps a backfill's days through the D-1 and trailing
partition mappings and so also requests days after the range; those are skipped, not failed."""

from __future__ import annotations

import dagster as dg
import pytest

from adrecon_assets.definitions import ASSETS
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_topic

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
    return [asset for asset in ASSETS if not asset.key.path[0].startswith("raw_")]


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
