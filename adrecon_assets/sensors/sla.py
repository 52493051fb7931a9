"""`reconciled_statistics_sla_sensor`: records the SLA check once per day, after its deadline.

The evaluation is an ordinary asset check evaluation of `reconciled_by_sla_hour` (visible on the
asset's checks tab; the tick's message says the same), so a missed day is alerted exactly once by
`asset_check_alert_sensor`, like any failed check. A later reconciliation run that includes the
check records it as passed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.checks.sla import (
    SLA_CHECK,
    last_due_day,
    sla_evaluation,
    sla_status,
)
from adrecon_assets.clock import utc_now
from adrecon_assets.lake import Lake, LakeNotFoundError, LakeSnapshot
from adrecon_assets.partitions import first_day, previous_day
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import Topic
from adrecon_assets.sensors.instance_records import live_run_days
from adrecon_assets.sensors.readiness import is_closed, launched_days

SLA_CHECK_KEY = dg.AssetCheckKey(RECONCILED_STATISTICS_KEY, SLA_CHECK)
# How long after the lake closed a day the readiness sensor may take to launch it (a few of its
# ticks); within it, a closed but unlaunched day is pending, not missed.
READINESS_GRACE = timedelta(minutes=10)
# Runless evaluations recorded per day; more than enough to see whether the day has one.
RECENT_EVALUATIONS = 30


def already_recorded(instance: dg.DagsterInstance, day: date) -> bool:
    """Whether a sensor (runless) evaluation of the day exists: the instance allows one per
    partition outside runs, and the cursor alone is lost when a sensor is reset."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        SLA_CHECK_KEY, limit=RECENT_EVALUATIONS
    )
    return any(not record.run_id and record.partition == day.isoformat() for record in history)


def build_sla_sensor(interval_seconds: int) -> dg.SensorDefinition:
    """The sensor, ticking at most every `interval_seconds` (ADRECON_SENSOR_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="reconciled_statistics_sla_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description=(
            "Once ADRECON_SLA_HOUR_UTC (default 07:00 UTC) has passed, records "
            "reconciled_by_sla_hour for yesterday: failed, and so alerted once, if "
            "reconciled_statistics is missing."
        ),
    )
    def reconciled_statistics_sla_sensor(
        context: dg.SensorEvaluationContext,
        automation: AutomationSettings,
        storage: StorageResource,
    ) -> dg.SensorResult:
        return evaluate_sla(context, automation.sla_hour_utc, utc_now(), storage.lake)

    return reconciled_statistics_sla_sensor


def reconciliation_pending(
    instance: dg.DagsterInstance, lake: LakeSnapshot, day: date, now: datetime
) -> bool:
    """The day has a queued or running run, or the lake closed it moments ago and the readiness
    sensor has not launched it yet (it will at its next tick): not a miss to alert yet."""
    if day in live_run_days(instance, [day]):
        return True
    if not is_closed(lake, day) or day in launched_days(instance, [day]):
        return False
    newest_ns = max(lake.partition(topic, day).newest_mtime_ns for topic in Topic)
    return now - datetime.fromtimestamp(newest_ns / 1e9, UTC) < READINESS_GRACE


def evaluate_sla(
    context: dg.SensorEvaluationContext, hour: int, now: datetime, lake: Lake
) -> dg.SensorResult:
    day = last_due_day(now, hour)
    if day < first_day():
        return dg.SensorResult(skip_reason=f"no partition is due yet (first day {first_day()})")
    if context.cursor == day.isoformat() or already_recorded(context.instance, day):
        return dg.SensorResult(skip_reason=f"SLA of {day} already recorded")
    before = previous_day(day)
    try:
        snapshot = lake.snapshot([day] if before is None else [before, day])
    except LakeNotFoundError as error:
        # A misconfigured lake: the readiness sensor fails on it; the miss is still recorded.
        context.log.error(f"SLA of {day} recorded without the lake: {error}")
        snapshot = None
    no_data = snapshot is not None and not any(
        snapshot.partition(topic, day).exists for topic in Topic
    )
    if (
        snapshot is not None
        and not no_data
        and reconciliation_pending(context.instance, snapshot, day, now)
    ):
        # Its run records the check; a failed run alerts as a run failure.
        return dg.SensorResult(skip_reason=f"{day} is being reconciled; its run records the SLA")
    status = sla_status(context.instance, day, now, hour, no_lake_data=no_data)
    return dg.SensorResult(
        asset_events=[sla_evaluation(status)],
        cursor=day.isoformat(),
        skip_reason=status.description,
    )
