"""Which closed lake days are not reconciled, and when their lake closed: the input of the
missing-days page (`conditions.missing_day_alerts`).

Kept small on purpose: `day_accounting.unreconciled_closed_days` (issue 20) replaces it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.lake import SUCCESS_MARKER, Lake, LakePartition
from adrecon_assets.rules import Topic
from adrecon_assets.sensors.instance_records import latest_materializations
from adrecon_assets.sensors.readiness import is_closed


def closed_at(partition: LakePartition) -> datetime:
    """When the persister wrote the day's `_SUCCESS` (on a local lake), else its newest file."""
    marker = os.path.join(partition.folder, SUCCESS_MARKER)
    try:
        return datetime.fromtimestamp(os.stat(marker).st_mtime, UTC)
    except OSError:
        return datetime.fromtimestamp(partition.newest_mtime_ns / 1e9, UTC)


def closed_unreconciled_days(
    instance: dg.DagsterInstance, lake: Lake, days: Sequence[date]
) -> list[tuple[date, datetime]]:
    """(day, lake closed at) of each closed day among `days` without reconciled_statistics."""
    reconciled = set(latest_materializations(instance, RECONCILED_STATISTICS_KEY, days))
    snapshot = lake.snapshot(days)
    return [
        (day, max(closed_at(snapshot.partition(topic, day)) for topic in Topic))
        for day in days
        if day not in reconciled and is_closed(snapshot, day)
    ]
