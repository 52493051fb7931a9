"""late_data_sensor against a test instance: three reconciled days, then changes in the lake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pytest

from adrecon_assets.lake import Lake
from adrecon_assets.rules import Topic
from adrecon_assets.run_tags import LATE_DATA_BATCH_TAG
from adrecon_assets.settings import load_settings
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.instance_runs import add_run
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.sensor_lakes import (
    age,
    days_ago,
    materialize_days,
    record_materializations,
    sync_lake,
    tick,
    tick_result,
    write_day,
)

# Every test runs on a local lake and on the same lake in an S3 bucket (contract 2.1).
pytestmark = pytest.mark.usefixtures("lake_kind")

D1, D2, D3 = days_ago(3), days_ago(2), days_ago(1)
HOUR = 3600


@pytest.fixture
def instance(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """D1..D3 in the lake (an hour old) and recorded as materialized; today is neither."""
    monkeypatch.setenv("ADRECON_LATE_DATA_QUIET_SECONDS", "600")
    write_aged_days(paths, [D1, D2, D3])
    with dg.instance_for_test() as test_instance:
        record_materializations(test_instance, paths.lake, [D1, D2, D3])
        yield test_instance


def write_aged_days(paths: Paths, days: list[date]) -> None:
    for day in days:
        write_day(paths.lake, day)
    for parquet in paths.lake.rglob("*.parquet"):
        age(parquet, HOUR)


def evaluate(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """One tick as the daemon runs it (evaluate_tick also resolves the asset selections)."""
    sync_lake()
    return tick(instance, "late_data_sensor")


def requested(requests: list[dg.RunRequest]) -> set[tuple[str, date]]:
    """The asset partitions of one tick's runs, after checking they are one batch: one run
    per day, oldest first, all with the same batch tag and distinct run keys."""
    assert requests
    days = [date.fromisoformat(str(request.partition_key)) for request in requests]
    assert days == sorted(set(days))
    assert len({request.tags[LATE_DATA_BATCH_TAG] for request in requests}) == 1
    assert len({request.run_key for request in requests}) == len(requests)
    return {
        (key.to_user_string(), day)
        for request, day in zip(requests, days, strict=True)
        for key in request.asset_selection or []
    }


def late_click_file(paths: Paths, day: date, seconds_old: int = HOUR) -> None:
    late = [click("c2", "e1", "o1", f"{day}T11:00:00", user_id="u2")]
    age(write_topic(paths.lake, Topic.CLICKS, day, late, name="late-1"), seconds_old)


def chain(day: date) -> set[tuple[str, date]]:
    return {
        ("joined_clicks", day),
        ("fraud_flags", day),
        ("reconciled_statistics", day),
        ("anomaly_metrics", day),
    }


def test_unchanged_lake_requests_nothing(instance: dg.DagsterInstance) -> None:
    assert evaluate(instance) == []


def test_new_clicks_file_reruns_the_day_and_the_anomaly_windows_that_follow(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    late_click_file(paths, D2)
    # anomaly_metrics of D3 reads reconciled D2 (7-day window); today was never materialized.
    assert requested(evaluate(instance)) == {("raw_clicks", D2), ("anomaly_metrics", D3)} | chain(
        D2
    )


def test_new_emissions_file_reruns_the_day_and_the_next(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    late = [emission("e9", "o9", "side", 500, f"{D1}T23:00:00")]
    age(write_topic(paths.lake, Topic.EMISSIONS, D1, late, name="late-1"), HOUR)
    # emission_counts of D1 and D2 deduplicate emissions over (D-1, D): both read D1's.
    counts = {("emission_counts", D1), ("emission_counts", D2)}
    expected = {("raw_emissions", D1), ("anomaly_metrics", D3)} | chain(D1) | chain(D2) | counts
    assert requested(evaluate(instance)) == expected


def test_rewritten_file_counts_as_a_change(instance: dg.DagsterInstance, paths: Paths) -> None:
    rows = [click("c1", "e1", "o1", f"{D3}T10:00:09")]
    age(write_topic(paths.lake, Topic.CLICKS, D3, rows, name="part-0"), 2 * HOUR)
    assert requested(evaluate(instance)) == {("raw_clicks", D3)} | chain(D3)


def test_fresh_files_wait_for_the_quiet_period(instance: dg.DagsterInstance, paths: Paths) -> None:
    late_click_file(paths, D2, seconds_old=599)
    assert evaluate(instance) == []
    late_click_file(paths, D2, seconds_old=601)
    assert ("raw_clicks", D2) in requested(evaluate(instance))


def test_rerun_materialized_leaves_nothing_to_request(paths: Paths) -> None:
    """With real runs: the assets record the fingerprint the sensor compares with."""
    write_aged_days(paths, [D1, D2])
    with dg.instance_for_test() as instance:
        materialize_days(instance, [D1, D2])
        assert evaluate(instance) == []
        late_click_file(paths, D2)
        assert requested(evaluate(instance)) == {("raw_clicks", D2)} | chain(D2)
        materialize_days(instance, [D2])
        assert evaluate(instance) == []


def test_change_already_requested_is_not_requested_again(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    late_click_file(paths, D2)
    requests = evaluate(instance)
    assert requested(requests) == {("raw_clicks", D2), ("anomaly_metrics", D3)} | chain(D2)
    # What the sensor daemon does with the requests: runs that outlive any cursor. They ended
    # (failed, say), so no day is busy: only the tags stop a second request of the change.
    for request in requests:
        add_run(
            instance,
            job_name="reconcile_days",
            tags=request.tags,
            status=dg.DagsterRunStatus.FAILURE,
        )
    assert evaluate(instance) == []
    # A further file is a new change: it is requested again.
    late = [click("c3", "e1", "o1", f"{D2}T12:00:00", user_id="u3")]
    age(write_topic(paths.lake, Topic.CLICKS, D2, late, name="late-2"), HOUR)
    assert ("raw_clicks", D2) in requested(evaluate(instance))


def lake_observations(instance: dg.DagsterInstance) -> list[tuple[str, date, str]]:
    """(source asset, day, data version) the tick observed, recorded as the daemon would."""
    events = tick_result(instance, "late_data_sensor").asset_events
    for event in events:
        instance.report_runless_asset_event(event)
    return sorted(
        (
            event.asset_key.to_user_string(),
            date.fromisoformat(str(event.partition)),
            event.tags["dagster/data_version"],
        )
        for event in events
        if isinstance(event, dg.AssetObservation)
    )


def test_lake_folders_are_observed_with_their_fingerprint_once_per_change(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    sync_lake()
    lake = Lake(load_settings().lake_root)  # the local lake or its S3 mirror
    fingerprint = {
        (f"lake_{topic.value}", day): lake.partition(topic, day).fingerprint
        for topic in Topic
        for day in (D1, D2, D3)
    }
    assert lake_observations(instance) == sorted(
        (*key, value) for key, value in fingerprint.items()
    )
    assert lake_observations(instance) == []  # nothing changed: nothing recorded
    late_click_file(paths, D2)
    sync_lake()
    assert lake_observations(instance) == [
        ("lake_clicks", D2, lake.partition(Topic.CLICKS, D2).fingerprint)
    ]
    assert lake.partition(Topic.CLICKS, D2).fingerprint != fingerprint[("lake_clicks", D2)]
