"""Observations of the lake's source assets: each day's folder fingerprint as its data version.

Recorded by late_data_sensor (no run needed: a sensor may report asset events) only when a
folder's fingerprint differs from its latest observation, so the event log grows with the
lake's changes, not with the ticks. Only the Lake interface lists files and fingerprints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import dagster as dg

from adrecon_assets.assets.staging import LAKE_SOURCE_KEYS
from adrecon_assets.lake import LakeListing, LakePartition
from adrecon_assets.rules import Topic
from adrecon_assets.run_tags import DATA_VERSION_TAG
from adrecon_assets.sensors.instance_records import latest_observations


def observed_state(record: dg.EventLogRecord) -> tuple[str | None, bool | None]:
    """The data version and `closed` flag an observation recorded."""
    observation = record.asset_observation
    if observation is None:
        return None, None
    closed = observation.metadata.get("closed")
    return observation.tags.get(DATA_VERSION_TAG), bool(closed.value) if closed else None


def observation(partition: LakePartition) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=LAKE_SOURCE_KEYS[partition.topic],
        partition=partition.day.isoformat(),
        tags={DATA_VERSION_TAG: partition.fingerprint},
        metadata={
            "closed": partition.closed,
            "files": len(partition.files),
            "bytes": partition.total_bytes,
        },
    )


def lake_observations(
    instance: dg.DagsterInstance, lake: LakeListing, days: Sequence[date]
) -> list[dg.AssetObservation]:
    """An observation for each (topic, day) of `days` whose folder holds files or `_SUCCESS`
    and whose fingerprint or `_SUCCESS` differs from its latest observation."""
    events = []
    for topic in Topic:
        observed = latest_observations(instance, LAKE_SOURCE_KEYS[topic], days)
        for day, partition in sorted(lake.partitions(topic, days).items()):
            if not (partition.files or partition.closed):
                continue
            record = observed.get(day)
            now = (partition.fingerprint, partition.closed)
            if record is None or observed_state(record) != now:
                events.append(observation(partition))
    return events
