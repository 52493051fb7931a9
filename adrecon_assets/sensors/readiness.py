"""`lake_readiness_sensor`: launch day D once the lake closed it, once per day.

D is ready when both topics have `_SUCCESS` for D and emissions have it for D-1 (clicks of D
join emissions of D-1; the day before the first partition counts as empty). A run reconciles
the whole day, reports included (`reconcile_days`). D waits while D-1 is ready but not yet
reconciled, unless both are due now: consecutive due days are one ranged run (a catch-up after
an outage, or a new demo lake), whose steps compute the days oldest first, so D+1 reads D's
emissions and each anomaly baseline sees the days before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.jobs import RUN_CONFIG, reconcile_days
from adrecon_assets.lake import Lake, LakeSnapshot
from adrecon_assets.partitions import consecutive, previous_day
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.run_tags import (
    CATCH_UP_TRIGGER,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_KEY_TAG,
    TRIGGER_TAG,
)
from adrecon_assets.sensors.instance_records import (
    days_of_tags,
    latest_materializations,
    live_run_days,
    recent_days,
)


def is_closed(lake: LakeSnapshot, day: date) -> bool:
    """Both topics of `day` closed, and emissions of the day before (unless `day` is first, or
    the day before has no emissions folder at all: an empty day, contract section 2)."""
    return lake.is_closed(day, previous_day(day))


def run_key(day: date) -> str:
    return f"ready-{day.isoformat()}"


def launched_days(instance: dg.DagsterInstance, days: Sequence[date]) -> set[date]:
    """Days this sensor launched before, alone or in a catch-up range, whatever became of the
    run (two queries)."""
    keys = {run_key(day): day for day in days}
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: list(keys)}))
    alone = {keys[run.tags[RUN_KEY_TAG]] for run in runs if run.tags.get(RUN_KEY_TAG) in keys}
    ranged = instance.get_runs(filters=dg.RunsFilter(tags={TRIGGER_TAG: CATCH_UP_TRIGGER}))
    return alone | ({day for run in ranged for day in days_of_tags(dict(run.tags))} & set(days))


def days_to_launch(
    lake: LakeSnapshot,
    days: Sequence[date],
    reconciled: set[date],
    busy: set[date],
    launched: set[date],
) -> list[date]:
    """Unreconciled, closed, idle days whose previous day is settled: due in this same tick,
    not running and either reconciled, not closed (it will not block D), outside the window, or
    launched once before (its run ended; a failed day does not hold back the days after it)."""
    due: list[date] = []
    for day in days:
        if day in reconciled or day in busy or not is_closed(lake, day):
            continue
        before = previous_day(day)
        previous_pending = (
            before is not None
            and before in days
            and before not in due
            and (
                before in busy
                or (before not in reconciled and before not in launched and is_closed(lake, before))
            )
        )
        if not previous_pending:
            due.append(day)
    return due


def evaluate_readiness(
    context: dg.SensorEvaluationContext, lake: Lake, now: datetime, lookback_days: int
) -> dg.SensorResult | dg.SkipReason:
    days = recent_days(lookback_days, now)
    reconciled = set(latest_materializations(context.instance, RECONCILED_STATISTICS_KEY, days))
    busy = live_run_days(context.instance, days)
    launched = launched_days(context.instance, days)
    launchable = days_to_launch(lake.snapshot(days), days, reconciled, busy, launched)
    if not launchable:
        return dg.SkipReason("no closed, unreconciled day is due")
    return dg.SensorResult(run_requests=[run_request(days) for days in consecutive(launchable)])


def run_request(days: list[date]) -> dg.RunRequest:
    """One day as before; several consecutive days as one ranged run (Dagster's tags of a
    single-run backfill), a catch-up that pays a run's fixed cost once."""
    if len(days) == 1:
        return dg.RunRequest(
            run_key=run_key(days[0]), partition_key=days[0].isoformat(), run_config=RUN_CONFIG
        )
    first, last = days[0].isoformat(), days[-1].isoformat()
    return dg.RunRequest(
        run_key=f"ready-{first}..{last}",
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last, TRIGGER_TAG: CATCH_UP_TRIGGER},
        run_config=RUN_CONFIG,
    )


def build_lake_readiness_sensor(interval_seconds: int) -> dg.SensorDefinition:
    """The sensor, ticking at most every `interval_seconds` (ADRECON_SENSOR_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="lake_readiness_sensor",
        job=reconcile_days,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reconciles day D (every asset, reports included) once the lake closed clicks and "
            "emissions of D and emissions of D-1; once per day (run key), oldest first; "
            "consecutive due days (a catch-up) in one ranged run."
        ),
    )
    def lake_readiness_sensor(
        context: dg.SensorEvaluationContext,
        storage: StorageResource,
        automation: AutomationSettings,
    ) -> dg.SensorResult | dg.SkipReason:
        return evaluate_readiness(
            context, storage.lake, datetime.now(UTC), automation.late_data_lookback_days
        )

    return lake_readiness_sensor
