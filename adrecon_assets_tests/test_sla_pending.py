"""The SLA sensor names a day with no lake data, and waits while a closed day is being reconciled
(a catch-up just launched, or the lake closed it moments ago) instead of alerting a miss."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from adrecon_assets.sensors import sla as sla_sensor_module
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.instance_runs import add_run
from adrecon_assets_tests.sensor_lakes import days_ago, tick_result, write_day

YESTERDAY = days_ago(1)
# After yesterday's deadline (07:00 today), whatever the hour the test runs at.
NOW = datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time(), UTC) + timedelta(
    hours=23
)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def tick(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> dg.SensorResult:
    """One tick of the deployed sensor at NOW, on the test's lake (the `paths` fixture)."""
    monkeypatch.setattr(sla_sensor_module, "utc_now", lambda: NOW)
    return tick_result(instance, "reconciled_statistics_sla_sensor")


def test_day_without_lake_data_is_missed_naming_it(
    instance: dg.DagsterInstance, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The `paths` fixture's lake has both topic folders and no day in them.
    (missed,) = tick(instance, monkeypatch).asset_events
    assert isinstance(missed, dg.AssetCheckEvaluation) and not missed.passed
    assert f"no lake data for {YESTERDAY}" in str(missed.description)


def test_day_with_a_running_catch_up_is_pending(
    instance: dg.DagsterInstance, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_day(paths.lake, YESTERDAY)
    first = (YESTERDAY - timedelta(days=3)).isoformat()
    add_run(
        instance,
        job_name="reconcile_days",
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": YESTERDAY.isoformat(),
        },
        status=dg.DagsterRunStatus.STARTED,
    )
    result = tick(instance, monkeypatch)
    assert result.asset_events == []
    assert "being reconciled" in str(result.skip_reason)


def stamp_lake(paths: Paths, when: datetime) -> None:
    """Make every lake file look written at `when`."""
    for path in paths.lake.rglob("*"):
        os.utime(path, (when.timestamp(), when.timestamp()))


def test_day_closed_moments_ago_is_pending_and_a_stale_one_is_missed(
    instance: dg.DagsterInstance, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_day(paths.lake, YESTERDAY)
    stamp_lake(paths, NOW - timedelta(minutes=1))
    assert tick(instance, monkeypatch).asset_events == []

    stamp_lake(paths, NOW - timedelta(hours=1))
    (missed,) = tick(instance, monkeypatch).asset_events
    assert isinstance(missed, dg.AssetCheckEvaluation) and not missed.passed
    assert "SLA missed: reconciled_statistics" in str(missed.description)
