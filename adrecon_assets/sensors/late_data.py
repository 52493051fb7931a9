"""`late_data_sensor` (DATA_CONTRACT.md section 5): rerun the days whose lake files changed
after they were last materialized, and what depends on them, once per change.

The truth is the `lake_fingerprint` that `raw_clicks`/`raw_emissions` recorded when they last
materialized a day, compared with the lake folder now. A late emission of D also changes D+1
(joined_clicks D+1 reads raw_emissions D) and the anomaly windows of the following days, so one
tick's changes become one run per affected day, requested oldest first and tagged with one
batch id: dagster.yaml lets one run per batch run at a time and the queue is first in, first
out, so D runs before D+1. (An asset backfill would order them by itself, but a sensor can only
request one through Dagster's private AssetGraphSubset.) Each change is tagged
`adrecon/late-<topic>-<day>=<fingerprint>` and a change whose tag exists on any run is never
requested again: the run-key rule (dedupe forever), kept by the instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from adrecon_assets.jobs import NOT_IN_RUNS
from adrecon_assets.lake import Lake, LakeListing, LakePartition
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import Topic
from adrecon_assets.run_tags import (
    LATE_DATA_BATCH_TAG,
    LATE_DATA_TRIGGER,
    PARTITION_TAG,
    RETRY_OF_TAG,
    TRIGGER_TAG,
)
from adrecon_assets.sensors.busy_days import busy_days
from adrecon_assets.sensors.instance_records import latest_materializations, recent_days
from adrecon_assets.sensors.lake_observations import lake_observations
from adrecon_assets.sensors.retries import failed_in_a_row
from adrecon_assets.warehouse import RAW_DATASET

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
    instance: dg.DagsterInstance, lake: LakeListing, days: Sequence[date]
) -> list[LakeChange]:
    """Every materialized (topic, day) of `days` whose lake folder fingerprint differs from the
    one recorded by its latest materialization. Never-materialized days are not changes."""
    changes = []
    for topic in Topic:
        asset_key = dg.AssetKey(RAW_DATASET[topic].value)
        materialized = latest_materializations(instance, asset_key, days)
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
    repository: dg.RepositoryDefinition,
    roots: Iterable[tuple[dg.AssetKey, date]],
    last_day: date,
) -> set[tuple[dg.AssetKey, date]]:
    """The roots and every asset partition downstream of them up to `last_day` (the newest
    partition that exists), following each dependency's partition mapping."""
    asset_graph = repository.asset_graph
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
    """True if a run was ever requested for this exact change (any status)."""
    filters = dg.RunsFilter(tags={change.tag_key: change.fingerprint})
    return bool(instance.get_run_ids(filters=filters, limit=1))


def rerun_requests(
    changes: Sequence[LakeChange], partitions: set[tuple[dg.AssetKey, date]]
) -> list[dg.RunRequest]:
    """One run per affected day, oldest first, each with the day's affected assets."""
    batch = hashlib.sha256(
        "|".join(sorted(change.run_key for change in changes)).encode()
    ).hexdigest()[:16]
    tags = {
        TRIGGER_TAG: LATE_DATA_TRIGGER,
        LATE_DATA_BATCH_TAG: batch,
        **{change.tag_key: change.fingerprint for change in changes},
    }
    days = sorted({day for _, day in partitions})
    return [
        dg.RunRequest(
            run_key=f"late-{batch}-{day.isoformat()}",
            partition_key=day.isoformat(),
            asset_selection=sorted((key for key, key_day in partitions if key_day == day), key=str),
            tags=tags,
        )
        for day in days
    ]


# Late-data runs read per tick to find failed ones (every attempt of the lookback's days).
LATE_RUNS_READ = 500


def rerun_work(run: dg.DagsterRun) -> tuple[str, frozenset[dg.AssetKey]]:
    """What a rerun did: its day and its assets (its retries do the same)."""
    return run.tags.get(PARTITION_TAG, ""), frozenset(run.asset_selection or ())


def superseded(instance: dg.DagsterInstance, failed: dg.RunRecord) -> bool:
    """A later run of the same day succeeded with at least the failed rerun's assets."""
    day, assets = rerun_work(failed.dagster_run)
    later = instance.get_run_records(
        dg.RunsFilter(
            tags={PARTITION_TAG: day},
            statuses=[dg.DagsterRunStatus.SUCCESS],
            created_after=failed.create_timestamp,
        )
    )
    return any(
        record.dagster_run.asset_selection is None or assets <= record.dagster_run.asset_selection
        for record in later
    )


def failed_rerun_retries(
    instance: dg.DagsterInstance, days: Sequence[date], busy: set[date], now: datetime
) -> list[dg.RunRequest]:
    """The late-data reruns of `days` whose latest attempt failed (a fault that outlived the
    in-run retries, a crash), requested again after the backoff of `rules.day_retry_delay`
    with the same day, assets and tags, unless a later run did the same work."""
    records = instance.get_run_records(
        dg.RunsFilter(
            tags={
                TRIGGER_TAG: LATE_DATA_TRIGGER,
                PARTITION_TAG: [day.isoformat() for day in days],
            }
        ),
        limit=LATE_RUNS_READ,
    )
    attempts: dict[tuple[str, frozenset[dg.AssetKey]], list[dg.RunRecord]] = {}
    for record in records:  # newest first
        attempts.setdefault(rerun_work(record.dagster_run), []).append(record)
    requests = []
    for (day, assets), history in sorted(attempts.items(), key=lambda item: item[0][0]):
        failed = failed_in_a_row(history)
        if date.fromisoformat(day) in busy or not history[0].dagster_run.is_finished:
            continue
        if failed.failed == 0 or not failed.due(now) or superseded(instance, history[0]):
            continue
        run = history[0].dagster_run
        tags = {key: value for key, value in run.tags.items() if key.startswith("adrecon/")}
        requests.append(
            dg.RunRequest(
                run_key=f"late-{day}-after-{run.run_id}",
                partition_key=day,
                asset_selection=sorted(assets, key=str),
                tags={**tags, RETRY_OF_TAG: run.run_id},
            )
        )
    return requests


def evaluate_late_data(
    context: dg.SensorEvaluationContext,
    lake: Lake,
    now: datetime,
    automation: AutomationSettings,
) -> dg.SensorResult | dg.SkipReason:
    """One tick: record the lake folders that changed as observations of the lake's source
    assets, retry failed reruns whose backoff is over, then find changes since the raw assets'
    materializations, drop unsettled, in-flight and already requested ones, and rerun the rest
    and their downstream partitions, one run per day."""
    instance = context.instance
    days = recent_days(automation.late_data_lookback_days, now)
    quiet_seconds = automation.late_data_quiet_seconds
    if not days:
        return dg.SkipReason("no partitions yet")
    listed = lake.snapshot(days)  # one listing per topic per tick, for both uses below
    observations = lake_observations(instance, listed, days)
    busy = busy_days(instance, days, now)
    retries = failed_rerun_retries(instance, days, busy, now)
    for retry in retries:
        context.log.warning(
            f"late data: retrying the failed rerun {retry.tags[RETRY_OF_TAG]} of "
            f"{retry.partition_key}"
        )
    changes = find_lake_changes(instance, listed, days)
    if not changes:
        return skip(f"no lake changes in {len(days)} days", observations, retries)
    now_ns = int(now.timestamp() * 1_000_000_000)
    due, waiting = [], []
    for change in changes:
        if not is_settled(change, now_ns, quiet_seconds) or change.day in busy:
            waiting.append(change.run_key)
        elif not already_requested(instance, change):
            due.append(change)
    if not due:
        waiting_text = ", ".join(waiting) or "-"
        return skip(f"changes waiting or already requested: {waiting_text}", observations, retries)
    assert context.repository_def is not None, "the sensor follows its code location's graph"
    roots = {(change.asset_key, change.day) for change in due}
    downstream = affected_partitions(context.repository_def, roots, days[-1]) - roots
    partitions = roots | previously_materialized(instance, downstream)
    context.log.info(
        f"late data: {', '.join(change.run_key for change in due)} -> rerun "
        f"{len(partitions)} asset partitions"
    )
    return dg.SensorResult(
        run_requests=[*retries, *rerun_requests(due, partitions)], asset_events=observations
    )


def skip(
    reason: str, observations: list[dg.AssetObservation], retries: Sequence[dg.RunRequest] = ()
) -> dg.SensorResult:
    """No new rerun this tick (retries of failed ones aside); the lake's changed folders are
    still recorded as observations."""
    if retries:
        return dg.SensorResult(run_requests=list(retries), asset_events=observations)
    return dg.SensorResult(skip_reason=reason, asset_events=observations)


def build_late_data_sensor(interval_seconds: int) -> dg.SensorDefinition:
    """The sensor, ticking at most every `interval_seconds` (ADRECON_SENSOR_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="late_data_sensor",
        # What a rerun may target.
        asset_selection=dg.AssetSelection.assets(
            *(dataset.value for dataset in RAW_DATASET.values())
        ).downstream()
        - NOT_IN_RUNS,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reruns the days whose lake files changed after they were materialized (late or "
            "rewritten files), with D+1 for emissions and the anomaly windows and reports that "
            "follow; once per change, after ADRECON_LATE_DATA_QUIET_SECONDS without new files."
        ),
    )
    def late_data_sensor(
        context: dg.SensorEvaluationContext,
        storage: StorageResource,
        automation: AutomationSettings,
    ) -> dg.SensorResult | dg.SkipReason:
        return evaluate_late_data(context, storage.lake, datetime.now(UTC), automation)

    return late_data_sensor
