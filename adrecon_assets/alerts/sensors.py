"""Alert sensors (DATA_CONTRACT.md section 6): one alert per failed run and per failed check.

Runs of `defs` alert their own failures through hooks (alerts/hooks.py), which also works
for `dagster asset materialize` without a daemon; these sensors alert everything else (runs that
died before a hook ran, runs without the hooks, the SLA evaluations) and skip what the run's
tags say was already alerted.

A failed non-blocking check (WARN, or an ERROR that is not blocking) does not fail its run, so
run-failure sensors never see it: `asset_check_alert_sensor` reads the check evaluations from
the instance's asset-check executions instead, behind a cursor of ids, so each is alerted once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

import dagster as dg

from adrecon_assets.alerts.resource import (
    Alert,
    AlertKind,
    AlertResource,
    alerted_checks,
    check_alert,
    check_identity,
)
from adrecon_assets.run_tags import ALERTED_RUN_FAILURE_TAG, PARTITION_TAG

# Latest executions read per check and tick: far more than one tick's worth of new ones.
CHECK_EXECUTIONS_PER_KEY = 50


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
        partition=run.tags.get(PARTITION_TAG),
        severity="ERROR",
        run_id=run.run_id,
        message="; ".join(step_errors) or (context.failure_event.message or "run failed"),
    )


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


class CheckExecution(Protocol):
    """What this sensor reads of a record of `get_asset_check_execution_history` (its class is
    private to Dagster; its status is an enum whose values are PLANNED, SUCCEEDED, FAILED)."""

    @property
    def id(self) -> int: ...

    @property
    def run_id(self) -> str: ...

    @property
    def partition(self) -> str | None: ...

    @property
    def status(self) -> Enum: ...

    @property
    def event(self) -> dg.EventLogEntry | None: ...


PLANNED, FAILED = "PLANNED", "FAILED"


def _evaluation(record: CheckExecution) -> dg.AssetCheckEvaluation | None:
    event = record.event.dagster_event if record.event else None
    data = event.event_specific_data if event else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def new_check_alerts(
    instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey], cursor: CheckAlertCursor
) -> tuple[list[Alert], CheckAlertCursor]:
    """Alerts for failed evaluations not seen before, oldest first, and the cursor after them.

    Reads the instance's asset-check executions (indexed in every storage, unlike cross-run
    event queries on the default run-sharded SQLite storage). An evaluation of a run still in
    progress waits for the run to end, so the run's own hooks alert first and tag the run;
    what they alerted is skipped here."""
    failed: list[tuple[int, Alert]] = []
    pending: set[int] = set()
    after_id = cursor.after_id
    for key in check_keys:
        storage = instance.event_log_storage
        history: Sequence[CheckExecution] = storage.get_asset_check_execution_history(
            key, limit=CHECK_EXECUTIONS_PER_KEY
        )
        for record in history:
            if record.id <= cursor.after_id and record.id not in cursor.pending_ids:
                continue
            after_id = max(after_id, record.id)
            run = instance.get_run_by_id(record.run_id) if record.run_id else None
            if record.status.value == PLANNED or (run is not None and not run.is_finished):
                pending.add(record.id)
                continue
            evaluation = _evaluation(record)
            if record.status.value != FAILED or evaluation is None:
                continue
            tags = run.tags if run else {}
            if check_identity(key.asset_key, key.name) in alerted_checks(tags):
                continue
            alert = check_alert(evaluation, record.run_id, record.partition)
            if alert.partition is None:
                alert = replace(alert, partition=tags.get(PARTITION_TAG))
            failed.append((record.id, alert))
    failed.sort(key=lambda pair: pair[0])
    return [alert for _, alert in failed], CheckAlertCursor(after_id, frozenset(pending))


def build_alert_sensors(interval_seconds: int) -> list[dg.SensorDefinition]:
    """Both alert sensors, ticking at most every `interval_seconds`."""

    @dg.run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description="Sends one alert per failed run of this code location (contract section 6).",
    )
    def run_failure_alert_sensor(
        context: dg.RunFailureSensorContext, alerts: AlertResource
    ) -> None:
        # A run whose failure hook already alerted (see alerts/hooks.py) is not alerted again.
        if ALERTED_RUN_FAILURE_TAG not in context.dagster_run.tags:
            alerts.send(run_failure_alert(context))

    @dg.sensor(
        name="asset_check_alert_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description=(
            "Sends one alert per failed asset check evaluation (WARN or ERROR), read from the "
            "instance behind a cursor of execution ids: non-blocking checks never fail a run."
        ),
    )
    def asset_check_alert_sensor(
        context: dg.SensorEvaluationContext, alerts: AlertResource
    ) -> dg.SkipReason:
        assert context.repository_def is not None, (
            "the sensor reads the checks of its code location"
        )
        check_keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=str)
        cursor = CheckAlertCursor.from_json(context.cursor)
        failed, cursor = new_check_alerts(context.instance, check_keys, cursor)
        for alert in failed:
            alerts.send(alert)
        # Advanced after sending: a crash mid-tick may repeat an alert, never lose one.
        context.update_cursor(cursor.to_json())
        return dg.SkipReason(
            f"alerted {len(failed)} failed check evaluations; {len(cursor.pending_ids)} planned "
            f"checks pending; cursor at execution id {cursor.after_id}"
        )

    return [run_failure_alert_sensor, asset_check_alert_sensor]
