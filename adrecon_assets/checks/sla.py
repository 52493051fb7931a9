"""SLA of the day's statistics: day D is reconciled by ADRECON_SLA_HOUR_UTC (default 07:00) on D+1.

One definition of "met" serves both the `reconciled_by_sla_hour` check (run with each
reconciliation, and from the UI) and `reconciled_statistics_sla_sensor`, which records a failed
evaluation of it once the deadline has passed without the day, so on-call gets the same alert as
for any failed check.
"""

# No `from __future__ import annotations`: Dagster reads the check's context annotation.

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.partitions import daily_partitions, parse_day
from adrecon_assets.resources.automation_settings import AutomationSettings

SLA_CHECK = "reconciled_by_sla_hour"
STAMP = "%Y-%m-%d %H:%M UTC"


def deadline(day: date, hour: int) -> datetime:
    """When day D's statistics are due: D+1 at `hour`:00 UTC."""
    return datetime.combine(day + timedelta(days=1), time(hour), tzinfo=UTC)


def last_due_day(now: datetime, hour: int) -> date:
    """The latest day whose deadline has passed at `now`."""
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    return yesterday if now >= deadline(yesterday, hour) else yesterday - timedelta(days=1)


def reconciled_at(instance: dg.DagsterInstance, day: date) -> datetime | None:
    """When the day's partition of reconciled_statistics was last materialized, if ever."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=RECONCILED_STATISTICS_KEY, asset_partitions=[day.isoformat()]
        ),
        limit=1,
    ).records
    return datetime.fromtimestamp(records[0].timestamp, UTC) if records else None


@dataclass(frozen=True)
class SlaStatus:
    day: date
    deadline: datetime
    reconciled_at: datetime | None
    now: datetime
    # Neither topic has a folder for the day: nothing arrived, which is not a late pipeline.
    no_lake_data: bool = False

    @property
    def passed(self) -> bool:
        """Met once reconciled; failed only when the deadline passed without it."""
        return self.reconciled_at is not None or self.now < self.deadline

    @property
    def description(self) -> str:
        if self.reconciled_at is not None:
            return f"reconciled_statistics {self.day} materialized at {self.reconciled_at:{STAMP}}"
        if self.passed:
            return f"reconciled_statistics {self.day} is due by {self.deadline:{STAMP}}"
        if self.no_lake_data:
            return (
                f"SLA missed: no lake data for {self.day} (no clicks or emissions folder by "
                f"{self.deadline:{STAMP}}): check the event persister"
            )
        return (
            f"SLA missed: reconciled_statistics {self.day} was not materialized by "
            f"{self.deadline:{STAMP}}"
        )

    @property
    def metadata(self) -> dict[str, str | float]:
        late = self.now - self.deadline if self.reconciled_at is None else None
        return {
            "day": self.day.isoformat(),
            "deadline_utc": self.deadline.isoformat(),
            "reconciled_at_utc": self.reconciled_at.isoformat() if self.reconciled_at else "never",
            "minutes_past_deadline": round(max(late.total_seconds(), 0) / 60, 1) if late else 0.0,
        }


def sla_status(
    instance: dg.DagsterInstance, day: date, now: datetime, hour: int, no_lake_data: bool = False
) -> SlaStatus:
    return SlaStatus(day, deadline(day, hour), reconciled_at(instance, day), now, no_lake_data)


def sla_evaluation(status: SlaStatus) -> dg.AssetCheckEvaluation:
    """The check's evaluation as a sensor records it (outside any run)."""
    return dg.AssetCheckEvaluation(
        asset_key=RECONCILED_STATISTICS_KEY,
        check_name=SLA_CHECK,
        passed=status.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=status.description,
        metadata=status.metadata,
        partition=status.day.isoformat(),
    )


def evaluate_sla_check(
    context: dg.AssetCheckExecutionContext, automation: AutomationSettings
) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output[None]]:
    now, hour = datetime.now(UTC), automation.sla_hour_utc
    if context.has_partition_key:
        status = sla_status(context.instance, parse_day(context.partition_key), now, hour)
        yield dg.AssetCheckResult(
            passed=status.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=status.description,
            metadata=status.metadata,
        )
        return
    # A ranged run (a catch-up backfill): one evaluation per day, as for a one-day run.
    for partition_key in context.partition_keys:
        yield sla_evaluation(sla_status(context.instance, parse_day(partition_key), now, hour))
    # The check's op output, which an AssetCheckResult would have stood for.
    for output in context.op_execution_context.op_def.output_defs:
        yield dg.Output(None, output_name=output.name)


# A partitioned asset check is a preview feature of Dagster; it is used on purpose, so its
# warning is silenced here, for this definition only.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    reconciled_by_sla_hour = dg.asset_check(
        asset=RECONCILED_STATISTICS_KEY,
        name=SLA_CHECK,
        partitions_def=daily_partitions,
        description=(
            "Day D of reconciled_statistics is materialized by ADRECON_SLA_HOUR_UTC:00 UTC on "
            "D+1 (default 07:00). Recorded as failed by reconciled_statistics_sla_sensor when the "
            "deadline passes without it; passes once the day is reconciled."
        ),
        # Dagster types the body as returning one AssetCheckResult; a ranged run yields one a day.
    )(evaluate_sla_check)  # type: ignore[arg-type]
