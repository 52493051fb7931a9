"""`late_data_sensor` (DATA_CONTRACT.md section 5): rerun the days whose lake files changed
after they were last materialized, and what depends on them, once per change.

The truth is the `lake_fingerprint` that `raw_clicks`/`raw_emissions` recorded when they last
materialized a day, compared with the lake folder now. A change is requested as one asset
backfill per tick, because a late emission of D also changes D+1 (joined_clicks D+1 reads
raw_emissions D) and the anomaly windows of the following days: only the backfill daemon
orders runs across partitions by their dependencies. Backfills carry no run key, so each change
is tagged `adrecon/late-<topic>-<day>=<fingerprint>` and a change whose tag exists on any
backfill is never requested again: the run-key rule (dedupe forever), kept by the instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionsFilter

from adrecon_assets import settings
from adrecon_assets.lake import Lake, LakePartition
from adrecon_assets.rules import Topic
from adrecon_assets.sensors.history import latest_materializations, live_run_days, recent_days
from adrecon_assets.warehouse import RAW_DATASET

TRIGGER_TAG = "adrecon/trigger"
FINGERPRINT_METADATA = "lake_fingerprint"


@dataclass(frozen=True)
class LakeChange:
    """A lake folder whose files differ from what its raw asset last materialized."""

    topic: Topic
    day: date
    fingerprint: str
    materialized_fingerprint: str
    newest_mtime_ns: int

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(RAW_DATASET[self.topic].value)

    @property
    def tag_key(self) -> str:
        return f"adrecon/late-{self.topic.value}-{self.day.isoformat()}"

    @property
    def run_key(self) -> str:
        return f"{self.topic.value}:{self.day.isoformat()}:{self.fingerprint}"


def recorded_fingerprint(record: dg.EventLogRecord) -> str | None:
    materialization = record.asset_materialization
    value = materialization.metadata.get(FINGERPRINT_METADATA) if materialization else None
    return str(value.value) if value is not None else None


def find_lake_changes(
    instance: dg.DagsterInstance, lake: Lake, days: Sequence[date]
) -> list[LakeChange]:
    """Every materialized (topic, day) of `days` whose lake folder fingerprint differs from the
    one recorded by its latest materialization. Never-materialized days are not changes."""
    changes = []
    for topic in Topic:
        asset_key = dg.AssetKey(RAW_DATASET[topic].value)
        materialized = latest_materializations(instance, asset_key, days)
        # One listing of the topic per tick (on an object store: one paged LIST of the window).
        partitions = lake.partitions(topic, materialized)
        for day, record in materialized.items():
            partition: LakePartition = partitions[day]
            recorded = recorded_fingerprint(record)
            if recorded is not None and recorded != partition.fingerprint:
                changes.append(
                    LakeChange(
                        topic, day, partition.fingerprint, recorded, partition.newest_mtime_ns
                    )
                )
    return changes


def is_settled(change: LakeChange, now_ns: int, quiet_seconds: int) -> bool:
    """True once the folder's newest file is older than the quiet period, so a stream of late
    files ends in one rerun instead of one per file."""
    return now_ns - change.newest_mtime_ns >= quiet_seconds * 1_000_000_000


def downstream_days(mapping: dg.PartitionMapping | None, day: date) -> list[date]:
    """The child partitions that read parent partition `day` through `mapping`: identity, or a
    time window [child + start_offset, child + end_offset] read backwards."""
    if mapping is None or isinstance(mapping, dg.IdentityPartitionMapping):
        return [day]
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return [
            day + timedelta(days=offset)
            for offset in range(-mapping.end_offset, -mapping.start_offset + 1)
        ]
    raise TypeError(f"late_data_sensor cannot follow a {type(mapping).__name__}")


def affected_partitions(
    asset_graph: BaseAssetGraph,
    roots: Iterable[tuple[dg.AssetKey, date]],
    last_day: date,
) -> set[tuple[dg.AssetKey, date]]:
    """The roots and every asset partition downstream of them up to `last_day` (the newest
    partition that exists), following each dependency's partition mapping."""
    pending = list(roots)
    affected = set(pending)
    while pending:
        parent, day = pending.pop()
        for child in asset_graph.get(parent).child_keys:
            mapping = asset_graph.get(child).partition_mappings.get(parent)
            for child_day in downstream_days(mapping, day):
                if child_day <= last_day and (child, child_day) not in affected:
                    affected.add((child, child_day))
                    pending.append((child, child_day))
    return affected


def previously_materialized(
    instance: dg.DagsterInstance, partitions: set[tuple[dg.AssetKey, date]]
) -> set[tuple[dg.AssetKey, date]]:
    """Only asset partitions that were materialized before: a day never reconciled is the
    readiness sensor's job, and a rerun of it here would fail for lack of its inputs."""
    days_by_key: dict[dg.AssetKey, set[date]] = {}
    for asset_key, day in partitions:
        days_by_key.setdefault(asset_key, set()).add(day)
    kept: set[tuple[dg.AssetKey, date]] = set()
    for asset_key, days in days_by_key.items():
        materialized = latest_materializations(instance, asset_key, days)
        kept.update((asset_key, day) for day in materialized)
    return kept


def already_requested(instance: dg.DagsterInstance, change: LakeChange) -> bool:
    """True if a backfill was ever submitted for this exact change (any status)."""
    filters = BulkActionsFilter(tags={change.tag_key: change.fingerprint})
    return bool(instance.get_backfills(filters=filters, limit=1))


def rerun_request(
    asset_graph: BaseAssetGraph,
    changes: Sequence[LakeChange],
    partitions: set[tuple[dg.AssetKey, date]],
) -> dg.RunRequest:
    subset = AssetGraphSubset.from_asset_partition_set(
        {AssetKeyPartitionKey(asset_key, day.isoformat()) for asset_key, day in partitions},
        asset_graph,
    )
    tags: Mapping[str, str] = {
        TRIGGER_TAG: "late_data",
        **{change.tag_key: change.fingerprint for change in changes},
    }
    return dg.RunRequest.for_asset_graph_subset(subset, tags=dict(tags))


def evaluate_late_data(
    context: dg.SensorEvaluationContext, lake: Lake, now: datetime, quiet_seconds: int
) -> dg.SensorResult | dg.SkipReason:
    """One tick: find changes, drop unsettled, in-flight and already requested ones, and ask
    for one backfill covering the rest and their downstream partitions."""
    instance = context.instance
    days = recent_days(int(settings.setting("ADRECON_LATE_DATA_LOOKBACK_DAYS")), now)
    if not days:
        return dg.SkipReason("no partitions yet")
    changes = find_lake_changes(instance, lake, days)
    if not changes:
        return dg.SkipReason(f"no lake changes in {len(days)} days")
    now_ns = int(now.timestamp() * 1_000_000_000)
    busy_days = live_run_days(instance, days)
    due, waiting = [], []
    for change in changes:
        if not is_settled(change, now_ns, quiet_seconds) or change.day in busy_days:
            waiting.append(change.run_key)
        elif not already_requested(instance, change):
            due.append(change)
    if not due:
        return dg.SkipReason(f"changes waiting or already requested: {', '.join(waiting) or '-'}")
    asset_graph = context.repository_def.asset_graph  # type: ignore[union-attr]
    roots = {(change.asset_key, change.day) for change in due}
    downstream = affected_partitions(asset_graph, roots, days[-1]) - roots
    partitions = roots | previously_materialized(instance, downstream)
    context.log.info(
        f"late data: {', '.join(change.run_key for change in due)} -> rerun "
        f"{len(partitions)} asset partitions"
    )
    return dg.SensorResult(run_requests=[rerun_request(asset_graph, due, partitions)])


@dg.sensor(
    name="late_data_sensor",
    # What a rerun may target (backfill requests must stay inside the sensor's selection).
    asset_selection=dg.AssetSelection.assets(
        *(dataset.value for dataset in RAW_DATASET.values())
    ).downstream(),
    minimum_interval_seconds=int(settings.setting("ADRECON_SENSOR_INTERVAL_SECONDS")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Reruns the days whose lake files changed after they were materialized (late or "
        "rewritten files), with D+1 for emissions and the anomaly windows that follow; once "
        "per change, after ADRECON_LATE_DATA_QUIET_SECONDS without new files."
    ),
)
def late_data_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    return evaluate_late_data(
        context,
        Lake(settings.setting("ADRECON_LAKE_ROOT")),
        datetime.now(UTC),
        int(settings.setting("ADRECON_LATE_DATA_QUIET_SECONDS")),
    )
