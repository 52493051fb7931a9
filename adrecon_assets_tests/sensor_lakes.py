"""Helpers for the sensor tests: recent days (the sensors look back from now), a one-click
day in the lake, and materializing days into a test instance."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from adrecon_assets.assets.monitoring import anomaly_metrics
from adrecon_assets.assets.reconciliation import fraud_flags, joined_clicks, reconciled_statistics
from adrecon_assets.assets.staging import raw_clicks, raw_emissions
from adrecon_assets.definitions import build_definitions, build_resources
from adrecon_assets.lake import Lake
from adrecon_assets.rules import Topic
from adrecon_assets.settings import load_settings
from adrecon_assets.warehouse import RAW_DATASET
from adrecon_assets_tests.lakes import click, emission, write_topic

if TYPE_CHECKING:
    from adrecon_assets_tests.s3_server import LakeMirror

# The bucket mirroring the local test lake, while a test runs on the S3 lake kind (conftest's
# `lake_kind`).
MIRRORS: list[LakeMirror] = []


def sync_lake() -> None:
    """Make the lake the sensors and runs read (ADRECON_LAKE_ROOT) equal to the local test lake."""
    for mirror in MIRRORS:
        mirror.sync()


# The contract's six daily assets; reporting assets downstream are left out to keep tests fast
# (never materialized, so the sensors never ask to rerun them either).
DAY_ASSETS = [
    raw_clicks,
    raw_emissions,
    joined_clicks,
    fraud_flags,
    reconciled_statistics,
    anomaly_metrics,
]


def days_ago(count: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=count)


def write_day(lake: Path, day: date, closed: bool = True) -> None:
    """One emission of offer o1 on `top` at 10:00 and its click 5 s later."""
    write_topic(
        lake,
        Topic.EMISSIONS,
        day,
        [emission("e1", "o1", "top", 1000, f"{day}T10:00:00")],
        closed=closed,
    )
    write_topic(
        lake, Topic.CLICKS, day, [click("c1", "e1", "o1", f"{day}T10:00:05")], closed=closed
    )


def age(path: Path, seconds: int) -> None:
    """Make a lake file look `seconds` old, as if it had arrived that long ago."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def materialize_days(instance: dg.DagsterInstance, days: list[date]) -> None:
    """Reconcile `days` in order with the six day assets and the Polars resources."""
    sync_lake()
    for day in days:
        result = dg.materialize(
            DAY_ASSETS,
            partition_key=day.isoformat(),
            instance=instance,
            resources=build_resources(load_settings()),
        )
        assert result.success


def record_materializations(instance: dg.DagsterInstance, lake: Path, days: list[date]) -> None:
    """Record the six assets of `days` as materialized, with the lake fingerprints the raw assets
    would record, without running them (seconds instead of minutes; the metadata key itself is
    covered by the tests that do materialize)."""
    raw_topics = {RAW_DATASET[topic].value: topic for topic in Topic}
    sync_lake()
    lake_read = Lake(load_settings().lake_root) if MIRRORS else Lake(lake)
    for day in days:
        for key in (key for asset in DAY_ASSETS for key in asset.keys):
            topic = raw_topics.get(key.to_user_string())
            metadata = (
                {"lake_fingerprint": lake_read.partition(topic, day).fingerprint} if topic else {}
            )
            instance.report_runless_asset_event(
                dg.AssetMaterialization(key, partition=day.isoformat(), metadata=metadata)
            )


def tick(instance: dg.DagsterInstance, sensor_name: str) -> list[dg.RunRequest]:
    """The runs one tick of a deployed sensor requests (see `tick_result`)."""
    return list(tick_result(instance, sensor_name).run_requests or [])


def tick_result(instance: dg.DagsterInstance, sensor_name: str) -> dg.SensorResult:
    """One tick of a deployed sensor as the daemon runs it, with the definitions and resources
    loaded from the environment as it is now (the `paths` fixture points them at the test's
    lake); evaluate_tick also resolves the requests' asset selections."""
    settings = load_settings()
    defs = build_definitions(settings)
    # A context manager, as the daemon opens it: the serving resource closes its connection at
    # teardown, which Dagster runs only for a context opened with `with`.
    with dg.build_sensor_context(
        instance=instance, definitions=defs, resources=build_resources(settings)
    ) as context:
        data = defs.resolve_sensor_def(sensor_name).evaluate_tick(context)
    return dg.SensorResult(
        run_requests=data.run_requests,
        skip_reason=data.skip_message,
        asset_events=list(data.asset_events),
    )


def close_at(lake: Path, topic: Topic, day: date, when: datetime) -> None:
    """Make the day folder's `_SUCCESS` marker look written at `when`."""
    marker = lake / topic.value / f"date_partition={day}" / "_SUCCESS"
    os.utime(marker, (when.timestamp(), when.timestamp()))
