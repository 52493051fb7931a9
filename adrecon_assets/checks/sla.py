"""The SLA as contract 6.1 states it: day D is due by ADRECON_SLA_HOUR_UTC:00 UTC on D+1.

A day first reconciled by its deadline passes. A day first reconciled after it, or not by it,
is a miss, with its cause (`rules.SlaMissCause`, in metadata `cause`), a description and the
numeric `minutes_past_deadline`. "First reconciled" is the day's first materialization of
`reconciled_statistics`, so a later rerun of a day reconciled in time is not a miss.

Each day is judged once, at its deadline, on the facts of the deadline: the
`reconciled_statistics_sla_sensor` records the verdict as the one evaluation of
`reconciled_by_sla_hour` for that day (or at its next tick, if the daemon was down then). The
reconciliation runs leave the check out (`jobs.NOT_IN_RUNS`): a run still going at the deadline
is a miss, and its end must not judge the day a second time. Executed by hand, the check records
the same verdict if the day is due and has none yet, and otherwise records nothing.
"""

# No `from __future__ import annotations`: Dagster reads the check's context annotation.

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Protocol

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.clock import utc_now
from adrecon_assets.day_accounting import lake_closures, reconcile_attempts
from adrecon_assets.jobs import SLA_CHECK_KEY
from adrecon_assets.lake import Lake, LakeNotFoundError
from adrecon_assets.partitions import daily_partitions, parse_day
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import SLA_CAUSE_METADATA, SLA_CHECK_NAME, SlaMissCause, Topic
from adrecon_assets.rules import sla_deadline as deadline
from adrecon_assets.sensors.instance_records import LIVE_RUN_STATUSES, days_of_tags
from adrecon_assets.sensors.retries import FAILED_STATUSES, ended_at

SLA_CHECK = SLA_CHECK_NAME
RECONCILED_STATISTICS = RECONCILED_STATISTICS_KEY
STAMP = "%Y-%m-%d %H:%M UTC"
# Evaluations of the check read to see whether a day has its verdict: one a day, so this many
# covers a month of days judged after the one asked about.
RECENT_EVALUATIONS = 60
PLANNED = "PLANNED"


def last_due_day(now: datetime, hour: int) -> date:
    """The latest day whose deadline has passed at `now`."""
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    return yesterday if now >= deadline(yesterday, hour) else yesterday - timedelta(days=1)


def first_reconciled_at(instance: dg.DagsterInstance, day: date) -> datetime | None:
    """When the day's partition of reconciled_statistics was first materialized, if ever:
    reruns add materializations after it and do not move it."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RECONCILED_STATISTICS, asset_partitions=[day.isoformat()]),
        limit=1,
        ascending=True,
    ).records
    return datetime.fromtimestamp(records[0].timestamp, UTC) if records else None


@dataclass(frozen=True)
class LakeFacts:
    """What the lake said of the day: whether a folder of it exists, and when it closed."""

    exists: bool
    closed_at: datetime | None


def lake_facts(lake: Lake, day: date) -> LakeFacts:
    exists = any(lake.markers(topic, [day])[day].exists for topic in Topic)
    return LakeFacts(exists, lake_closures(lake, [day]).get(day))


@dataclass(frozen=True)
class SlaFacts:
    """Everything the verdict of a day depends on, read at `now`. `lake` is None when the lake
    could not be read (a misconfiguration): the verdict then names no lake cause."""

    day: date
    deadline: datetime
    now: datetime
    first_reconciled_at: datetime | None
    lake: LakeFacts | None = None
    # The oldest start of a queued or running run covering the day.
    running_since: datetime | None = None
    # When the day's newest reconciliation attempt failed (None: it did not, or there was none).
    last_run_failed_at: datetime | None = None


@dataclass(frozen=True)
class SlaVerdict:
    day: date
    deadline: datetime
    passed: bool
    description: str
    cause: SlaMissCause | None = None
    minutes_past_deadline: float = 0.0
    reconciled_at: datetime | None = None

    @property
    def metadata(self) -> dict[str, str | float]:
        return {
            "day": self.day.isoformat(),
            "deadline_utc": self.deadline.isoformat(),
            "first_reconciled_at_utc": (
                self.reconciled_at.isoformat() if self.reconciled_at else "never"
            ),
            "minutes_past_deadline": self.minutes_past_deadline,
            SLA_CAUSE_METADATA: self.cause.value if self.cause else "none",
        }

    def evaluation(self) -> dg.AssetCheckEvaluation:
        """The day's evaluation of the check, as the sensor records it (outside any run)."""
        return dg.AssetCheckEvaluation(
            asset_key=RECONCILED_STATISTICS,
            check_name=SLA_CHECK,
            passed=self.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=self.description,
            metadata=self.metadata,
            partition=self.day.isoformat(),
        )


def minutes(delta: timedelta) -> float:
    return round(max(delta.total_seconds(), 0.0) / 60, 1)


def judge(facts: SlaFacts) -> SlaVerdict | None:
    """The day's verdict, or None before its deadline."""
    due, day = facts.deadline, facts.day
    if facts.now < due:
        return None
    reconciled = facts.first_reconciled_at
    lake = facts.lake
    lake_late = lake is not None and (lake.closed_at is None or lake.closed_at > due)
    closed = f"the lake closed {day} at {lake.closed_at:{STAMP}}" if lake and lake.closed_at else ""

    def miss(cause: SlaMissCause, reason: str, late: timedelta) -> SlaVerdict:
        description = f"SLA missed for {day} (due {due:{STAMP}}): {reason}"
        return SlaVerdict(day, due, False, description, cause, minutes(late), reconciled)

    if reconciled is not None and reconciled <= due:
        text = f"{day} reconciled at {reconciled:{STAMP}}, {minutes(due - reconciled)} min early"
        return SlaVerdict(day, due, True, text, reconciled_at=reconciled)
    if reconciled is not None:
        late = reconciled - due
        done = f"reconciled at {reconciled:{STAMP}}, late by {minutes(late)} min"
        if lake_late and closed:
            reason = f"{closed}, after the deadline; {done}"
            return miss(SlaMissCause.LAKE_CLOSED_LATE, reason, late)
        return miss(SlaMissCause.RECONCILED_LATE, done, late)
    late = facts.now - due
    if lake is not None and not lake.exists:
        return miss(
            SlaMissCause.NO_LAKE_DATA,
            f"no lake data for {day} (no clicks or emissions folder): check the event persister",
            late,
        )
    if lake_late:
        reason = f"{closed}, after the deadline" if closed else f"the lake has not closed {day}"
        return miss(SlaMissCause.LAKE_CLOSED_LATE, f"{reason}; not reconciled yet", late)
    if facts.running_since is not None:
        reason = f"a run running since {facts.running_since:{STAMP}} has not reconciled it"
        return miss(SlaMissCause.RUN_RUNNING, reason, late)
    if facts.last_run_failed_at is not None:
        reason = f"the last run failed at {facts.last_run_failed_at:{STAMP}}"
        return miss(SlaMissCause.RUN_FAILED, f"{reason}; it is retried without a person", late)
    after = f" ({closed})" if closed else ""
    return miss(SlaMissCause.NOT_RECONCILED, f"not reconciled by the deadline{after}", late)


def running_since(instance: dg.DagsterInstance, day: date) -> datetime | None:
    """When the oldest queued or running run covering `day` started (or was created)."""
    records = instance.get_run_records(dg.RunsFilter(statuses=LIVE_RUN_STATUSES))
    starts = [
        datetime.fromtimestamp(record.start_time, UTC)
        if record.start_time is not None
        else record.create_timestamp.astimezone(UTC)
        for record in records
        if day in days_of_tags(dict(record.dagster_run.tags))
    ]
    return min(starts, default=None)


def last_run_failed_at(instance: dg.DagsterInstance, day: date) -> datetime | None:
    newest = reconcile_attempts(instance, day, 1)
    if newest and newest[0].dagster_run.status in FAILED_STATUSES:
        return ended_at(newest[0])
    return None


def sla_facts(
    instance: dg.DagsterInstance, lake: Lake | None, day: date, now: datetime, hour: int
) -> SlaFacts:
    """The facts of `day` at `now`; `lake` None, or a lake that cannot be read, gives none of
    the lake's."""
    facts = None
    if lake is not None:
        try:
            facts = lake_facts(lake, day)
        except LakeNotFoundError:
            facts = None
    return SlaFacts(
        day,
        deadline(day, hour),
        now,
        first_reconciled_at(instance, day),
        facts,
        running_since(instance, day),
        last_run_failed_at(instance, day),
    )


class CheckExecution(Protocol):
    """What is read of a record of `get_asset_check_execution_history` (a private class)."""

    @property
    def partition(self) -> str | None: ...

    @property
    def status(self) -> Enum: ...


def judged_days(instance: dg.DagsterInstance) -> set[date]:
    """The days with a recorded verdict among the check's latest evaluations."""
    history: list[CheckExecution] = list(
        instance.event_log_storage.get_asset_check_execution_history(
            SLA_CHECK_KEY, limit=RECENT_EVALUATIONS
        )
    )
    return {
        date.fromisoformat(record.partition)
        for record in history
        if record.partition and record.status.value != PLANNED
    }


def evaluate_sla_check(
    context: dg.AssetCheckExecutionContext,
    automation: AutomationSettings,
    storage: StorageResource,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output[None]]:
    """The check executed by hand: the verdict of each due day of the run that has none yet."""
    now, judged = utc_now(), judged_days(context.instance)
    for partition_key in context.partition_keys:
        day = parse_day(partition_key)
        facts = sla_facts(context.instance, storage.lake, day, now, automation.sla_hour_utc)
        verdict = judge(facts)
        if verdict is not None and day not in judged:
            yield verdict.evaluation()
    # The check's op output: it records nothing by itself (no evaluation, no second verdict).
    for output in context.op_execution_context.op_def.output_defs:
        yield dg.Output(None, output_name=output.name)


# A partitioned asset check is a preview feature of Dagster; it is used on purpose, so its
# warning is silenced here, for this definition only.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    reconciled_by_sla_hour = dg.asset_check(
        asset=RECONCILED_STATISTICS,
        name=SLA_CHECK,
        partitions_def=daily_partitions,
        description=(
            "Day D of reconciled_statistics is first materialized by ADRECON_SLA_HOUR_UTC:00 UTC "
            "on D+1 (default 07:00). Recorded once per day by reconciled_statistics_sla_sensor "
            "at the deadline: passed, or failed with its cause (metadata `cause`) and "
            "minutes_past_deadline."
        ),
        # Dagster types the body as returning one AssetCheckResult; it yields evaluations.
    )(evaluate_sla_check)  # type: ignore[arg-type]
