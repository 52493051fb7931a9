"""crash_relaunch_sensor on an instance holding failed `reconcile_days` runs: it relaunches a
crash whose automatic retry Dagster dropped, once, with the same days and batch, and nothing
else. (Under the production processes: test_production_faults.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import dagster as dg
import pytest

from adrecon_assets.jobs import RECONCILE_DAYS
from adrecon_assets.sensors.crash_relaunch import build_crash_relaunch_sensor, skip_reason

RANGE = {
    "dagster/asset_partition_range_start": "2026-01-01",
    "dagster/asset_partition_range_end": "2026-01-12",
}
CRASH = {"dagster/will_retry": "false", "dagster/failure_reason": "UNEXPECTED_TERMINATION"}


@dg.op
def nothing() -> None:
    pass


@dg.job(name=RECONCILE_DAYS)
def stand_in() -> None:
    nothing()


class OperationalError(Exception):
    """Named as psycopg2's: what a step records when PostgreSQL closed its connection."""


@dg.op
def lose_connection() -> None:
    raise OperationalError("server closed the connection unexpectedly")


@dg.op
def read_bad_input() -> None:
    raise ValueError("bad lake input: a corrupt file")


@dg.job(name=RECONCILE_DAYS)
def lost_connection_job() -> None:
    lose_connection()


@dg.job(name=RECONCILE_DAYS)
def bad_input_job() -> None:
    read_bad_input()


def step_failed_run(
    instance: dg.DagsterInstance, job: dg.JobDefinition, tags: dict[str, str]
) -> str:
    """A run of reconcile_days whose only step failed (the other tags are Dagster's own)."""
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success
    return result.run_id


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(
        overrides={"run_retries": {"enabled": True, "max_retries": 2}}
    ) as test_instance:
        yield test_instance


def failed_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    """A failed run with `tags` as the daemon leaves them (it sets `dagster/will_retry` when
    the run fails and, when its retry fails, sets it to false)."""
    run = instance.create_run_for_job(job_def=stand_in, tags=tags)
    instance.report_run_failed(run)
    instance.add_run_tags(run.run_id, tags)
    return run.run_id


def tick(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    sensor = build_crash_relaunch_sensor(30)
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    return result


def test_relaunches_a_dropped_retry_once_with_its_days_and_batch(
    instance: dg.DagsterInstance,
) -> None:
    batch = {"adrecon/late-data-batch": "b1", "adrecon/alerted": "run_failure:2026-01-02"}
    crashed = failed_run(instance, {**RANGE, **CRASH, **batch, "dagster/run_key": "ready-x"})

    first = tick(instance)

    assert first.run_requests is not None
    [request] = first.run_requests
    assert request.run_key == f"relaunch-{crashed}"
    assert request.tags == {
        **RANGE,
        "adrecon/late-data-batch": "b1",
        "adrecon/relaunch_number": "1",
        "adrecon/relaunched_from": crashed,
    }
    # The next tick, with the cursor, asks for nothing more.
    assert not tick(instance, first.cursor).run_requests
    assert json.loads(first.cursor or "[]") == [crashed]


def test_a_relaunch_counts_the_retries_before_it(instance: dg.DagsterInstance) -> None:
    """Dagster's first retry crashed and its own retry was dropped: the relaunch is the 2nd
    retry of the work, under the operator's limit of 3 that it carries on."""
    retry = {**CRASH, "dagster/retry_number": "1", "dagster/max_retries": "3"}
    crashed = failed_run(instance, {**RANGE, **retry})

    [request] = tick(instance).run_requests or []

    assert request.tags == {
        **RANGE,
        "dagster/max_retries": "3",
        "adrecon/relaunch_number": "2",
        "adrecon/relaunched_from": crashed,
    }


@pytest.mark.parametrize(
    "tags",
    [
        {"dagster/will_retry": "true", "dagster/failure_reason": "UNEXPECTED_TERMINATION"},
        {"dagster/will_retry": "false", "dagster/failure_reason": "STEP_FAILURE"},
        {**CRASH, "dagster/retry_number": "2"},
        {**CRASH, "dagster/retry_number": "1", "adrecon/relaunch_number": "1"},
        {**CRASH, "dagster/auto_retry_run_id": "abc"},
        {**CRASH, "dagster/backfill": "gone"},
    ],
    ids=[
        "retry_pending",
        "step_failure",
        "dagster_retries_exhausted",
        "retries_and_relaunches_exhausted",
        "dagster_retried",
        "backfill_deleted",
    ],
)
def test_leaves_what_is_not_a_dropped_crash_retry(
    instance: dg.DagsterInstance, tags: dict[str, str]
) -> None:
    failed_run(instance, {**RANGE, **tags})
    assert not tick(instance).run_requests


@pytest.mark.parametrize(
    ("will_retry", "backfill", "relaunched"),
    [
        ("true", "COMPLETED_FAILED", True),  # the daemon refuses retries in an ended backfill
        ("true", "REQUESTED", False),  # the daemon's retry is pending
        ("false", "REQUESTED", True),  # the daemon's retry failed
        ("false", "CANCELED", False),  # an operator stopped the backfill
        ("false", "MISSING", False),
    ],
)
def test_backfill_status_decides_with_the_retry_tag(
    will_retry: str, backfill: str, relaunched: bool
) -> None:
    tags = {"dagster/will_retry": will_retry, "dagster/failure_reason": "RUN_EXCEPTION"}
    assert (skip_reason(tags, 2, backfill) is None) is relaunched


def test_a_step_that_lost_the_database_connection_is_relaunched(
    instance: dg.DagsterInstance,
) -> None:
    lost = step_failed_run(instance, lost_connection_job, RANGE)
    bad = step_failed_run(instance, bad_input_job, {"dagster/partition": "2026-02-01"})

    result = tick(instance)

    assert instance.get_run_by_id(lost).tags["dagster/failure_reason"] == "STEP_FAILURE"  # type: ignore[union-attr]
    assert [request.run_key for request in result.run_requests or []] == [f"relaunch-{lost}"]
    # Both decided for good: the next ticks read neither's events again.
    assert json.loads(result.cursor or "[]") == sorted([lost, bad])


def test_a_pending_retry_is_looked_at_again(instance: dg.DagsterInstance) -> None:
    crashed = failed_run(instance, {**RANGE, **CRASH, "dagster/will_retry": "true"})
    first = tick(instance)
    assert json.loads(first.cursor or "[]") == []
    # The daemon's retry then fails: the next tick relaunches.
    instance.add_run_tags(crashed, {"dagster/will_retry": "false"})
    assert [r.run_key for r in tick(instance, first.cursor).run_requests or []] == [
        f"relaunch-{crashed}"
    ]


def test_a_later_run_of_the_same_days_supersedes_the_crash(instance: dg.DagsterInstance) -> None:
    failed_run(instance, {**RANGE, **CRASH})
    instance.create_run_for_job(job_def=stand_in, tags=RANGE)
    assert not tick(instance).run_requests
