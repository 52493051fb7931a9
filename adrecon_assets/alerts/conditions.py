"""The conditions that alert (contract 6) and their priority, as plain functions.

Pages: a failed run that leaves a day unreconciled, a failed ERROR check, an SLA miss the
pipeline caused or with no lake data, a closed day still unreconciled 2 hours after its lake
closed, a stale healthcheck, a sensor whose ticks fail for 10 minutes. Notifications: a failed
WARN check, an SLA miss because the lake closed late, a step over 3x its median duration.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import dagster as dg

from adrecon_assets.alerts.model import Alert, AlertKind, Priority, dedup_key
from adrecon_assets.checks.sla import SLA_CHECK
from adrecon_assets.rules import (
    DURATION_MEDIAN_FACTOR,
    DURATION_MIN_EXCESS_SECONDS,
    SENSOR_FAILING_PAGE_AFTER,
    SLA_CAUSE_METADATA,
    UNRECONCILED_CLOSED_DAY_GRACE,
    SlaMissCause,
)

ERROR = dg.AssetCheckSeverity.ERROR.value


def check_priority(severity: str) -> Priority:
    return Priority.PAGE if severity == ERROR else Priority.NOTIFY


def sla_priority(cause: str | None) -> Priority:
    """Only a lake closed after the deadline is not the pipeline's doing (rules.SlaMissCause)."""
    return Priority.NOTIFY if cause == SlaMissCause.LAKE_CLOSED_LATE.value else Priority.PAGE


def _numbers(evaluation: dg.AssetCheckEvaluation) -> str:
    return ", ".join(
        f"{key}={value.value}" for key, value in evaluation.metadata.items() if key != "path"
    )


def check_key(asset: str, check: str, partition: str | None) -> str:
    """One check of one day; the SLA is one condition per day."""
    if check == SLA_CHECK:
        return dedup_key(AlertKind.SLA, partition)
    return dedup_key(AlertKind.ASSET_CHECK, asset, check, partition)


def check_alert(
    evaluation: dg.AssetCheckEvaluation, run_id: str | None, partition: str | None
) -> Alert:
    """A failed check's alert, its metadata numbers in the message; the SLA check's is `sla`,
    routed by its cause."""
    summary = evaluation.description or f"check {evaluation.check_name} failed"
    numbers = _numbers(evaluation)
    asset = evaluation.asset_key.to_user_string()
    partition = evaluation.partition or partition
    severity = evaluation.severity.value
    if evaluation.check_name == SLA_CHECK:
        cause = evaluation.metadata.get(SLA_CAUSE_METADATA)
        kind, priority = AlertKind.SLA, sla_priority(str(cause.value) if cause else None)
    else:
        kind, priority = AlertKind.ASSET_CHECK, check_priority(severity)
    return Alert(
        kind=kind,
        asset=asset,
        check=evaluation.check_name,
        partition=partition,
        severity=severity,
        run_id=run_id or None,
        message=f"{summary} ({numbers})" if numbers else summary,
        priority=priority,
        dedup_key=check_key(asset, evaluation.check_name, partition),
    )


def run_failure_key(day: date | None, run_id: str) -> str:
    """One unreconciled day, whichever runs failed on it (a run without days: that run)."""
    if day is None:
        return dedup_key(AlertKind.RUN_FAILURE, "run", run_id)
    return dedup_key(AlertKind.RUN_FAILURE, day.isoformat())


def run_failure_alert(day: date | None, run_id: str, assets: str | None, message: str) -> Alert:
    """A failed run that leaves `day` unreconciled pages; a run of no day only notifies."""
    return Alert(
        kind=AlertKind.RUN_FAILURE,
        asset=assets,
        check=None,
        partition=day.isoformat() if day else None,
        severity=ERROR,
        run_id=run_id,
        message=message,
        priority=Priority.PAGE if day else Priority.NOTIFY,
        dedup_key=run_failure_key(day, run_id),
    )


def missing_day_alerts(
    closed_unreconciled: Iterable[tuple[date, datetime]], now: datetime
) -> list[Alert]:
    """A page per closed day still unreconciled UNRECONCILED_CLOSED_DAY_GRACE after its lake,
    from (day, lake_closed_at) pairs."""
    return [
        Alert(
            kind=AlertKind.MISSING_DAYS,
            asset="reconciled_statistics",
            check=None,
            partition=day.isoformat(),
            severity=ERROR,
            run_id=None,
            message=(
                f"{day} is not reconciled {(now - closed_at).total_seconds() / 3600:.1f} h after "
                f"its lake closed at {closed_at:%Y-%m-%d %H:%M} UTC"
            ),
            priority=Priority.PAGE,
            dedup_key=dedup_key(AlertKind.MISSING_DAYS, day.isoformat()),
        )
        for day, closed_at in sorted(closed_unreconciled)
        if now - closed_at >= UNRECONCILED_CLOSED_DAY_GRACE
    ]


def failing_since(tick_outcomes: Sequence[tuple[datetime, bool]]) -> datetime | None:
    """When the sensor's current run of failed ticks began (newest first: (time, ok) pairs),
    None if its latest tick did not fail."""
    since = None
    for timestamp, ok in tick_outcomes:
        if ok:
            break
        since = timestamp
    return since


def sensor_alert(name: str, since: datetime, now: datetime, error: str) -> Alert | None:
    """A page once the sensor's ticks have failed for SENSOR_FAILING_PAGE_AFTER."""
    if now - since < SENSOR_FAILING_PAGE_AFTER:
        return None
    return Alert(
        kind=AlertKind.SENSOR,
        asset=None,
        check=name,
        partition=None,
        severity=ERROR,
        run_id=None,
        message=f"sensor {name}: every tick failed since {since:%Y-%m-%d %H:%M} UTC: {error}",
        priority=Priority.PAGE,
        dedup_key=dedup_key(AlertKind.SENSOR, name),
    )


def duration_overrun(seconds: float, history: Sequence[float]) -> float | None:
    """The median of `history` if `seconds` is over DURATION_MEDIAN_FACTOR times it and over
    DURATION_MIN_EXCESS_SECONDS longer, else None (also without history)."""
    if not history:
        return None
    median = statistics.median(history)
    too_slow = (
        seconds > DURATION_MEDIAN_FACTOR * median and seconds - median > DURATION_MIN_EXCESS_SECONDS
    )
    return median if too_slow else None


def duration_alert(
    asset: str, partition: str | None, run_id: str | None, seconds: float, median: float
) -> Alert:
    return Alert(
        kind=AlertKind.DURATION,
        asset=asset,
        check=None,
        partition=partition,
        severity="WARN",
        run_id=run_id,
        message=(
            f"{asset} {partition} took {seconds:.0f} s, {seconds / median:.1f}x the median "
            f"{median:.0f} s of its previous days"
        ),
        priority=Priority.NOTIFY,
        dedup_key=dedup_key(AlertKind.DURATION, asset),
    )
