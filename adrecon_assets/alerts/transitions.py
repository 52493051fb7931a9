"""What each tick of `alert_sensor` finds in the instance and the lake, as transitions of
conditions: what is new (check evaluations, failed runs, step durations) and what holds now
(reconciled days, closed days not reconciled, failing sensors)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from adrecon_assets.alerts.conditions import (
    check_alert,
    check_key,
    duration_alert,
    duration_overrun,
    failing_since,
    missing_day_alerts,
    run_failure_alert,
    sensor_alert,
)
from adrecon_assets.alerts.delivery import Clear, Fire, Transition
from adrecon_assets.alerts.hooks import alerted_keys
from adrecon_assets.alerts.model import AlertKind, dedup_key
from adrecon_assets.alerts.state import AlertState, OpenCondition
from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.day_accounting import unreconciled_closed_days
from adrecon_assets.lake import Lake
from adrecon_assets.rules import DURATION_HISTORY_DAYS, DURATION_METADATA
from adrecon_assets.run_tags import WILL_RETRY_TAG
from adrecon_assets.sensors.instance_records import (
    FAILED,
    PLANNED,
    SUCCEEDED,
    CheckExecution,
    days_of_tags,
    latest_materializations,
    run_partition,
)

# Latest executions read per check and tick: far more than one tick's worth of new ones.
CHECK_EXECUTIONS_PER_KEY = 50
# Failed runs and materializations read per tick (the rest follow at the next ticks).
RECORDS_PER_TICK = 200
# Ticks read per sensor: more than 10 minutes of them at the shortest interval.
TICKS_PER_SENSOR = 100
# Values of Dagster's (private) InstigatorType/InstigatorStatus and TickStatus, by name.
SENSOR_TYPE, RUNNING_STATUSES = "SENSOR", {"RUNNING", "DECLARED_IN_CODE"}
FAILED_TICK, STARTED_TICK = "FAILURE", "STARTED"


def _evaluation(record: CheckExecution) -> dg.AssetCheckEvaluation | None:
    event = record.event.dagster_event if record.event else None
    data = event.event_specific_data if event else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def check_transitions(
    instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey], state: AlertState
) -> list[Transition]:
    """A failed evaluation fires its check's condition for its day; a passed one clears it.
    An evaluation of a run still in progress waits for the run to end (its hooks go first)."""
    found: list[tuple[int, Transition]] = []
    pending: set[int] = set()
    after_id = state.checks_after_id
    for key in check_keys:
        history: Sequence[CheckExecution] = (
            instance.event_log_storage.get_asset_check_execution_history(
                key, limit=CHECK_EXECUTIONS_PER_KEY
            )
        )
        for record in history:
            if record.id <= state.checks_after_id and record.id not in state.pending_check_ids:
                continue
            after_id = max(after_id, record.id)
            run = instance.get_run_by_id(record.run_id) if record.run_id else None
            if record.status.value == PLANNED or (run is not None and not run.is_finished):
                pending.add(record.id)
                continue
            evaluation = _evaluation(record)
            if evaluation is None or record.status.value not in (FAILED, SUCCEEDED):
                continue
            tags = dict(run.tags) if run else {}
            partition = evaluation.partition or record.partition or run_partition(tags)
            asset = key.asset_key.to_user_string()
            if record.status.value == SUCCEEDED:
                message = f"{asset} {key.name} passed for {partition}"
                clear = Clear(check_key(asset, key.name, partition), message, record.run_id)
                found.append((record.id, clear))
                continue
            alert = check_alert(evaluation, record.run_id, partition)
            since = record.event.timestamp if record.event else 0.0
            sent = alert.dedup_key in alerted_keys(tags)
            found.append((record.id, Fire(alert, since, sent)))
    state.checks_after_id, state.pending_check_ids = after_id, pending
    found.sort(key=lambda pair: pair[0])
    return [transition for _, transition in found]


def error_text(message: str, cls_name: str | None) -> str:
    """An error's message without its class path (`dagster...Failure: bad lake input: ...`)."""
    text = message.strip()
    prefix = re.match(rf"[\w.]*\b{re.escape(cls_name)}: ", text) if cls_name else None
    return text[prefix.end() :] if prefix else text


@dataclass(frozen=True)
class RunFailure:
    """What a failed run leaves: its days not reconciled (except those a failed ERROR check of
    the run already pages for: that check is why), the failed steps and their errors."""

    days: list[date]
    steps: list[str]
    message: str


def run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunFailure:
    covered: set[str] = set()
    materialized: set[str] = set()
    steps: list[str] = []
    errors: list[str] = []
    event_types = {
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.STEP_FAILURE,
    }
    for entry in instance.all_logs(run.run_id, of_type=event_types):
        event = entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if isinstance(data, dg.AssetCheckEvaluation):
            if not data.passed and data.severity is dg.AssetCheckSeverity.ERROR:
                covered.add(data.partition or run_partition(dict(run.tags)) or "")
        elif event.is_step_failure and event.step_key:
            steps.append(event.step_key)
            error = event.step_failure_data.error
            text = error_text(error.message, error.cls_name) if error else "failed"
            errors.append(f"{event.step_key}: {text}")
        elif event.is_step_materialization and event.asset_key == RECONCILED_STATISTICS_KEY:
            materialized.add(str(event.partition))
    days = sorted(
        day for day in days_of_tags(dict(run.tags)) if day.isoformat() not in covered | materialized
    )
    return RunFailure(days, sorted(set(steps)), "; ".join(errors) or "run failed")


def run_transitions(instance: dg.DagsterInstance, state: AlertState) -> list[Transition]:
    """A failed run (that Dagster does not retry) fires `run_failure` for each day it leaves
    unreconciled, unless the day was reconciled since."""
    after = datetime.fromtimestamp(state.runs_updated_after, UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=after),
        limit=RECORDS_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    found: list[Transition] = []
    for record in records:
        run = record.dagster_run
        state.runs_updated_after = max(
            state.runs_updated_after, record.update_timestamp.timestamp()
        )
        if run.tags.get(WILL_RETRY_TAG) == "true":
            continue  # Its retry's outcome decides.
        failure = run_failure(instance, run)
        days, message = failure.days, failure.message
        assets = ", ".join(failure.steps)
        ended = record.update_timestamp.timestamp()
        reconciled = (
            latest_materializations(instance, RECONCILED_STATISTICS_KEY, days) if days else {}
        )
        sent = alerted_keys(dict(run.tags))
        if not days and not days_of_tags(dict(run.tags)):
            alert = run_failure_alert(None, run.run_id, assets or None, message)
            found.append(Fire(alert, ended, alert.dedup_key in sent, lasting=False))
        for day in days:
            if day in reconciled and reconciled[day].timestamp > ended:
                continue
            alert = run_failure_alert(day, run.run_id, assets or None, message)
            found.append(Fire(alert, ended, alert.dedup_key in sent))
    return found


def reconciled_transitions(instance: dg.DagsterInstance, state: AlertState) -> list[Transition]:
    """An open run failure clears once its day is reconciled after it; an SLA miss once the
    day is reconciled at all (a day reconciled late is no longer missing)."""
    open_days: dict[date, list[OpenCondition]] = {}
    for condition in state.open.values():
        kind, partition = condition.alert.kind, condition.alert.partition
        if kind in (AlertKind.RUN_FAILURE, AlertKind.SLA) and partition:
            open_days.setdefault(date.fromisoformat(partition), []).append(condition)
    if not open_days:
        return []  # (No days would mean every partition to latest_materializations.)
    reconciled = latest_materializations(instance, RECONCILED_STATISTICS_KEY, open_days)
    found: list[Transition] = []
    for day, record in sorted(reconciled.items()):
        for condition in open_days[day]:
            late_enough = condition.alert.kind is AlertKind.SLA
            if late_enough or record.timestamp > condition.opened_at:
                clear = Clear(condition.alert.dedup_key, f"{day} reconciled", record.run_id)
                found.append(clear)
    return found


def missing_day_transitions(
    instance: dg.DagsterInstance, lake: Lake, state: AlertState, now: datetime
) -> list[Transition]:
    """Every closed day since ADRECON_START_DATE not reconciled 2 hours after its lake closed
    fires; a day reconciled since clears."""
    unreconciled = unreconciled_closed_days(instance, lake, now)
    alerts = missing_day_alerts([(u.day, u.lake_closed_at) for u in unreconciled], now)
    firing = {alert.dedup_key for alert in alerts}
    found: list[Transition] = [Fire(alert, now.timestamp()) for alert in alerts]
    for key, condition in state.open.items():
        if condition.alert.kind is AlertKind.MISSING_DAYS and key not in firing:
            found.append(Clear(key, f"{condition.alert.partition} is reconciled"))
    return found


def sensor_transitions(
    instance: dg.DagsterInstance, state: AlertState, now: datetime
) -> list[Transition]:
    """A running sensor whose ticks have failed for 10 minutes fires; a success clears it."""
    found: list[Transition] = []
    for sensor in instance.all_instigator_state():
        if (
            sensor.instigator_type.value != SENSOR_TYPE
            or sensor.status.value not in RUNNING_STATUSES
        ):
            continue
        ticks = instance.get_ticks(
            sensor.instigator_origin_id, sensor.selector_id, limit=TICKS_PER_SENSOR
        )
        outcomes = [
            (datetime.fromtimestamp(tick.timestamp, UTC), tick.status.value != FAILED_TICK)
            for tick in ticks
            if tick.status.value != STARTED_TICK
        ]
        since = failing_since(outcomes)
        name = sensor.instigator_name
        error = ticks[0].error.message.strip() if ticks and ticks[0].error else "tick failed"
        alert = sensor_alert(name, since, now, error) if since else None
        if alert is not None:
            found.append(Fire(alert, since.timestamp() if since else now.timestamp()))
        elif since is None:
            for key, condition in state.open.items():
                if condition.alert.kind is AlertKind.SENSOR and condition.alert.check == name:
                    found.append(Clear(key, f"sensor {name} ticks again"))
    return found


def duration_seconds(record: dg.EventLogRecord) -> float | None:
    """The materialization's DURATION_METADATA, if it has a number there."""
    materialization = record.asset_materialization
    entry = materialization.metadata.get(DURATION_METADATA) if materialization else None
    value = entry.value if entry is not None else None
    return float(value) if isinstance(value, int | float) else None


def duration_transitions(
    instance: dg.DagsterInstance, asset_keys: Iterable[dg.AssetKey], state: AlertState
) -> list[Transition]:
    """A new materialization over 3x its asset's median of the previous days fires; one
    within bounds clears the asset's condition."""
    found: list[tuple[int, Transition]] = []
    after_id = state.materializations_after_id
    newest, capped = after_id, None
    for asset_key in asset_keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, after_storage_id=after_id),
            limit=RECORDS_PER_TICK,
            ascending=True,
        ).records
        if len(records) == RECORDS_PER_TICK:  # The rest of this asset's follow next tick.
            capped = min(capped or records[-1].storage_id, records[-1].storage_id)
        for record in records:
            newest = max(newest, record.storage_id)
            seconds = duration_seconds(record)
            if seconds is None or record.partition_key is None:
                continue
            day = date.fromisoformat(record.partition_key)
            previous = [day - timedelta(days=n) for n in range(1, DURATION_HISTORY_DAYS + 1)]
            history = [
                earlier
                for earlier in map(
                    duration_seconds,
                    latest_materializations(instance, asset_key, previous).values(),
                )
                if earlier is not None
            ]
            median = duration_overrun(seconds, history)
            asset = asset_key.to_user_string()
            if median is None:
                key = dedup_key(AlertKind.DURATION, asset)
                message = f"{asset} {day} took {seconds:.0f} s"
                found.append((record.storage_id, Clear(key, message, record.run_id)))
            else:
                alert = duration_alert(
                    asset, day.isoformat(), record.run_id or None, seconds, median
                )
                found.append((record.storage_id, Fire(alert, record.timestamp)))
    state.materializations_after_id = min(newest, capped) if capped else newest
    found.sort(key=lambda pair: pair[0])
    return [
        transition for storage_id, transition in found if capped is None or storage_id <= capped
    ]
