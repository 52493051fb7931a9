"""`reconciled_statistics_sla_sensor`: records each day's SLA verdict once, at its deadline.

The verdict (checks/sla.py) is an ordinary evaluation of `reconciled_by_sla_hour` for the day
(visible on the asset's checks tab; the tick's message says the same), passed or failed with its
cause. Every day whose deadline passed since the sensor's previous verdict is judged, so days
due while the daemon was down are judged when it is back (on the facts it finds then); a fresh
sensor judges only the last due day. A day with a verdict is never judged again, whatever the
cursor says.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg

from adrecon_assets.checks.sla import judge, judged_days, last_due_day, sla_facts
from adrecon_assets.clock import utc_now
from adrecon_assets.lake import Lake, LakeNotFoundError
from adrecon_assets.partitions import first_day
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import METRICS_WINDOW_DAYS

# After a longer outage, the days before this many are left unjudged (they are still
# reconciled, and reported by adrecon-healthcheck and adrecon-metrics).
MAX_DAYS_JUDGED_AT_ONCE = METRICS_WINDOW_DAYS


def days_to_judge(cursor: str | None, last_due: date) -> list[date]:
    """The days after the cursor's (the last judged) up to `last_due`, oldest first; without a
    cursor only `last_due`; never before the first partition."""
    first = date.fromisoformat(cursor) + timedelta(days=1) if cursor else last_due
    first = max(first, last_due - timedelta(days=MAX_DAYS_JUDGED_AT_ONCE - 1), first_day())
    return [first + timedelta(days=n) for n in range((last_due - first).days + 1)]


def evaluate_sla(
    context: dg.SensorEvaluationContext, hour: int, now: datetime, lake: Lake | None
) -> dg.SensorResult:
    last_due = last_due_day(now, hour)
    if last_due < first_day():
        return dg.SensorResult(skip_reason=f"no partition is due yet (first day {first_day()})")
    days = days_to_judge(context.cursor, last_due)
    judged = judged_days(context.instance) if days else set()
    verdicts = []
    for day in days:
        if day in judged:
            continue
        verdict = judge(sla_facts(context.instance, lake, day, now, hour))
        if verdict is not None:
            verdicts.append(verdict)
    reason = "; ".join(verdict.description for verdict in verdicts)
    return dg.SensorResult(
        asset_events=[verdict.evaluation() for verdict in verdicts],
        cursor=last_due.isoformat(),
        skip_reason=reason or f"SLA of {last_due} already recorded",
    )


def build_sla_sensor(interval_seconds: int) -> dg.SensorDefinition:
    """The sensor, ticking at most every `interval_seconds` (ADRECON_SENSOR_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="reconciled_statistics_sla_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description=(
            "At each day's deadline (ADRECON_SLA_HOUR_UTC, default 07:00 UTC, on D+1) records "
            "reconciled_by_sla_hour for the day once: passed if it was first reconciled by "
            "then, else failed with its cause (no lake data, lake closed late, run running, "
            "run failed, not reconciled, reconciled late)."
        ),
    )
    def reconciled_statistics_sla_sensor(
        context: dg.SensorEvaluationContext,
        automation: AutomationSettings,
        storage: StorageResource,
    ) -> dg.SensorResult:
        try:
            lake: Lake | None = storage.lake
        except LakeNotFoundError as error:
            # A misconfigured lake: the readiness sensor fails on it; verdicts go on without it.
            context.log.error(f"SLA judged without the lake: {error}")
            lake = None
        return evaluate_sla(context, automation.sla_hour_utc, utc_now(), lake)

    return reconciled_statistics_sla_sensor
