"""What the instance already knows about partitions: latest materializations and live runs.

Both sensors decide from the instance (the truth of what was materialized), never from a
cursor of their own, so a restart or a lost cursor neither repeats nor misses work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

import dagster as dg
from dagster._core.storage.tags import PARTITION_NAME_TAG

from adrecon_assets.partitions import daily_partitions

# Dagster's tags of a ranged run (a single-run backfill, or a catch-up the readiness sensor
# launches): the first and last partition key of the run.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

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
    storage_ids = instance.get_latest_storage_id_by_partition(
        asset_key,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        {day.isoformat() for day in days},
    )
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids),
    ).records
    return {
        date.fromisoformat(record.partition_key): record
        for record in records
        if record.partition_key is not None
    }


def run_days(tags: dict[str, str]) -> set[date]:
    """The days a run covers, from its tags: its partition, or every day of its range."""
    if PARTITION_NAME_TAG in tags:
        return {date.fromisoformat(tags[PARTITION_NAME_TAG])}
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first, last = (
            date.fromisoformat(tags[RANGE_START_TAG]),
            date.fromisoformat(tags[RANGE_END_TAG]),
        )
        return {first + timedelta(days=offset) for offset in range((last - first).days + 1)}
    return set()


def live_run_days(instance: dg.DagsterInstance, days: Sequence[date]) -> set[date]:
    """Days among `days` with a queued or running run, one day or a range (one query: live
    runs are few)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=LIVE_RUN_STATUSES))
    return {day for run in runs for day in run_days(dict(run.tags))} & set(days)
