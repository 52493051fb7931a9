"""`lake_readiness_sensor`: every closed day from ADRECON_START_DATE to yesterday is reconciled
without a person, however long the processes were down (contract 5).

The days come from `day_accounting.unreconciled_closed_days` (all of them, not a lookback
window). D is closed when both topics have `_SUCCESS` for D and emissions have it for D-1
(clicks of D join emissions of D-1; the day before the first partition counts as empty). A run
reconciles the whole day, reports included (`reconcile_days`).

- A day never tried is launched at once. Consecutive such days are one ranged run (a catch-up
  after an outage, or a new demo lake), whose steps compute the days oldest first, so D+1 reads
  D's emissions and each anomaly baseline sees the days before it.
- A day whose attempt failed (a transient fault that outlived the in-run retries, a crash, a
  canceled run) is launched again after the backoff of `rules.day_retry_delay` (10 min, 30 min,
  1 h, then hourly), alone: one bad day never holds back the days that were caught up with it.
- A day is busy while a queued or running run covers it, or a requested backfill targets it
  (an operator's, whose run Dagster has not created yet: `busy_days`); a busy day is not
  launched. D waits while D-1 is busy, is launched this tick in a run of its own, or is closed
  and not tried yet; a D-1 waiting out a backoff does not hold D back.

The attempts are read from the instance (runs of `reconcile_days` per day), so a restart neither
repeats nor forgets one; the cursor only remembers up to which day everything is reconciled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from adrecon_assets.day_accounting import account_days, reconcile_attempts
from adrecon_assets.jobs import RUN_CONFIG, reconcile_days
from adrecon_assets.lake import Lake
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.run_tags import (
    CATCH_UP_TRIGGER,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RETRY_OF_TAG,
    TRIGGER_TAG,
)
from adrecon_assets.sensors.busy_days import busy_days
from adrecon_assets.sensors.retries import ATTEMPTS_READ, Attempts, unsuccessful

RECONCILED_THROUGH = "reconciled_through"


@dataclass
class Launch:
    """One run to request: consecutive days tried for the first time, or one day's retry
    after its failed run `retry_of`."""

    days: list[date]
    retry_of: str | None = None

    def run_request(self) -> dg.RunRequest:
        first, last = self.days[0].isoformat(), self.days[-1].isoformat()
        if self.retry_of is not None:
            # Each retry follows a different failed run: its own run key, launched once.
            return dg.RunRequest(
                run_key=f"ready-{first}-after-{self.retry_of}",
                partition_key=first,
                tags={RETRY_OF_TAG: self.retry_of},
                run_config=RUN_CONFIG,
            )
        if len(self.days) == 1:
            return dg.RunRequest(
                run_key=f"ready-{first}", partition_key=first, run_config=RUN_CONFIG
            )
        # Several days as one ranged run (Dagster's tags of a single-run backfill): a catch-up
        # that pays a run's fixed cost once.
        return dg.RunRequest(
            run_key=f"ready-{first}..{last}",
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last, TRIGGER_TAG: CATCH_UP_TRIGGER},
            run_config=RUN_CONFIG,
        )


@dataclass
class Plan:
    launches: list[Launch] = field(default_factory=list)
    by_day: dict[date, Launch] = field(default_factory=dict)

    def add(self, day: date, attempts: Attempts) -> None:
        launch = Launch([day], retry_of=attempts.last_run_id)
        self.launches.append(launch)
        self.by_day[day] = launch

    def join(self, day: date, launch: Launch) -> None:
        launch.days.append(day)
        self.by_day[day] = launch


def launch_plan(
    unreconciled: Sequence[date],
    busy: set[date],
    attempts: Mapping[date, Attempts],
    now: datetime,
) -> list[Launch]:
    """The runs to request for the closed, unreconciled days (oldest first): those not busy
    whose backoff is over and whose previous day does not hold them back (module docstring)."""
    pending = set(unreconciled)
    plan = Plan()
    for day in unreconciled:
        if day in busy or not attempts[day].due(now):
            continue
        before = day - timedelta(days=1)
        if before in busy:
            continue  # D reads what D-1's run writes
        if before not in pending:
            plan.add(day, attempts[day])
        elif before in plan.by_day:
            previous = plan.by_day[before]
            if previous.retry_of is None and attempts[day].failed == 0:
                plan.join(day, previous)  # both never tried: one catch-up run
        elif attempts[before].failed > 0:
            plan.add(day, attempts[day])  # D-1 waits out its backoff; D goes on
    return plan.launches


def evaluate_readiness(
    context: dg.SensorEvaluationContext, lake: Lake, now: datetime
) -> dg.SensorResult:
    instance = context.instance
    known = json.loads(context.cursor).get(RECONCILED_THROUGH) if context.cursor else None
    account = account_days(instance, lake, now, date.fromisoformat(known) if known else None)
    through = account.reconciled_through
    cursor = json.dumps({RECONCILED_THROUGH: through.isoformat() if through else None})
    unreconciled = [entry.day for entry in account.unreconciled_closed]
    busy = busy_days(instance, unreconciled, now)
    attempts = {
        day: unsuccessful(reconcile_attempts(instance, day, ATTEMPTS_READ))
        for day in unreconciled
        if day not in busy
    }
    launches = launch_plan(unreconciled, busy, attempts, now)
    if not launches:
        waiting = ", ".join(
            f"{day} (retry at {attempts[day].retry_at:%Y-%m-%d %H:%M} UTC)"
            for day in unreconciled
            if day in attempts and not attempts[day].due(now)
        )
        reason = f"no closed, unreconciled day is due{'; waiting: ' + waiting if waiting else ''}"
        return dg.SensorResult(skip_reason=reason, cursor=cursor)
    for launch in launches:
        if launch.retry_of is not None:
            context.log.warning(
                f"retrying {launch.days[0]}: its run {launch.retry_of} failed "
                f"({attempts[launch.days[0]].failed} failed attempts in a row)"
            )
    return dg.SensorResult(
        run_requests=[launch.run_request() for launch in launches], cursor=cursor
    )


def build_lake_readiness_sensor(interval_seconds: int) -> dg.SensorDefinition:
    """The sensor, ticking at most every `interval_seconds` (ADRECON_SENSOR_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="lake_readiness_sensor",
        job=reconcile_days,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reconciles every closed day from ADRECON_START_DATE to yesterday (every asset, "
            "reports included) once the lake closed clicks and emissions of D and emissions of "
            "D-1, oldest first; consecutive new days (a catch-up) in one ranged run; a failed "
            "day again after 10 min, 30 min, 1 h, then hourly."
        ),
    )
    def lake_readiness_sensor(
        context: dg.SensorEvaluationContext, storage: StorageResource
    ) -> dg.SensorResult:
        return evaluate_readiness(context, storage.lake, datetime.now(UTC))

    return lake_readiness_sensor
