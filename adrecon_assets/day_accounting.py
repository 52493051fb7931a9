"""Every day accounted for (contract 5): which closed days are not reconciled yet, and when each
one's lake closed.

This is the one definition the readiness sensor launches from, the SLA sensor judges with, and
`adrecon-healthcheck` and `adrecon-metrics` report (the alerts read it too): every day from
ADRECON_START_DATE to yesterday, not just a lookback window, so no outage is long enough to
leave a day behind.

It stays cheap over hundreds of days: one query for the reconciled days (fewer with a
`reconciled_through` watermark that a sensor keeps in its cursor), one listing of each topic's
day folders, then the `_SUCCESS` marker of each unreconciled day that has a folder (a stat or a
HEAD each; data files are never listed). `benchmarks/day_accounting_tick.py` measures it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.clock import utc_now
from adrecon_assets.jobs import RECONCILE_DAYS
from adrecon_assets.lake import Lake
from adrecon_assets.partitions import daily_partitions, previous_day
from adrecon_assets.rules import Topic, day_bounds
from adrecon_assets.run_tags import PARTITION_TAG, RANGE_END_TAG
from adrecon_assets.sensors.instance_records import days_of_tags, latest_materializations

RECONCILED = RECONCILED_STATISTICS_KEY
# Ranged runs read per day asked about (catch-ups after an outage or a new lake, operators'
# backfills): they are rare, so this many is all of them.
RANGES_READ = 100


@dataclass(frozen=True)
class UnreconciledDay:
    """A closed day without reconciled statistics, and when its lake closed it (the newest of
    the `_SUCCESS` markers its readiness waits for)."""

    day: date
    lake_closed_at: datetime


def partition_days(now: datetime) -> list[date]:
    """Every daily partition that exists at `now`: ADRECON_START_DATE to yesterday."""
    return [date.fromisoformat(key) for key in daily_partitions.get_partition_keys(now)]


def reconciled_days(
    instance: dg.DagsterInstance, days: Sequence[date], reconciled_through: date | None = None
) -> set[date]:
    """The days among `days` with a materialization of reconciled_statistics. Days up to
    `reconciled_through` are known reconciled (a materialization is never taken back) and are
    not queried."""
    known = {day for day in days if reconciled_through is not None and day <= reconciled_through}
    rest = [day for day in days if day not in known]
    if not rest:
        return known
    if len(rest) > len(days) // 2:
        # Most days to ask about: one query for all of the asset's partitions is cheaper.
        materialized = instance.get_materialized_partitions(RECONCILED)
        return known | {day for day in rest if day.isoformat() in materialized}
    return known | set(latest_materializations(instance, RECONCILED, rest))


def watermark(days: Sequence[date], reconciled: set[date]) -> date | None:
    """The newest day up to which every day of `days` (oldest first) is reconciled."""
    through = None
    for day in days:
        if day not in reconciled:
            break
        through = day
    return through


def lake_closures(lake: Lake, days: Iterable[date]) -> dict[date, datetime]:
    """The closed days among `days` and when their lake closed. Day D is closed when clicks and
    emissions of D have `_SUCCESS`, and so has emissions of D-1 unless D is the first partition
    or D-1 has no emissions folder at all (an empty day, contract 2)."""
    wanted = sorted(set(days))
    before = {previous for previous in map(previous_day, wanted) if previous is not None}
    clicks = lake.markers(Topic.CLICKS, wanted)
    emissions = lake.markers(Topic.EMISSIONS, sorted(set(wanted) | before))
    closed: dict[date, datetime] = {}
    for day in wanted:
        needed = [clicks[day], emissions[day]]
        previous = previous_day(day)
        if previous is not None and emissions[previous].exists:
            needed.append(emissions[previous])
        stamps = [marker.closed_ns for marker in needed]
        if all(stamp is not None for stamp in stamps):
            newest = max(stamp for stamp in stamps if stamp is not None)
            closed[day] = datetime.fromtimestamp(newest / 1e9, UTC)
    return closed


@dataclass(frozen=True)
class DayAccount:
    """Every partition at one instant: which are reconciled, which are closed and not."""

    days: list[date]
    reconciled: set[date]
    unreconciled_closed: list[UnreconciledDay]

    @property
    def reconciled_through(self) -> date | None:
        """What a sensor keeps in its cursor to pass back as `reconciled_through`."""
        return watermark(self.days, self.reconciled)


def account_days(
    instance: dg.DagsterInstance,
    lake: Lake,
    now: datetime,
    reconciled_through: date | None = None,
) -> DayAccount:
    """The account of every day from ADRECON_START_DATE to yesterday (at `now`)."""
    days = partition_days(now)
    reconciled = reconciled_days(instance, days, reconciled_through)
    closures = lake_closures(lake, [day for day in days if day not in reconciled])
    unreconciled = [UnreconciledDay(day, closed_at) for day, closed_at in sorted(closures.items())]
    return DayAccount(days, reconciled, unreconciled)


def unreconciled_closed_days(
    instance: dg.DagsterInstance,
    lake: Lake,
    now: datetime,
    reconciled_through: date | None = None,
) -> list[UnreconciledDay]:
    """Every closed day from ADRECON_START_DATE to yesterday (at `now`) that is not reconciled,
    oldest first, with when its lake closed. `reconciled_through` (a sensor's cursor, see
    `DayAccount.reconciled_through`) spares the query of the days known reconciled."""
    return account_days(instance, lake, now, reconciled_through).unreconciled_closed


def reconcile_attempts(instance: dg.DagsterInstance, day: date, limit: int) -> list[dg.RunRecord]:
    """The newest `limit` runs of `reconcile_days` that worked on `day`, newest first: its
    one-day runs (the readiness sensor's, their retries and relaunches, an operator's), and
    the ranged runs that covered it (the readiness sensor's catch-ups, an operator's
    single-run backfills)."""
    one_day = instance.get_run_records(
        dg.RunsFilter(job_name=RECONCILE_DAYS, tags={PARTITION_TAG: day.isoformat()}),
        limit=limit,
    )
    # A run of D is created once D is over (D is a partition from then on), so a range that
    # covers D ends on a day from D to today: one query, whatever started the range.
    ends = [
        (day + timedelta(days=offset)).isoformat()
        for offset in range(max(0, (utc_now().date() - day).days) + 1)
    ]
    ranges = instance.get_run_records(
        dg.RunsFilter(
            job_name=RECONCILE_DAYS,
            tags={RANGE_END_TAG: ends},
            created_after=day_bounds(day)[1],
        ),
        limit=RANGES_READ,
    )
    covering = [record for record in ranges if day in days_of_tags(dict(record.dagster_run.tags))]
    merged = sorted([*one_day, *covering], key=lambda record: record.create_timestamp)
    return merged[::-1][:limit]
