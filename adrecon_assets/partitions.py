"""The daily UTC partitioning shared by every asset, and the mappings between days."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import date, timedelta

import dagster as dg

from adrecon_assets import rules
from adrecon_assets.settings import load_settings

# Day D becomes a partition once it is over (00:00 UTC of D+1), not while it is still open:
# reconciling half a day would overwrite the online layer's numbers with fewer clicks, and a
# backfill ending yesterday would drag today in through the D-1 mapping.
START_DATE = load_settings().start_date
daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC")

# allow_nonexistent_upstream_partitions is beta; it is exactly the contract's "the partition
# before the first partition counts as empty", so the warning is silenced here once.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    # A click of D may belong to an emission of D-1; the day before the first partition is empty.
    previous_and_same_day = dg.TimeWindowPartitionMapping(
        start_offset=-rules.EMISSION_LOOKBACK_DAYS,
        end_offset=0,
        allow_nonexistent_upstream_partitions=True,
    )
    # The anomaly baseline of D looks at D's statistics and the trailing days before it.
    trailing_window = dg.TimeWindowPartitionMapping(
        start_offset=-rules.ANOMALY_TRAILING_DAYS,
        end_offset=0,
        allow_nonexistent_upstream_partitions=True,
    )


def parse_day(partition_key: str) -> date:
    return date.fromisoformat(partition_key)


def first_day() -> date:
    return START_DATE


def previous_day(day: date) -> date | None:
    """D-1, or None for the first partition (whose previous day counts as empty)."""
    before = day - timedelta(days=1)
    return before if before >= first_day() else None


def trailing_days(day: date, count: int) -> list[date]:
    """The up to `count` days before `day`, oldest first, never before the first partition."""
    return [
        day - timedelta(days=offset)
        for offset in range(count, 0, -1)
        if day - timedelta(days=offset) >= first_day()
    ]


def consecutive(days: Iterable[date]) -> list[list[date]]:
    """`days`, sorted and cut into runs of consecutive days."""
    runs: list[list[date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def day_spans(days: Iterable[date]) -> str:
    """Days as runs of consecutive days, for a log line: `2026-01-01..2026-01-09, 2026-01-11`."""
    return ", ".join(
        f"{run[0]}..{run[-1]}" if len(run) > 1 else str(run[0]) for run in consecutive(days)
    )
