"""The lake on S3-compatible storage (contract 2.1), against moto's server on 127.0.0.1: a
simulated lake reconciles from a bucket to exactly the rows of the same lake on disk, bad
objects fail naming `s3://bucket/key`, and a lake that is not there (a wrong root, a missing
topic, an unsupported scheme) fails the run without touching the serving store (contract 2)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.definitions import ASSETS
from adrecon_assets.lake import Lake, LakeNotFoundError, S3Lake
from adrecon_assets.partitions import first_day
from adrecon_assets.resources.engine import PolarsEngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.storage import StorageResource, warehouse_path
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import write_topic
from adrecon_assets_tests.s3_server import (
    SECRET_KEY,
    LakeMirror,
    S3Server,
    counting_list_requests,
)
from adrecon_assets_tests.sensor_lakes import days_ago, record_materializations, tick_result
from adrecon_assets_tests.test_bad_input import (
    ONLINE_STATS,
    assert_failed_untouched,
    corrupt_file,
    failure_text,
    good_lake,  # noqa: F401  (fixture)
    missing_column,
    run_day,
    stats_of_day,
)
from adrecon_assets_tests.test_pipeline import materialize_day_cli, serving_rows
from adrecon_simulate import SimulationConfig, simulate

DAYS = 3


def resources(lake_root: str, work: Path) -> dict[str, object]:
    return {
        "storage": StorageResource(lake_root=lake_root, warehouse_root=str(work / "warehouse")),
        "serving_db": ServingResource(database=str(work / "serving.duckdb")),
        "engine": PolarsEngineResource(),
        "check_thresholds": CheckThresholds(),
    }


@pytest.fixture(scope="module")
def reconciled_on_disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three simulated days (duplicates, late files, fraud) from the first partition on, and
    their serving file from the lake on disk: computed once, the expected rows of both S3
    tests (in process and the CLI)."""
    root = tmp_path_factory.mktemp("on_disk")
    lake = root / "lake"
    simulate(
        SimulationConfig(
            lake=lake,
            serving_db=None,
            start=first_day(),
            days=DAYS,
            emissions_per_day=3_000,
            seed=14,
            files_per_day=3,
        )
    )
    for offset in range(DAYS):
        day = first_day() + timedelta(days=offset)
        result = dg.materialize(
            ASSETS, partition_key=day.isoformat(), resources=resources(str(lake), root / "disk")
        )
        assert result.success, day
    return lake, root / "disk" / "serving.duckdb"


@pytest.mark.slow  # 3 runs of every asset: ~8 s on an idle machine, more when shared
def test_s3_lake_reconciles_to_the_rows_of_the_same_lake_on_disk(
    s3_env: S3Server, reconciled_on_disk: tuple[Path, Path], tmp_path: Path
) -> None:
    simulated_lake, on_disk_db = reconciled_on_disk
    mirror = LakeMirror(s3_env, simulated_lake, s3_env.new_bucket())
    mirror.sync()
    days = [first_day() + timedelta(days=offset) for offset in range(DAYS)]
    for day in days:
        result = dg.materialize(
            ASSETS, partition_key=day.isoformat(), resources=resources(mirror.url, tmp_path / "s3")
        )
        assert result.success, day
    for day in days:
        on_disk = serving_rows(on_disk_db, day)
        assert on_disk != [], day
        assert serving_rows(tmp_path / "s3" / "serving.duckdb", day) == on_disk, day


@pytest.mark.slow
def test_cli_materializes_a_day_from_s3(
    s3_env: S3Server, reconciled_on_disk: tuple[Path, Path], tmp_path: Path
) -> None:
    simulated_lake, on_disk_db = reconciled_on_disk
    mirror = LakeMirror(s3_env, simulated_lake, s3_env.new_bucket())
    mirror.sync()
    day = first_day() + timedelta(days=1)
    (tmp_path / "s3" / "home").mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "s3" / "home"),
        "ADRECON_LAKE_ROOT": mirror.url,
        "ADRECON_WAREHOUSE": str(tmp_path / "s3" / "warehouse"),
        "ADRECON_SERVING_DB": str(tmp_path / "s3" / "serving.duckdb"),
        "ADRECON_ENGINE": "polars",
    }
    materialize_day_cli(day, env, tmp_path)
    # The expected rows: the same day from the lake on disk, in process (computed once above).
    on_disk = serving_rows(on_disk_db, day)
    assert on_disk != []
    assert serving_rows(tmp_path / "s3" / "serving.duckdb", day) == on_disk


@pytest.mark.parametrize("fault", [corrupt_file, missing_column])
def test_bad_object_fails_the_run_naming_its_key(
    s3_env: S3Server,
    good_lake: Paths,  # noqa: F811  (the fixture imported above)
    fault: Callable[[Paths], str],
) -> None:
    expected_local = fault(good_lake)
    mirror = LakeMirror(s3_env, good_lake.lake, s3_env.new_bucket())
    mirror.sync()
    result = run_day(resources(mirror.url, good_lake.serving_db.parent))
    assert_failed_untouched(result, good_lake)
    # e.g. "s3://lake-…/lake/clicks/date_partition=2026-01-02/late-1.parquet: missing column 'ip'"
    expected = expected_local.replace(str(good_lake.lake), mirror.url)
    assert expected.startswith("s3://")
    assert expected in failure_text(result)


def wrong_root(paths: Paths, server: S3Server) -> tuple[str, str]:
    return str(paths.lake.parent / "lake-typo"), f"lake root {paths.lake.parent / 'lake-typo'}"


def missing_topic(paths: Paths, server: S3Server) -> tuple[str, str]:
    (paths.lake / "clicks").rename(paths.lake.parent / "clicks-elsewhere")
    return str(paths.lake), f"lake topic folder {paths.lake / 'clicks'} does not exist"


def unsupported_scheme(paths: Paths, server: S3Server) -> tuple[str, str]:
    return "gs://lake/events", "lake root 'gs://lake/events' has an unsupported scheme"


def s3_missing_bucket(paths: Paths, server: S3Server) -> tuple[str, str]:
    return "s3://no-such-bucket/events", "s3://no-such-bucket/events"


def s3_missing_topic(paths: Paths, server: S3Server) -> tuple[str, str]:
    mirror = LakeMirror(server, paths.lake, server.new_bucket())
    (paths.lake / "clicks").rename(paths.lake.parent / "clicks-elsewhere")
    mirror.sync()
    return mirror.url, f"lake topic folder {mirror.url}/clicks does not exist"


@pytest.mark.parametrize(
    "misconfiguration",
    [wrong_root, missing_topic, unsupported_scheme, s3_missing_bucket, s3_missing_topic],
)
def test_lake_that_is_not_there_fails_the_run_naming_it(
    s3_env: S3Server,
    good_lake: Paths,  # noqa: F811  (the fixture imported above)
    misconfiguration: Callable[[Paths, S3Server], tuple[str, str]],
) -> None:
    root, named = misconfiguration(good_lake, s3_env)
    result = run_day(resources(root, good_lake.serving_db.parent))
    assert_failed_untouched(result, good_lake)
    assert named in failure_text(result)
    assert SECRET_KEY not in failure_text(result)
    assert stats_of_day(good_lake.serving_db) == ONLINE_STATS


def test_missing_day_under_an_existing_s3_topic_is_an_empty_day(
    s3_env: S3Server,
    good_lake: Paths,  # noqa: F811  (the fixture imported above)
) -> None:
    mirror = LakeMirror(s3_env, good_lake.lake, s3_env.new_bucket())
    mirror.sync()
    lake = Lake(mirror.url)
    assert isinstance(lake, S3Lake)
    other_day = first_day() + timedelta(days=40)
    partition = lake.partition(Topic.CLICKS, other_day)
    assert (partition.files, partition.closed, partition.exists) == ((), False, False)
    with pytest.raises(LakeNotFoundError, match="no-such"):
        Lake(f"s3://{mirror.bucket}/no-such").partition(Topic.CLICKS, other_day)


def test_warehouse_on_object_storage_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ADRECON_WAREHOUSE='s3://bucket/warehouse'"):
        warehouse_path("s3://bucket/warehouse")
    assert warehouse_path("/mnt/shared/warehouse") == "/mnt/shared/warehouse"


def test_a_sensor_tick_lists_each_topic_once(
    s3_env: S3Server, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing cost is bounded: one LIST per topic per tick (a page holds 1,000 keys), not one
    per day or per file, on a lake of 3 days x 3 files in a 14-day window."""
    days = [days_ago(offset) for offset in (3, 2, 1)]
    for day in days:
        for name in ("a", "b", "c"):
            write_topic(paths.lake, Topic.EMISSIONS, day, [], name=name)
            write_topic(paths.lake, Topic.CLICKS, day, [], name=name)
    mirror = LakeMirror(s3_env, paths.lake, s3_env.new_bucket())
    mirror.sync()
    monkeypatch.setenv("ADRECON_LAKE_ROOT", mirror.url)
    with dg.instance_for_test() as instance:
        record_materializations(instance, paths.lake, days)
        for sensor_name in ("late_data_sensor", "lake_readiness_sensor"):
            with counting_list_requests() as lists:
                tick_result(instance, sensor_name)
            assert lists.count == len(Topic), sensor_name
