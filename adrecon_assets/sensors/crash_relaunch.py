"""Relaunch a `reconcile_days` run that Dagster's run retries leave failed although nothing
was wrong with its days: a crash whose automatic retry was dropped, or a step failed by a lost
connection to Dagster's own storage.

Dagster's run retries (`run_retries` in dagster.yaml) retry a crashed run from the daemon. If
that retry fails to be created, for instance because the code server is being restarted after
a crash and the daemon cannot load the job, Dagster 1.13 logs "Failed to retry run", tags the
run `dagster/will_retry=false` and never tries again (auto_run_reexecution.py); and once the
backfill daemon has ended a backfill (no run left unfinished, as between such a crash and its
relaunch), the daemon retries none of its runs. This sensor,
on public APIs, relaunches such a run once: same job, same days (partition or range tags), the
same backfill and batch tags (so the per-backfill limit of dagster.yaml still holds), counted
against the same `max_retries`.

Step failures are not retried by Dagster here (`retry_on_asset_or_op_failure: false`: bad input
and failed checks must not be), and a PostgreSQL restart can fail a step outside its code: the
step's materialization event is written to Dagster's event log on a new connection that the
restart closes mid-statement (dagster-postgres retries the connect, not the statement), so the
step fails without its RetryPolicy. Such a run, every failed step's error a lost database
connection, is relaunched too; any other step failure never is.

A tick runs in the code server: while it is down the tick fails and the next tick does the
work. The run key `relaunch-<failed run id>` makes each relaunch happen once across ticks and
restarts; the cursor keeps the failed runs already handled so a tick reads no more than it must.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

import dagster as dg

from adrecon_assets.jobs import RECONCILE_DAYS, RUN_CONFIG, reconcile_days
from adrecon_assets.run_tags import (
    ALERTED_KEYS_TAG,
    AUTO_RETRY_RUN_ID_TAG,
    BACKFILL_TAG,
    FAILURE_REASON_TAG,
    MAX_RETRIES_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RELAUNCH_NUMBER_TAG,
    RELAUNCHED_FROM_TAG,
    RETRY_NUMBER_TAG,
    WILL_RETRY_TAG,
)

# Dagster's system tags that say which days and which backfill a run belongs to, and the
# operator's retry limit for it; every other `dagster/` tag describes the failed run itself (its
# key, retries, failure) and is not copied.
WORK_TAGS = (PARTITION_TAG, RANGE_START_TAG, RANGE_END_TAG, BACKFILL_TAG)
CARRIED_SYSTEM_TAGS = (*WORK_TAGS, MAX_RETRIES_TAG)
# Our tags that describe the failed run itself, not its work.
NOT_CARRIED_TAGS = (ALERTED_KEYS_TAG,)
STEP_FAILURE = "STEP_FAILURE"
# What psycopg2/psycopg say when the server went away under a statement or a connect.
CONNECTION_LOST = (
    "server closed the connection",
    "connection to server",
    "terminating connection",
    "connection is lost",
    "connection already closed",
)
# Backfill statuses: stopped by an operator (never relaunched), or ended by the backfill daemon
# once no run was left, which can happen between a crash and its relaunch (Dagster then
# refuses its own retries of the backfill's runs).
STOPPED_BACKFILL = {"CANCELED", "CANCELING", "MISSING"}
ENDED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED"}
# The one undecided outcome: the daemon may still retry the run itself; looked at next tick.
PENDING = "Dagster's own retry is pending"
# How far back a tick looks for failed runs (by their last update).
LOOKBACK = timedelta(days=1)


def attempts(tags: Mapping[str, str]) -> int:
    """Retries of this run's work before it: the relaunch's number (which counts the retries
    before the relaunch) plus Dagster's retries since."""
    return int(tags.get(RETRY_NUMBER_TAG, "0")) + int(tags.get(RELAUNCH_NUMBER_TAG, "0"))


def skip_reason(
    tags: Mapping[str, str],
    max_retries: int,
    backfill: str | None,
    storage_lost: Callable[[], bool] = lambda: False,
) -> str | None:
    """Why a failed run is not relaunched, or None when it is. `backfill` is the status of the
    run's backfill (None: no backfill, "MISSING": deleted); `storage_lost` says whether every
    failed step lost its database connection (asked only of step failures)."""
    step_failure = tags.get(FAILURE_REASON_TAG) == STEP_FAILURE
    if AUTO_RETRY_RUN_ID_TAG in tags:
        return "Dagster created its retry"
    if attempts(tags) >= int(tags.get(MAX_RETRIES_TAG, str(max_retries))):
        return "retries exhausted"
    if backfill in STOPPED_BACKFILL:
        return "its backfill was canceled or deleted"
    if step_failure:
        return None if storage_lost() else "a step failed"
    if tags.get(WILL_RETRY_TAG) == "false":
        return None  # the daemon's retry failed ("Failed to retry run")
    if tags.get(WILL_RETRY_TAG) == "true" and backfill in ENDED_BACKFILL:
        return None  # the daemon does not retry runs of an ended backfill
    return PENDING


class ErrorInfo(Protocol):
    """What a step failure event records of its error (Dagster's SerializableErrorInfo)."""

    @property
    def message(self) -> str: ...
    @property
    def cls_name(self) -> str | None: ...
    @property
    def cause(self) -> ErrorInfo | None: ...


def lost_connection(error: ErrorInfo | None) -> bool:
    """A database driver's OperationalError about its connection, here or in a cause."""
    while error is not None:
        text = error.message.lower()
        if error.cls_name == "OperationalError" and any(p in text for p in CONNECTION_LOST):
            return True
        error = error.cause
    return False


def steps_lost_storage(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Every failed step of the run failed on a lost database connection."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    errors = [
        record.event_log_entry.dagster_event.step_failure_data.error
        for record in records
        if record.event_log_entry.dagster_event is not None
    ]
    return bool(errors) and all(lost_connection(error) for error in errors)


def relaunch_tags(run_id: str, tags: Mapping[str, str]) -> dict[str, str]:
    """The failed run's days, backfill and own `adrecon/` tags, and which retry of its work
    the relaunch is (Dagster copies the tag into its own retries of the relaunch)."""
    carried = {
        key: value
        for key, value in tags.items()
        if key in CARRIED_SYSTEM_TAGS
        or (not key.startswith("dagster/") and key not in NOT_CARRIED_TAGS)
    }
    return {
        **carried,
        RELAUNCH_NUMBER_TAG: str(attempts(tags) + 1),
        RELAUNCHED_FROM_TAG: run_id,
    }


def same_work(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags naming a run's days (and backfill): a later run with them did the same work."""
    return {key: tags[key] for key in WORK_TAGS if key in tags}


def superseded(instance: dg.DagsterInstance, record: dg.RunRecord) -> bool:
    """A later run of the same days exists (a manual re-launch, or one already relaunched)."""
    work = same_work(record.dagster_run.tags)
    if not work:
        return False
    later = instance.get_run_records(
        dg.RunsFilter(job_name=RECONCILE_DAYS, tags=work, created_after=record.create_timestamp),
        limit=1,
    )
    return bool(later)


def backfill_status(instance: dg.DagsterInstance, tags: Mapping[str, str]) -> str | None:
    backfill_id = tags.get(BACKFILL_TAG)
    if backfill_id is None:
        return None
    backfill = instance.get_backfill(backfill_id)
    return "MISSING" if backfill is None else str(backfill.status.value)


def relaunch_cause(tags: Mapping[str, str]) -> str:
    if tags.get(FAILURE_REASON_TAG) == STEP_FAILURE:
        return "a step lost its database connection (Dagster does not retry step failures)"
    return "it crashed and Dagster did not retry it"


def evaluate_relaunch(context: dg.SensorEvaluationContext, now: datetime) -> dg.SensorResult:
    instance = context.instance
    handled: set[str] = set(json.loads(context.cursor)) if context.cursor else set()
    failed = instance.get_run_records(
        dg.RunsFilter(
            job_name=RECONCILE_DAYS,
            statuses=[dg.DagsterRunStatus.FAILURE],
            updated_after=now - LOOKBACK,
        ),
        limit=100,
    )
    requests: list[dg.RunRequest] = []
    decided: list[str] = []
    for record in sorted(failed, key=lambda r: r.create_timestamp):
        run = record.dagster_run
        if run.run_id in handled:
            decided.append(run.run_id)
            continue
        backfill = backfill_status(instance, run.tags)
        reason = skip_reason(
            run.tags,
            instance.run_retries_max_retries,
            backfill,
            partial(steps_lost_storage, instance, run.run_id),
        )
        if reason == PENDING:
            continue
        decided.append(run.run_id)  # looked at once: the cursor skips it from now on
        if reason is not None or superseded(instance, record):
            continue
        context.log.warning(f"relaunching run {run.run_id}: {relaunch_cause(run.tags)}")
        requests.append(
            dg.RunRequest(
                run_key=f"relaunch-{run.run_id}",
                tags=relaunch_tags(run.run_id, run.tags),
                run_config=RUN_CONFIG,
            )
        )
    cursor = json.dumps(sorted(decided))
    if not requests:
        skip = dg.SkipReason(f"no failed run to relaunch ({len(failed)} failed runs looked at)")
        return dg.SensorResult(skip_reason=skip, cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def build_crash_relaunch_sensor(interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="crash_relaunch_sensor",
        job=reconcile_days,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Relaunches a reconcile_days run (same days, same backfill) that crashed and whose "
            "automatic retry Dagster dropped (e.g. the code server was down), or whose steps "
            "failed on a lost database connection; never another step failure, at most "
            "run_retries.max_retries times."
        ),
    )
    def crash_relaunch_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return evaluate_relaunch(context, datetime.now(UTC))

    return crash_relaunch_sensor
