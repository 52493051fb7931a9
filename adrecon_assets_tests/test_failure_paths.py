"""Failure paths of a day (issue 20 points 7-9): a missing denylist fails the run naming it, a
serving publish that fails leaves the warehouse agreeing with the serving store, and a failed
day keeps its cause: a code bug is reported with its traceback and not retried, a transient
fault is retried by the step's retry policy."""

from __future__ import annotations

import errno
import os
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from adrecon_assets import rules
from adrecon_assets.definitions import ASSETS
from adrecon_assets.engines.base import Engine, FlagReport
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.lake import LocalLake
from adrecon_assets.partitions import first_day
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import STATS_COLUMNS, IpRange, Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import emission, write_topic
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.sensor_lakes import sync_lake
from adrecon_assets_tests.test_bad_input import (
    assert_failed_untouched,
    failure_text,
    good_lake,  # noqa: F401  (fixture)
    run_day,
)
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows
from adrecon_assets_tests.test_ranged_run import (
    FailingStatisticsResource,
    day_job,
    ranged_run,
)

DAYS = [first_day() + timedelta(days=offset) for offset in range(3)]
BROKEN_DAY = DAYS[1]


def test_missing_denylist_fails_the_run_naming_it(
    lake_kind: str,
    good_lake: Paths,  # noqa: F811  (the fixture imported above)
    polars_resources: dict[str, object],
) -> None:
    LocalLake(good_lake.lake).denylist_path.unlink()
    sync_lake()  # the S3 case: the bucket loses it too
    root = os.environ["ADRECON_LAKE_ROOT"]  # the local lake, or its mirror in a bucket
    storage = StorageResource(lake_root=root, warehouse_root=str(good_lake.warehouse))

    result = run_day({**polars_resources, "storage": storage})

    assert_failed_untouched(result, good_lake)  # the serving day is unchanged
    assert root.startswith("s3://") == (lake_kind == "s3")
    assert f"lake denylist {root}/reference/ip_denylist.csv does not exist" in failure_text(result)
    # Bad input, not a transient fault: failed once, never retried.
    assert not [
        event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"
    ]


def statistics_of(paths: Paths, day: date) -> list[tuple[object, ...]]:
    """The warehouse's reconciled_statistics of the day, as serving rows without `source`."""
    folder = Warehouse(paths.warehouse).folder(Dataset.RECONCILED_STATISTICS, day)
    rows = pl.read_parquet(folder / "*.parquet").select(STATS_COLUMNS)
    return sorted(rows.rows())


def published_of(paths: Paths, day: date) -> list[tuple[object, ...]]:
    return sorted(row[:-1] for row in serving_rows(paths.serving_db, day))


def add_late_emission(paths: Paths, day: date) -> None:
    """A late file that changes the day's numbers (a new offer with one emission)."""
    late = [emission("late-e", "late-offer", "p0", 100, f"{day.isoformat()}T12:00:00")]
    write_topic(paths.lake, Topic.EMISSIONS, day, late, name="late")


@pytest.mark.parametrize("ranged", [False, True], ids=["one_day", "ranged"])
def test_a_failed_publish_leaves_warehouse_and_serving_agreeing(
    paths: Paths, polars_resources: dict[str, object], ranged: bool
) -> None:
    days = DAYS[:2]
    build_random_lake(paths.lake, days[0], len(days), seed=11)
    assert ranged_run(polars_resources, days).success
    before = {day: published_of(paths, day) for day in days}
    assert all(before.values()) and {day: statistics_of(paths, day) for day in days} == before
    for day in days:
        add_late_emission(paths, day)
    failing = {
        **polars_resources,
        "serving_db": FailingStatisticsResource(database=str(paths.serving_db)),
    }

    if ranged:
        result = ranged_run(failing, days)
    else:
        result = dg.materialize(
            ASSETS, partition_key=days[1].isoformat(), resources=failing, raise_on_error=False
        )

    assert not result.success and "No space left on device" in failure_text(result)
    # Neither store took the late emission: both still hold the old day.
    assert {day: published_of(paths, day) for day in days} == before
    assert {day: statistics_of(paths, day) for day in days} == before


class FaultyDayEngine(PolarsEngine):
    """Polars, except that fraud_flags of BROKEN_DAY fails `failures_left` times first, with a
    code bug (`kind = "bug"`) or an I/O error."""

    kind = "bug"
    failures_left = 0

    def flag_fraud(
        self, day: date, joined_folder: Path, denylist: list[IpRange], out_folder: Path
    ) -> FlagReport:
        if day == BROKEN_DAY and FaultyDayEngine.failures_left > 0:
            FaultyDayEngine.failures_left -= 1
            if FaultyDayEngine.kind == "bug":
                return FlagReport(clicks=int(1 / 0), valid_clicks=0, reasons={})
            raise OSError(errno.EIO, "Input/output error")
        return super().flag_fraud(day, joined_folder, denylist, out_folder)


class FaultyDayEngineResource(EngineResource):
    def get_engine(self) -> Engine:
        return FaultyDayEngine()


def run_with_faults(
    resources: dict[str, object], kind: str, failures: int
) -> tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]:
    FaultyDayEngine.kind, FaultyDayEngine.failures_left = kind, failures
    instance = dg.DagsterInstance.ephemeral()
    result = day_job({**resources, "engine": FaultyDayEngineResource()}).execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": DAYS[0].isoformat(),
            "dagster/asset_partition_range_end": DAYS[-1].isoformat(),
            "dagster/backfill": "ranged",
        },
        raise_on_error=False,
    )
    return result, instance


def step_events(result: dg.ExecuteInProcessResult, step: str, kind: str) -> list[dg.DagsterEvent]:
    return [
        event
        for event in result.all_events
        if event.step_key == step and event.event_type_value == kind
    ]


def test_a_code_bug_in_a_day_keeps_its_traceback_and_is_not_retried(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    build_random_lake(paths.lake, DAYS[0], len(DAYS), seed=11)

    result, instance = run_with_faults(polars_resources, "bug", failures=3)

    assert not result.success
    assert step_events(result, "fraud_flags", "STEP_UP_FOR_RETRY") == []
    (failure,) = step_events(result, "fraud_flags", "STEP_FAILURE")
    error = failure.step_failure_data.error
    assert error is not None
    reason = f"({BROKEN_DAY}: ZeroDivisionError: division by zero)"
    assert f"fraud_flags: 1 of {len(DAYS)} days failed {reason}" in error.message
    # Chained: the failure's cause is the day's own exception, with its stack.
    assert error.cause is not None and error.cause.cls_name == "ZeroDivisionError"
    assert any("in flag_fraud" in line for line in error.cause.stack)
    # And the step's log has the whole traceback of that day.
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    (logged,) = [message for message in logs if f"fraud_flags {BROKEN_DAY} failed" in message]
    assert "Traceback (most recent call last)" in logged and "ZeroDivisionError" in logged
    assert "not retried" in logged
    # The other days were computed and recorded.
    flagged = {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("fraud_flags")
    }
    assert flagged == {day.isoformat() for day in DAYS if day != BROKEN_DAY}


def test_a_transient_fault_in_a_day_is_retried_by_the_retry_policy(
    paths: Paths, polars_resources: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No in-step budget: the fault reaches the step at once, whose retry policy reruns it.
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_BUDGET_SECONDS", 0)
    build_random_lake(paths.lake, DAYS[0], len(DAYS), seed=11)

    result, _ = run_with_faults(polars_resources, "transient", failures=1)

    assert result.success
    (retry,) = step_events(result, "fraud_flags", "STEP_UP_FOR_RETRY")
    assert "Input/output error" in retry.event_specific_data.error.to_string()  # type: ignore[union-attr]
    for day in DAYS:
        assert serving_rows(paths.serving_db, day) == expected_rows(paths, day)
