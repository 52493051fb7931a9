"""lake_readiness_sensor: a day is launched once the lake closed it, oldest first, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pytest

from adrecon_assets.rules import Topic
from adrecon_assets.run_tags import RUN_KEY_TAG
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.instance_runs import add_run
from adrecon_assets_tests.lakes import emission, write_topic
from adrecon_assets_tests.sensor_lakes import (
    days_ago,
    record_materializations,
    sync_lake,
    tick,
    write_day,
)

# Every test runs on a local lake and on the same lake in an S3 bucket (contract 2.1).
pytestmark = pytest.mark.usefixtures("lake_kind")

D0, D1, D2, D3 = days_ago(4), days_ago(3), days_ago(2), days_ago(1)


@pytest.fixture
def instance(paths: Paths) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def launched(instance: dg.DagsterInstance) -> list[tuple[str | None, str | None]]:
    """One tick as the daemon runs it: (run key, partition) of each run requested."""
    sync_lake()
    requests = tick(instance, "lake_readiness_sensor")
    return [(request.run_key, request.partition_key) for request in requests]


def request_for(day: date) -> tuple[str, str]:
    return (f"ready-{day}", day.isoformat())


def test_closed_days_are_launched_oldest_first_after_their_previous_day(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    # The day before D0 has no emissions folder at all: an empty day, which holds nothing back.
    write_day(paths.lake, D0)
    write_day(paths.lake, D1, closed=False)
    assert launched(instance) == [request_for(D0)]
    record_materializations(instance, paths.lake, [D0])
    write_day(paths.lake, D1)
    assert launched(instance) == [request_for(D1)]
    record_materializations(instance, paths.lake, [D1])
    assert launched(instance) == []


def test_consecutive_due_days_are_one_ranged_catch_up_run(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    for day in (D0, D1, D2):
        write_day(paths.lake, day)
    sync_lake()
    requests = tick(instance, "lake_readiness_sensor")
    assert [(request.run_key, request.partition_key) for request in requests] == [
        (f"ready-{D0}..{D2}", None)
    ]
    assert requests[0].tags["dagster/asset_partition_range_start"] == D0.isoformat()
    assert requests[0].tags["dagster/asset_partition_range_end"] == D2.isoformat()
    # Launched once: the next tick asks nothing more while the run has not reconciled them.
    add_run(instance, job_name="reconcile_days", tags=dict(requests[0].tags))
    assert launched(instance) == []


def test_day_waits_for_emissions_of_the_previous_day(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    write_day(paths.lake, D3)
    rows = [emission("e0", "o1", "top", 1000, f"{D2}T23:00:00")]
    write_topic(paths.lake, Topic.EMISSIONS, D2, rows, closed=False)
    assert launched(instance) == []
    (paths.lake / "emissions" / f"date_partition={D2}" / "_SUCCESS").touch()
    assert launched(instance) == [request_for(D3)]


def test_open_day_is_not_launched(instance: dg.DagsterInstance, paths: Paths) -> None:
    write_day(paths.lake, D2)
    write_day(paths.lake, D3, closed=False)
    assert launched(instance) == [request_for(D2)]


def test_failed_previous_day_does_not_hold_back_the_next(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    write_day(paths.lake, D0, closed=False)  # keeps D1 itself from being requested again
    for day in (D1, D2):
        write_day(paths.lake, day)
    add_run(
        instance,
        job_name="__ASSET_JOB",
        tags={RUN_KEY_TAG: f"ready-{D1}"},
        status=dg.DagsterRunStatus.FAILURE,
    )
    assert launched(instance) == [request_for(D2)]


def test_running_previous_day_holds_back_the_next(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    for day in (D1, D2):
        write_day(paths.lake, day)
    add_run(
        instance,
        job_name="__ASSET_JOB",
        tags={RUN_KEY_TAG: f"ready-{D1}", "dagster/partition": D1.isoformat()},
        status=dg.DagsterRunStatus.STARTED,
    )
    assert launched(instance) == []
