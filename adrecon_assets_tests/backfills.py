"""Backfills recorded in a test instance as Dagster stores them: the JSON body of its bulk
actions table, read back with the public `dagster.deserialize_value`. Dagster 1.13 creates a
backfill only through the webserver (GraphQL) or its private `PartitionBackfill` class, and
these tests run in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from adrecon_assets.partitions import first_day


def stamp(day: date) -> dict[str, object]:
    """A UTC midnight as Dagster serializes a timestamp with its time zone."""
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return {"__class__": "TimestampWithTimezone", "timestamp": moment, "timezone": "UTC"}


def daily_subset(first: date, last: date) -> dict[str, object]:
    """The partitions `first`..`last` of the project's daily partitions, as a stored subset."""
    window = {"__class__": "TimeWindow", "start": stamp(first), "end": stamp(last + timedelta(1))}
    partitions_def = {
        "__class__": "TimeWindowPartitionsDefinition",
        "cron_schedule": "0 0 * * *",
        "end": None,
        "end_offset": 0,
        "exclusions": None,
        "fmt": "%Y-%m-%d",
        "start": stamp(first_day()),
        "timezone": "UTC",
    }
    return {
        "__class__": "TimeWindowPartitionsSubset",
        "included_time_windows": [window],
        "num_partitions": (last - first).days + 1,
        "partitions_def": partitions_def,
    }


def asset_subset(days_by_asset: Mapping[str, tuple[date, date]]) -> dict[str, object]:
    items = [
        [{"__class__": "AssetKey", "path": [name]}, daily_subset(first, last)]
        for name, (first, last) in days_by_asset.items()
    ]
    return {
        "__class__": "AssetGraphSubset",
        "non_partitioned_asset_keys": {"__set__": []},
        "partitions_subsets_by_asset_key": {"__mapping_items__": items},
    }


def add_backfill(
    instance: dg.DagsterInstance,
    backfill_id: str,
    status: str,
    *,
    partition_names: Sequence[date] | None = None,
    asset_days: Mapping[str, tuple[date, date]] | None = None,
) -> None:
    """A job backfill of `partition_names` (as of `reconcile_days`' partition set), or an asset
    backfill whose target is `asset_days` (asset name: first and last day), with `status` one
    of Dagster's backfill statuses (REQUESTED, COMPLETED_SUCCESS, CANCELED...)."""
    body: dict[str, object] = {
        "__class__": "PartitionBackfill",
        "backfill_id": backfill_id,
        "status": {"__enum__": f"BulkActionStatus.{status}"},
        "from_failure": False,
        "tags": {},
        "backfill_timestamp": time.time(),
    }
    if partition_names is not None:
        body["partition_names"] = [day.isoformat() for day in partition_names]
    if asset_days is not None:
        empty = asset_subset({})
        body["asset_backfill_data"] = {
            "__class__": "AssetBackfillData",
            "backfill_start_time": {
                "__class__": "TimestampWithTimezone",
                "timestamp": time.time(),
                "timezone": "UTC",
            },
            "failed_and_downstream_subset": empty,
            "latest_storage_id": None,
            "materialized_subset": empty,
            "requested_runs_for_target_roots": False,
            "requested_subset": empty,
            "target_subset": asset_subset(asset_days),
        }
    # Typed Any: the class it deserializes to is private to Dagster.
    backfill: Any = dg.deserialize_value(json.dumps(body))
    instance.add_backfill(backfill)
