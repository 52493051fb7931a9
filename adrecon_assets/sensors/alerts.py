"""Alert sensors (DATA_CONTRACT.md section 6): one alert per failed run and per failed check.

A failed non-blocking check (WARN, or an ERROR that is not blocking) does not fail its run, so
run-failure sensors never see it: `asset_check_alert_sensor` reads the check evaluations from
the instance's asset-check executions instead, behind a cursor of ids, so each is alerted once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)
from dagster._core.storage.tags import PARTITION_NAME_TAG

from adrecon_assets import settings
from adrecon_assets.resources.alerts import Alert, AlertKind, AlertResource

# Latest executions read per check and tick: far more than one tick's worth of new ones.
CHECK_EXECUTIONS_PER_KEY = 50
ALERT_SENSOR_INTERVAL_SECONDS = int(settings.setting("ADRECON_SENSOR_INTERVAL_SECONDS"))


def run_failure_alert(context: dg.RunFailureSensorContext) -> Alert:
    """The failed steps (assets here) and their errors, e.g. a bad lake file and its column."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    step_errors = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in failures
        if event.step_failure_data.error is not None
    ]
    assets = sorted({event.step_key for event in failures if event.step_key})
    if not assets and run.asset_selection:
        assets = sorted(key.to_user_string() for key in run.asset_selection)
    return Alert(
        kind=AlertKind.RUN_FAILURE,
        asset=", ".join(assets) or None,
        check=None,
        partition=run.tags.get(PARTITION_NAME_TAG),
        severity="ERROR",
        run_id=run.run_id,
        message="; ".join(step_errors) or (context.failure_event.message or "run failed"),
    )


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_SECONDS,
    description="Sends one alert per failed run of this code location (contract section 6).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertResource) -> None:
    alerts.send(run_failure_alert(context))


@dataclass(frozen=True)
class CheckAlertCursor:
    """Execution ids up to `after_id` are done, except `pending_ids`, planned but not yet
    evaluated then (ids are assigned when a run plans its checks, not when they finish)."""

    after_id: int = 0
    pending_ids: frozenset[int] = frozenset()

    def to_json(self) -> str:
        return json.dumps({"after_id": self.after_id, "pending_ids": sorted(self.pending_ids)})

    @classmethod
    def from_json(cls, text: str | None) -> CheckAlertCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data["after_id"]), frozenset(int(i) for i in data["pending_ids"]))


def new_failed_checks(
    instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey], cursor: CheckAlertCursor
) -> tuple[list[AssetCheckExecutionRecord], CheckAlertCursor]:
    """Failed evaluations not seen before, oldest first, and the cursor after them.

    Reads the instance's asset-check executions table (indexed in every storage, unlike
    cross-run event queries on the default run-sharded SQLite storage)."""
    failed: list[AssetCheckExecutionRecord] = []
    pending: set[int] = set()
    after_id = cursor.after_id
    for key in check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=CHECK_EXECUTIONS_PER_KEY
        )
        for record in history:
            if record.id <= cursor.after_id and record.id not in cursor.pending_ids:
                continue
            after_id = max(after_id, record.id)
            if record.status is AssetCheckExecutionRecordStatus.PLANNED:
                pending.add(record.id)
            elif record.status is AssetCheckExecutionRecordStatus.FAILED:
                failed.append(record)
    failed.sort(key=lambda record: record.id)
    return failed, CheckAlertCursor(after_id, frozenset(pending))


def check_failure_alert(record: AssetCheckExecutionRecord, instance: dg.DagsterInstance) -> Alert:
    entry = record.event
    evaluation = entry.dagster_event.event_specific_data if entry and entry.dagster_event else None
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        evaluation = None
    partition = record.partition or (evaluation.partition if evaluation else None)
    if partition is None and record.run_id:
        run = instance.get_run_by_id(record.run_id)
        partition = run.tags.get(PARTITION_NAME_TAG) if run else None
    summary = f"check {record.key.name} failed"
    numbers = ""
    if evaluation is not None:
        summary = evaluation.description or summary
        numbers = ", ".join(
            f"{key}={value.value}" for key, value in evaluation.metadata.items() if key != "path"
        )
    return Alert(
        kind=AlertKind.ASSET_CHECK,
        asset=record.key.asset_key.to_user_string(),
        check=record.key.name,
        partition=partition,
        severity=evaluation.severity.value if evaluation else "ERROR",
        run_id=record.run_id or None,
        message=f"{summary} ({numbers})" if numbers else summary,
    )


@dg.sensor(
    name="asset_check_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_SECONDS,
    description=(
        "Sends one alert per failed asset check evaluation (WARN or ERROR), read from the "
        "instance behind a cursor of execution ids: non-blocking checks never fail a run."
    ),
)
def asset_check_alert_sensor(
    context: dg.SensorEvaluationContext, alerts: AlertResource
) -> dg.SkipReason:
    assert context.repository_def is not None, "the sensor reads the checks of its code location"
    check_keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=str)
    cursor = CheckAlertCursor.from_json(context.cursor)
    failed, cursor = new_failed_checks(context.instance, check_keys, cursor)
    for record in failed:
        alerts.send(check_failure_alert(record, context.instance))
    # Advanced after sending: a crash mid-tick may repeat an alert, never lose one.
    context.update_cursor(cursor.to_json())
    return dg.SkipReason(
        f"alerted {len(failed)} failed check evaluations; {len(cursor.pending_ids)} planned "
        f"checks pending; cursor at execution id {cursor.after_id}"
    )


ALERT_SENSORS = [run_failure_alert_sensor, asset_check_alert_sensor]
