"""Failed days and failed late-data reruns are tried again without a person, after the backoff
(10 min, 30 min, 1 h, then hourly), never before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from adrecon_assets.lake import Lake
from adrecon_assets.rules import day_retry_delay
from adrecon_assets.run_tags import (
    LATE_DATA_TRIGGER,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RETRY_OF_TAG,
    TRIGGER_TAG,
)
from adrecon_assets.sensors.late_data import failed_rerun_retries
from adrecon_assets.sensors.readiness import evaluate_readiness, launch_plan
from adrecon_assets.sensors.retries import Attempts
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.instance_runs import add_run
from adrecon_assets_tests.sensor_lakes import days_ago, write_day

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
D1, D2, D3 = date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8)
NEW = Attempts(0)


def failed(count: int, minutes_ago: float, run_id: str = "r1") -> Attempts:
    return Attempts(count, run_id, NOW - timedelta(minutes=minutes_ago))


def plan(
    attempts: dict[date, Attempts], busy: frozenset[date] = frozenset()
) -> list[tuple[list[date], str | None]]:
    """(days, retry_of) of each launch for these attempts of closed, unreconciled days."""
    launches = launch_plan(sorted(attempts), set(busy), attempts, NOW)
    return [(launch.days, launch.retry_of) for launch in launches]


def test_the_backoff_is_10_then_30_then_60_minutes_then_hourly() -> None:
    assert [day_retry_delay(n).total_seconds() / 60 for n in range(1, 7)] == [
        10,
        30,
        60,
        60,
        60,
        60,
    ]


def test_consecutive_new_days_are_one_run_and_a_gap_starts_another() -> None:
    assert plan({D1: NEW, D2: NEW}) == [([D1, D2], None)]
    assert plan({D1: NEW, D3: NEW}) == [([D1], None), ([D3], None)]


def test_a_failed_day_waits_out_its_backoff_and_does_not_hold_back_the_next() -> None:
    assert plan({D1: failed(1, minutes_ago=9), D2: NEW}) == [([D2], None)]
    assert plan({D1: failed(1, minutes_ago=10), D2: NEW}) == [([D1], "r1")]
    # After two failures in a row the wait is 30 minutes.
    assert plan({D1: failed(2, minutes_ago=29)}) == []
    assert plan({D1: failed(2, minutes_ago=30)}) == [([D1], "r1")]


def test_retries_run_alone_and_the_next_day_waits_for_them() -> None:
    both_due = {D1: failed(1, 15, "r1"), D2: failed(1, 15, "r2")}
    assert plan(both_due) == [([D1], "r1")]
    # Once D1's retry runs, D2 waits for it; once it failed again, D2 goes.
    assert plan({D2: failed(1, 15, "r2")}, busy=frozenset({D1})) == []
    assert plan({D1: failed(2, 1, "r3"), D2: failed(1, 16, "r2")}) == [([D2], "r2")]


def test_a_day_waits_for_a_running_or_held_back_previous_day() -> None:
    # D1 runs (a first attempt, or a rerun of a reconciled D1): D2 waits, D3 waits for D2.
    assert plan({D2: NEW, D3: NEW}, busy=frozenset({D1})) == []
    assert plan({D1: NEW, D2: NEW, D3: NEW}, busy=frozenset({D1})) == []


@pytest.fixture
def instance(paths: Paths) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def requests_at(
    instance: dg.DagsterInstance, paths: Paths, now: datetime
) -> list[tuple[str | None, str | None, str | None]]:
    result = evaluate_readiness(dg.build_sensor_context(instance=instance), Lake(paths.lake), now)
    return [
        (request.run_key, request.partition_key, request.tags.get(RETRY_OF_TAG))
        for request in result.run_requests or []
    ]


FAILURE = dg.DagsterRunStatus.FAILURE


def failed_day_run(instance: dg.DagsterInstance, day: date) -> dg.DagsterRun:
    """A failed one-day run of `reconcile_days` for `day`, ended now."""
    tags = {PARTITION_TAG: day.isoformat()}
    return add_run(instance, job_name="reconcile_days", tags=tags, status=FAILURE)


def test_a_failed_day_is_relaunched_after_the_backoff_not_before(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    day = days_ago(40)  # far beyond the 14-day lookback
    write_day(paths.lake, day)
    now = datetime.now(UTC)
    assert requests_at(instance, paths, now) == [(f"ready-{day}", day.isoformat(), None)]
    first = failed_day_run(instance, day)
    assert requests_at(instance, paths, now + timedelta(minutes=9)) == []
    retry = (f"ready-{day}-after-{first.run_id}", day.isoformat(), first.run_id)
    assert requests_at(instance, paths, now + timedelta(minutes=11)) == [retry]
    # The retry failed too: the next one waits 30 minutes.
    second = failed_day_run(instance, day)
    assert requests_at(instance, paths, now + timedelta(minutes=29)) == []
    (again,) = requests_at(instance, paths, now + timedelta(minutes=31))
    assert again[0] == f"ready-{day}-after-{second.run_id}"


def test_a_failed_operator_backfill_counts_as_a_failed_attempt_of_each_of_its_days(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    """A backfill of `reconcile_days` is one ranged run (BackfillPolicy.single_run), with no
    tag of the readiness sensor's: its failure still starts each day's backoff."""
    first, last = days_ago(42), days_ago(40)
    for day in (first, days_ago(41), last):
        write_day(paths.lake, day)
    backfill = add_run(
        instance,
        job_name="reconcile_days",
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        status=FAILURE,
    )
    now = datetime.now(UTC)
    assert requests_at(instance, paths, now + timedelta(minutes=9)) == []
    # After the backoff each day is retried alone, as after a failed catch-up: the first and
    # the last; the middle one waits for the retry of the first, the day before it.
    assert requests_at(instance, paths, now + timedelta(minutes=11)) == [
        (f"ready-{day}-after-{backfill.run_id}", day.isoformat(), backfill.run_id)
        for day in (first, last)
    ]


RECONCILED = dg.AssetKey("reconciled_statistics")
LATE_TAGS = {TRIGGER_TAG: LATE_DATA_TRIGGER, "adrecon/late-data-batch": "b1"}


def test_a_failed_late_data_rerun_is_retried_after_the_backoff(
    instance: dg.DagsterInstance,
) -> None:
    day = days_ago(3)
    assets = frozenset({dg.AssetKey("raw_clicks"), RECONCILED})
    tags = {**LATE_TAGS, PARTITION_TAG: day.isoformat()}
    rerun = add_run(
        instance, job_name="__ASSET_JOB", tags=tags, status=FAILURE, asset_selection=assets
    )
    now = datetime.now(UTC)
    assert failed_rerun_retries(instance, [day], set(), now + timedelta(minutes=9)) == []
    (retry,) = failed_rerun_retries(instance, [day], set(), now + timedelta(minutes=11))
    assert retry.partition_key == day.isoformat()
    assert set(retry.asset_selection or []) == assets
    assert retry.tags == {**LATE_TAGS, RETRY_OF_TAG: rerun.run_id}
    # Not while the day has a run in progress.
    assert failed_rerun_retries(instance, [day], {day}, now + timedelta(minutes=11)) == []


def test_a_failed_rerun_whose_work_was_done_later_is_not_retried(
    instance: dg.DagsterInstance,
) -> None:
    day = days_ago(3)
    tags = {**LATE_TAGS, PARTITION_TAG: day.isoformat()}
    add_run(
        instance,
        job_name="__ASSET_JOB",
        tags=tags,
        status=FAILURE,
        asset_selection=frozenset({RECONCILED}),
    )
    # A later run of the whole day (the readiness job selects every asset) succeeded.
    add_run(
        instance,
        job_name="reconcile_days",
        tags={PARTITION_TAG: day.isoformat()},
        status=dg.DagsterRunStatus.SUCCESS,
    )
    later = datetime.now(UTC) + timedelta(hours=2)
    assert failed_rerun_retries(instance, [day], set(), later) == []
