"""Busy days: a requested backfill holds its days before Dagster created its run, so
lake_readiness_sensor launches no second run of them; a finished, canceled or given-up backfill
holds nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from adrecon_assets.rules import Topic
from adrecon_assets.run_tags import (
    BACKFILL_TAG,
    FAILURE_REASON_TAG,
    MAX_RETRIES_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RETRY_NUMBER_TAG,
    WILL_RETRY_TAG,
)
from adrecon_assets.sensors.busy_days import backfill_days, busy_days
from adrecon_assets_tests.backfills import add_backfill
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.instance_runs import add_run
from adrecon_assets_tests.lakes import click, write_topic
from adrecon_assets_tests.sensor_lakes import (
    age,
    days_ago,
    record_materializations,
    tick,
    write_day,
)

# Five closed, unreconciled days; an operator backfills the middle three (D1-D3).
D0, D1, D2, D3, D4 = (days_ago(count) for count in (5, 4, 3, 2, 1))
DAYS = [D0, D1, D2, D3, D4]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    # In memory: none of these tests runs anything, and it starts in a fraction of a second.
    with dg.DagsterInstance.ephemeral() as test_instance:
        yield test_instance


def now() -> datetime:
    return datetime.now(UTC)


def backfill_run(
    instance: dg.DagsterInstance,
    status: dg.DagsterRunStatus,
    first: date = D1,
    last: date = D3,
    tags: Mapping[str, str] | None = None,
) -> None:
    """The backfill `b1`'s ranged run of `first`..`last` (its single-run policy)."""
    add_run(
        instance,
        job_name="reconcile_days",
        tags={
            BACKFILL_TAG: "b1",
            RANGE_START_TAG: first.isoformat(),
            RANGE_END_TAG: last.isoformat(),
            **(tags or {}),
        },
        status=status,
    )


def test_requested_job_backfill_holds_its_partitions(instance: dg.DagsterInstance) -> None:
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D1, D2, D3])
    assert backfill_days(instance, DAYS, now()) == {D1, D2, D3}
    # Only the days asked about.
    assert backfill_days(instance, [D0, D3], now()) == {D3}


def test_requested_asset_backfill_holds_every_day_of_its_target(
    instance: dg.DagsterInstance,
) -> None:
    # As the global asset graph maps a backfill of D1-D3: joined_clicks D4 reads
    # raw_emissions D3, so the chain of D4 is in the target too.
    add_backfill(
        instance,
        "b1",
        "REQUESTED",
        asset_days={"raw_clicks": (D1, D3), "reconciled_statistics": (D1, D4)},
    )
    assert backfill_days(instance, DAYS, now()) == {D1, D2, D3, D4}


@pytest.mark.parametrize("status", ["COMPLETED_SUCCESS", "COMPLETED_FAILED", "CANCELED"])
def test_ended_backfill_holds_nothing(instance: dg.DagsterInstance, status: str) -> None:
    add_backfill(instance, "b1", status, partition_names=[D1, D2, D3])
    add_backfill(instance, "b2", status, asset_days={"reconciled_statistics": (D1, D3)})
    assert backfill_days(instance, DAYS, now()) == set()


def test_live_run_and_requested_backfill_are_both_busy(instance: dg.DagsterInstance) -> None:
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D1])
    add_run(
        instance,
        job_name="reconcile_days",
        tags={PARTITION_TAG: D4.isoformat()},
        status=dg.DagsterRunStatus.STARTED,
    )
    assert busy_days(instance, DAYS, now()) == {D1, D4}


def test_running_or_succeeded_run_of_the_backfill_keeps_its_days(
    instance: dg.DagsterInstance,
) -> None:
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D1, D2, D3])
    backfill_run(instance, dg.DagsterRunStatus.SUCCESS, D1, D1)
    backfill_run(instance, dg.DagsterRunStatus.STARTED, D2, D2)
    assert backfill_days(instance, DAYS, now()) == {D1, D2, D3}


def test_failed_run_of_a_requested_backfill_releases_its_days(
    instance: dg.DagsterInstance,
) -> None:
    """A step failed (bad input): neither Dagster nor crash_relaunch_sensor runs it again, so
    the days are the readiness sensor's although the backfill is still requested."""
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D1, D2, D3, D4])
    step_failure = {FAILURE_REASON_TAG: "STEP_FAILURE", WILL_RETRY_TAG: "false"}
    backfill_run(instance, dg.DagsterRunStatus.FAILURE, tags=step_failure)
    assert backfill_days(instance, DAYS, now()) == {D4}


def test_canceled_run_of_a_requested_backfill_releases_its_days(
    instance: dg.DagsterInstance,
) -> None:
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D1, D2, D3])
    backfill_run(instance, dg.DagsterRunStatus.CANCELED)
    assert backfill_days(instance, DAYS, now()) == set()


def test_crashed_run_whose_retry_is_coming_keeps_its_days(instance: dg.DagsterInstance) -> None:
    """Dagster's own retry is pending (`will_retry=true`), or dropped and then relaunched by
    crash_relaunch_sensor (`will_retry=false` after a crash): the backfill's days stay held."""
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D1, D2, D3])
    crash = {FAILURE_REASON_TAG: "UNEXPECTED_TERMINATION", MAX_RETRIES_TAG: "2"}
    backfill_run(instance, dg.DagsterRunStatus.FAILURE, tags={**crash, WILL_RETRY_TAG: "true"})
    assert backfill_days(instance, DAYS, now()) == {D1, D2, D3}
    dropped = {**crash, WILL_RETRY_TAG: "false"}
    backfill_run(instance, dg.DagsterRunStatus.FAILURE, tags=dropped)
    assert backfill_days(instance, DAYS, now()) == {D1, D2, D3}
    # The last of the retries allowed: nothing runs it again.
    exhausted = {**dropped, RETRY_NUMBER_TAG: "2"}
    backfill_run(instance, dg.DagsterRunStatus.FAILURE, tags=exhausted)
    assert backfill_days(instance, DAYS, now()) == set()


def launched(instance: dg.DagsterInstance) -> list[tuple[str | None, str | None]]:
    return [
        (request.run_key, request.partition_key)
        for request in tick(instance, "lake_readiness_sensor")
    ]


@pytest.mark.parametrize("kind", ["job", "asset"])
def test_readiness_launches_no_run_of_a_requested_backfills_days(
    instance: dg.DagsterInstance, paths: Paths, kind: str
) -> None:
    """D1-D3 are the backfill's; D0 before them is launched alone; D4 waits for D3 (its
    joined_clicks reads D3's emissions) as it waits for a running D3."""
    for day in DAYS:
        write_day(paths.lake, day)
    if kind == "job":
        add_backfill(instance, "b1", "REQUESTED", partition_names=[D1, D2, D3])
    else:
        add_backfill(instance, "b1", "REQUESTED", asset_days={"reconciled_statistics": (D1, D3)})
    assert launched(instance) == [(f"ready-{D0}", D0.isoformat())]


@pytest.mark.parametrize("status", ["COMPLETED_FAILED", "CANCELED"])
def test_readiness_launches_the_days_of_an_ended_backfill(
    instance: dg.DagsterInstance, paths: Paths, status: str
) -> None:
    for day in DAYS:
        write_day(paths.lake, day)
    add_backfill(instance, "b1", status, partition_names=[D1, D2, D3])
    add_backfill(instance, "b2", status, asset_days={"reconciled_statistics": (D1, D3)})
    assert launched(instance) == [(f"ready-{D0}..{D4}", None)]


def test_late_data_waits_for_a_requested_backfill_of_the_changed_day(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    """The backfill's run will read the late file itself; once its run of the day was canceled,
    the change is rerun."""
    for day in (D3, D4):
        write_day(paths.lake, day)
    for parquet in paths.lake.rglob("*.parquet"):
        age(parquet, 3600)  # past the quiet period
    record_materializations(instance, paths.lake, [D3, D4])
    late = [click("c2", "e1", "o1", f"{D4}T11:00:00", user_id="u2")]
    age(write_topic(paths.lake, Topic.CLICKS, D4, late, name="late-1"), 3600)
    add_backfill(instance, "b1", "REQUESTED", partition_names=[D4])
    assert tick(instance, "late_data_sensor") == []
    backfill_run(instance, dg.DagsterRunStatus.CANCELED, D4, D4)
    (rerun,) = tick(instance, "late_data_sensor")
    assert rerun.partition_key == D4.isoformat()
