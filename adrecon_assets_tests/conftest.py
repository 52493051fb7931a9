"""Shared fixtures: every test gets its own lake, warehouse and serving DB under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.engine import PolarsEngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import Topic
from adrecon_assets.serving import ServingStore
from adrecon_assets.settings import Settings
from adrecon_assets_tests import sensor_lakes
from adrecon_assets_tests.connect_server import spark_connect_server
from adrecon_assets_tests.make_demo import make_demo
from adrecon_assets_tests.postgres import PostgresServer, postgres_server
from adrecon_assets_tests.s3_server import LakeMirror, s3_env, s3_server
from adrecon_assets_tests.serving_logins import logins
from adrecon_assets_tests.spark_jvm import SHORT_LIVED_JVM_OPTIONS
from adrecon_assets_tests.spark_worker import (
    names_spark,
    pytest_xdist_make_scheduler,
    unnamed_spark_tests,
)

# Fixtures of s3_server.py, serving_logins.py, make_demo.py and connect_server.py, shared by the
# whole suite, and spark_worker.py's scheduler for pytest-xdist.
__all__ = [
    "logins",
    "make_demo",
    "pytest_xdist_make_scheduler",
    "s3_env",
    "s3_server",
    "spark_connect_server",
]
# CPU seconds per test when ADRECON_TEST_CPU_LOG is set (docs/developing.md).
pytest_plugins = ["adrecon_assets_tests.cpu_profile"]

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Paths:
    lake: Path
    warehouse: Path
    serving_db: Path


def create_empty_lake(root: Path) -> None:
    """A lake with both topic folders and no day yet: a missing topic folder is an error
    (contract 2), a missing day folder an empty day. Its denylist comes with its first file
    (`lakes.write_topic`) or from the simulator, which keeps an existing one."""
    for topic in Topic:
        (root / topic.value).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    result = Paths(tmp_path / "lake", tmp_path / "warehouse", tmp_path / "serving.duckdb")
    create_empty_lake(result.lake)
    monkeypatch.setenv("ADRECON_LAKE_ROOT", str(result.lake))
    monkeypatch.setenv("ADRECON_WAREHOUSE", str(result.warehouse))
    monkeypatch.setenv("ADRECON_SERVING_DB", str(result.serving_db))
    return result


@pytest.fixture(params=["local", "s3"])
def lake_kind(request: pytest.FixtureRequest, paths: Paths) -> Iterator[str]:
    """Runs a test on the local lake at `paths.lake`, then on the same lake mirrored into a
    bucket of the moto server (ADRECON_LAKE_ROOT=s3://...): tests keep writing local files and
    `sensor_lakes.sync_lake()` uploads them before each read."""
    if request.param == "local":
        yield "local"
        return
    server = request.getfixturevalue("s3_env")
    mirror = LakeMirror(server, paths.lake, server.new_bucket())
    request.getfixturevalue("monkeypatch").setenv("ADRECON_LAKE_ROOT", mirror.url)
    sensor_lakes.MIRRORS.append(mirror)
    try:
        yield "s3"
    finally:
        sensor_lakes.MIRRORS.remove(mirror)


@pytest.fixture
def polars_resources(paths: Paths) -> dict[str, object]:
    """Resources for `dagster.materialize` on the Polars engine, pointed at the temp paths."""
    return polars_resources_for(paths)


def polars_resources_for(paths: Paths) -> dict[str, object]:
    """`polars_resources` for any paths (module-scoped fixtures build theirs with it)."""
    return {
        "storage": StorageResource(lake_root=str(paths.lake), warehouse_root=str(paths.warehouse)),
        "serving_db": ServingResource(database=str(paths.serving_db)),
        "engine": PolarsEngineResource(),
        "check_thresholds": CheckThresholds(),
        "automation": AutomationSettings.from_settings(Settings.from_env({})),
    }


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local Spark session for the whole suite (JVM start-up costs ~10 s); no UI port; the
    JIT settings of a short-lived JVM (spark_jvm.py).
    Imported lazily so that Polars-only test runs never load PySpark."""
    from dagster_pyspark.resources import spark_session_from_config

    from adrecon_assets.engines.spark_session import spark_config

    overrides = {
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": SHORT_LIVED_JVM_OPTIONS,
    }
    session = spark_session_from_config(spark_config("local[2]", "adrecon-tests", False, overrides))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (Debian's binaries, 127.0.0.1)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def serving_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of the session's server for one test."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ServingStore:
    """A fresh serving store of each kind: a DuckDB file, then a PostgreSQL database."""
    if request.param == "postgres":
        url = request.getfixturevalue("serving_url")
        return ServingResource(url=url).get_store()
    return ServingResource(database=str(tmp_path / "serving.duckdb")).get_store()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the Spark session is a `spark` test even if nobody marked it, so
    `make test-fast` (-m "not spark") never starts a JVM.

    Files holding a `slow` or `spark` test run first, each file kept whole and in its order:
    with `--no-loadscope-reorder` (pyproject's addopts) pytest-xdist hands out whole files in
    this order, so the long ones start early and the many quick files fill both workers in at
    the end (its default order, most tests first, started the 2-minute dagster dev test last).
    Among them, the files whose `slow` marker says they take longer (`seconds=`) go first.
    The tests naming Spark go before all of them: on `make test`'s Spark worker (one unit of
    work, spark_worker.py) they are the longest unit."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
    unnamed = unnamed_spark_tests(items)
    if unnamed:
        raise pytest.UsageError(
            "tests using Spark must name it in their id (file, name or parameter) so that "
            f"`make test` runs them on its Spark worker (spark_worker.py): {unnamed}"
        )
    heavy = {
        item.path
        for item in items
        if item.get_closest_marker("slow") or item.get_closest_marker("spark")
    }
    seconds: dict[Path, float] = {}
    for item in items:
        seconds[item.path] = max(seconds.get(item.path, 0.0), expected_seconds(item))
    # Stable: files stay whole; the heavy ones first, the longest of them first.
    items.sort(key=lambda item: (item.path not in heavy, -seconds[item.path]))
    # The Spark tests first, together (one worker's unit, spark_worker.py): the longest unit.
    items.sort(key=lambda item: not names_spark(item.nodeid))
    run_demo_users_last(items)


def expected_seconds(item: pytest.Item) -> float:
    """About how long the test's file takes alone on a quiet machine (`slow(seconds=...)`),
    so that the longest files of a lane start first (0 when its marker does not say)."""
    marker = item.get_closest_marker("slow")
    return float(marker.kwargs.get("seconds", 0)) if marker else 0.0


def run_demo_users_last(items: list[pytest.Item]) -> None:
    """The modules using the session's `make demo` are marked `demo` (`make test` runs them alone,
    last: the demo's catch-up is timed) and run last, in their order, so that the demo (a
    `dagster dev` whose sensors keep ticking) is torn down at once after its last user."""
    demo_modules = {i.path for i in items if "make_demo" in getattr(i, "fixturenames", ())}
    for item in items:
        if item.path in demo_modules:
            item.add_marker(pytest.mark.demo)
    if demo_modules:
        items.sort(key=lambda item: item.path in demo_modules)  # stable: keeps each order
