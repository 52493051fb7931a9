"""What the instance already knows about partitions: latest materializations and live runs.

The sensors decide from the instance (the truth of what was materialized and run), never from
a cursor of their own (readiness keeps only a cache of the days known reconciled in one), so a
restart or a lost cursor neither repeats nor misses work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Protocol

import dagster as dg

from adrecon_assets.partitions import daily_partitions
from adrecon_assets.run_tags import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG

# Runs in these states still own their partition: a second run of it would race the first.
LIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def recent_days(lookback_days: int, now: datetime) -> list[date]:
    """The last `lookback_days` daily partitions that exist at `now` (the newest is yesterday:
    a day is a partition once it is over), oldest first."""
    keys = daily_partitions.get_partition_keys(current_time=now)
    return [date.fromisoformat(key) for key in keys[-lookback_days:]]


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, days: Iterable[date]
) -> dict[date, dg.EventLogRecord]:
    """The latest materialization record of each of `days` that has one, in two queries
    (latest storage id per partition, then those records) whatever the history's length."""
    return _latest_records(instance, asset_key, days, dg.DagsterEventType.ASSET_MATERIALIZATION)


def latest_observations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, days: Iterable[date]
) -> dict[date, dg.EventLogRecord]:
    """The latest observation record of each of `days` that has one (two queries)."""
    return _latest_records(instance, asset_key, days, dg.DagsterEventType.ASSET_OBSERVATION)


def _latest_records(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    days: Iterable[date],
    event_type: dg.DagsterEventType,
) -> dict[date, dg.EventLogRecord]:
    storage_ids = instance.get_latest_storage_id_by_partition(
        asset_key, event_type, {day.isoformat() for day in days}
    )
    if not storage_ids:
        return {}
    records_filter = dg.AssetRecordsFilter(
        asset_key=asset_key, storage_ids=list(storage_ids.values())
    )
    fetch = (
        instance.fetch_observations
        if event_type is dg.DagsterEventType.ASSET_OBSERVATION
        else instance.fetch_materializations
    )
    records = fetch(records_filter, limit=len(storage_ids)).records
    return {
        date.fromisoformat(record.partition_key): record
        for record in records
        if record.partition_key is not None
    }


def days_of_tags(tags: dict[str, str]) -> set[date]:
    """The days a run covers, from its tags: its partition, or every day of its range."""
    if PARTITION_TAG in tags:
        return {date.fromisoformat(tags[PARTITION_TAG])}
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first, last = (
            date.fromisoformat(tags[RANGE_START_TAG]),
            date.fromisoformat(tags[RANGE_END_TAG]),
        )
        return {first + timedelta(days=offset) for offset in range((last - first).days + 1)}
    return set()


def run_partition(tags: dict[str, str]) -> str | None:
    """The one day a run covers (its partition, or a range of one day, as a backfill of one
    day runs), else None."""
    days = days_of_tags(tags)
    return next(iter(days)).isoformat() if len(days) == 1 else None


def live_run_days(instance: dg.DagsterInstance, days: Sequence[date]) -> set[date]:
    """Days among `days` with a queued or running run, one day or a range (one query: live
    runs are few)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=LIVE_RUN_STATUSES))
    return {day for run in runs for day in days_of_tags(dict(run.tags))} & set(days)


# Values of the status enum of a check execution record, by name (the enum is private).
PLANNED, FAILED, SUCCEEDED = "PLANNED", "FAILED", "SUCCEEDED"


class CheckExecution(Protocol):
    """What is read of a record of `get_asset_check_execution_history` (its class is private
    to Dagster; its status is an enum whose values are PLANNED, SUCCEEDED, FAILED...)."""

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
