"""Which days a sensor must not launch a run of: a queued or running run covers them, or a
requested backfill targets them.

An operator's backfill owns its days before any of its runs exists: Dagster's backfill daemon
creates them only at its next iteration (it sleeps 30 s between iterations), and an asset
backfill of several assets creates them one after the other. Without counting the backfill,
`lake_readiness_sensor` launched its own catch-up run of the same days meanwhile (two writers of
one day, double work). A requested backfill's day is released when the backfill's newest run
covering it ended without success and nothing will run it again for the backfill: no retry of
Dagster's is pending and `crash_relaunch_sensor` will not relaunch it (its rules, reused here).
Then the readiness sensor's own retries take the day over, so a backfill that stays requested
never hides a day whose run failed.

The days a backfill targets: its partition names (a job backfill, e.g. of `reconcile_days`),
or every partition of its target asset subset (an asset backfill; launched from the global
asset graph, that subset also holds D+1 and the anomaly windows after the chosen days).

Cost per tick: one query of the requested backfills (an indexed status column; none most of
the time), and only while a requested backfill targets one of the days, one query of its runs.
`benchmarks/busy_days_tick.py` measures it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import cache, partial
from typing import Any, Protocol

import dagster as dg

from adrecon_assets.partitions import parse_day
from adrecon_assets.run_tags import BACKFILL_TAG
from adrecon_assets.sensors.crash_relaunch import (
    LOOKBACK,
    PENDING,
    skip_reason,
    steps_lost_storage,
)
from adrecon_assets.sensors.instance_records import days_of_tags, live_run_days

# The value of Dagster's BulkActionStatus of a backfill still being worked on.
REQUESTED = "REQUESTED"
# Runs of the requested backfills read per tick, newest first (a one-run-per-day backfill of a
# year and its retries).
BACKFILL_RUNS_READ = 1000


@cache
def requested_status() -> Any:
    """Dagster's `BulkActionStatus.REQUESTED`, the filter `get_backfills` takes. Dagster 1.13
    exports neither the enum nor `BulkActionsFilter`, so it is named as Dagster stores it, read
    with the public `deserialize_value` (the instance's run storage registers the enum; typed
    Any since its class is private). Reading every backfill instead, to compare status names,
    deserializes each stored body: about 2 ms each for an asset backfill of a year."""
    return dg.deserialize_value(json.dumps({"__enum__": f"BulkActionStatus.{REQUESTED}"}))


def busy_days(instance: dg.DagsterInstance, days: Sequence[date], now: datetime) -> set[date]:
    """Days among `days` with a queued or running run, or held by a requested backfill."""
    return live_run_days(instance, days) | backfill_days(instance, days, now)


def backfill_days(instance: dg.DagsterInstance, days: Sequence[date], now: datetime) -> set[date]:
    """Days among `days` that a requested backfill targets and has not given up (module
    docstring)."""
    wanted = set(days)
    targets = {
        backfill.backfill_id: target_days(backfill) & wanted
        for backfill in instance.get_backfills(status=requested_status())
    }
    targets = {backfill_id: held for backfill_id, held in targets.items() if held}
    if not targets:
        return set()
    records = instance.get_run_records(
        dg.RunsFilter(tags={BACKFILL_TAG: sorted(targets)}), limit=BACKFILL_RUNS_READ
    )
    runs_by_backfill: dict[str, list[dg.RunRecord]] = {}
    for record in records:
        runs_by_backfill.setdefault(record.dagster_run.tags[BACKFILL_TAG], []).append(record)
    held_days: set[date] = set()
    for backfill_id, targeted in targets.items():
        released = released_days(instance, runs_by_backfill.get(backfill_id, []), now)
        held_days |= targeted - released
    return held_days


class PartitionsSubset(Protocol):
    def get_partition_keys(self) -> Iterable[str]: ...


class AssetGraphSubset(Protocol):
    @property
    def partitions_subsets_by_asset_key(self) -> Mapping[dg.AssetKey, PartitionsSubset]: ...


class AssetBackfillData(Protocol):
    @property
    def target_subset(self) -> AssetGraphSubset: ...


class Backfill(Protocol):
    """What is read of a backfill (Dagster's PartitionBackfill, a private class): the partition
    names of a job backfill, the target asset subset of an asset backfill."""

    @property
    def partition_names(self) -> Sequence[str] | None: ...

    @property
    def asset_backfill_data(self) -> AssetBackfillData | None: ...


def target_days(backfill: Backfill) -> set[date]:
    """The days a backfill targets (job backfill: its partitions; asset backfill: every
    partition of every asset of its target subset)."""
    if backfill.partition_names is not None:
        return {parse_day(key) for key in backfill.partition_names}
    if backfill.asset_backfill_data is None:
        return set()
    subsets = backfill.asset_backfill_data.target_subset.partitions_subsets_by_asset_key.values()
    return {parse_day(key) for subset in subsets for key in subset.get_partition_keys()}


def released_days(
    instance: dg.DagsterInstance, records: Sequence[dg.RunRecord], now: datetime
) -> set[date]:
    """The days whose newest run of the backfill (`records`, newest first) ended without
    success and will be run again by neither Dagster's retry nor `crash_relaunch_sensor`."""
    newest: dict[date, dg.RunRecord] = {}
    for record in records:
        for day in days_of_tags(dict(record.dagster_run.tags)):
            newest.setdefault(day, record)
    return {day for day, record in newest.items() if not run_again(instance, record, now)}


def run_again(instance: dg.DagsterInstance, record: dg.RunRecord, now: datetime) -> bool:
    """Whether the backfill's work of this run is still to be done by Dagster: the run is not
    finished or succeeded, or it failed and its retry or relaunch is coming."""
    run = record.dagster_run
    if not run.is_finished or run.status == dg.DagsterRunStatus.SUCCESS:
        return True
    if run.status != dg.DagsterRunStatus.FAILURE or record.update_timestamp < now - LOOKBACK:
        return False  # canceled, or older than crash_relaunch_sensor looks
    reason = skip_reason(
        run.tags,
        instance.run_retries_max_retries,
        REQUESTED,
        partial(steps_lost_storage, instance, run.run_id),
    )
    return reason is None or reason == PENDING
