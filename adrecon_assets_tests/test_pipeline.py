"""End to end: consecutive partitions through Dagster on a seeded random lake, compared with the
independent DuckDB reference on each serving store (DuckDB file, PostgreSQL), plus one run of the
real `dagster asset materialize` CLI on the DuckDB file (test_postgres_urls: on PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest

from adrecon_assets import serving
from adrecon_assets.definitions import ASSETS
from adrecon_assets.partitions import first_day
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.serving import ServingStore
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import table_rows
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.reference import STATS_COLUMNS, reference_day

DAYS = 4
OUTSIDE_DAY = date(2026, 2, 1)  # a day the runs must never touch


def materialize_day_cli(
    day: date, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`dagster asset materialize --select '*' --partition DAY`, as an operator runs it from the
    shell (the installed entry point, the code location by module); asserts it succeeded."""
    dagster = Path(sys.executable).parent / "dagster"
    completed = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "adrecon_assets.definitions"]
        + ["--select", "*", "--partition", day.isoformat()],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def serving_rows(store: ServingStore | Path, day: date) -> list[tuple[object, ...]]:
    """The day's offer_placement_stats rows with their source (updated_at left out)."""
    if isinstance(store, Path):
        store = serving.DuckDBServingStore(store)
    return store.fetch(
        f"SELECT {', '.join(STATS_COLUMNS)}, source FROM offer_placement_stats "
        "WHERE date = ? ORDER BY offer_id, placement",
        [day],
    )


@pytest.fixture(params=["duckdb", "postgres"])
def serving_resource(request: pytest.FixtureRequest, paths: Paths) -> ServingResource:
    """Each pipeline test runs once per serving store."""
    if request.param == "postgres":
        return ServingResource(url=request.getfixturevalue("serving_url"))
    return ServingResource(database=str(paths.serving_db))


def write_online_rows(store: ServingStore | Path, day: date) -> None:
    """What the online layer left for a day: one best-effort row per offer of o0-o2 on p0."""
    if isinstance(store, Path):
        store = serving.DuckDBServingStore(store)
    rows = pa.table(
        {
            "date": [day] * 3,
            "offer_id": ["o0", "o1", "o2"],
            "placement": ["p0", "p0", "p0"],
            "emissions": [5, 6, 7],
            "clicks": [1, 2, 3],
            "cost_micros": [10, 20, 30],
            "fraud_clicks": [0, 0, 0],
            "refund_micros": [0, 0, 0],
        }
    )
    serving.add_online_increments(store, rows)


def materialize_day(resources: dict[str, object], day: date) -> None:
    result = dg.materialize(ASSETS, partition_key=day.isoformat(), resources=resources)
    assert result.success
    materialized = {
        event.asset_key.path[-1]
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    assert materialized == {key.path[-1] for asset in ASSETS for key in asset.keys}
    # The random lake is clean input: no check of severity ERROR may fail (WARN rate bounds may).
    failed_errors = [
        evaluation.check_name
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed_errors == []


def expected_rows(paths: Paths, day: date) -> list[tuple[object, ...]]:
    statistics, _ = reference_day(paths.lake, day, first_day())
    return [(*row, serving.OFFLINE_SOURCE) for row in table_rows(statistics)]


def flagged_reasons(paths: Paths, day: date) -> dict[str, str | None]:
    folder = Warehouse(paths.warehouse).folder(Dataset.FRAUD_FLAGS, day)
    return dict(pl.read_parquet(folder / "*.parquet").select("click_id", "fraud_reason").rows())


def test_consecutive_days_match_the_reference_and_reruns_are_identical(
    paths: Paths, polars_resources: dict[str, object], serving_resource: ServingResource
) -> None:
    polars_resources = {**polars_resources, "serving_db": serving_resource}
    store = serving_resource.get_store()
    start = first_day()
    days = [start + timedelta(days=offset) for offset in range(DAYS)]
    build_random_lake(paths.lake, start, DAYS, seed=20260101)
    write_online_rows(store, days[1])
    write_online_rows(store, OUTSIDE_DAY)
    outside_before = serving_rows(store, OUTSIDE_DAY)

    for day in days:
        materialize_day(polars_resources, day)

    reasons_seen: set[str | None] = set()
    for day in days:
        expected = expected_rows(paths, day)
        assert serving_rows(store, day) == expected, day
        _, expected_reasons = reference_day(paths.lake, day, start)
        assert flagged_reasons(paths, day) == expected_reasons, day
        reasons_seen |= set(expected_reasons.values())
    # The lake is only a good test if it reaches every reason and both online and offline days.
    assert reasons_seen == {None, "no_emission", "too_fast", "denylisted_ip", "click_flood"}
    assert all(len(serving_rows(store, day)) > 0 for day in days)
    assert {row[-1] for day in days for row in serving_rows(store, day)} == {"offline"}
    assert serving_rows(store, OUTSIDE_DAY) == outside_before

    before_rerun = {day: serving_rows(store, day) for day in days}
    materialize_day(polars_resources, days[1])
    assert {day: serving_rows(store, day) for day in days} == before_rerun
    assert serving_rows(store, OUTSIDE_DAY) == outside_before


@pytest.mark.slow
def test_cli_materializes_every_asset_of_a_day(paths: Paths, tmp_path: Path) -> None:
    """On the DuckDB store; the CLI on PostgreSQL is test_postgres_urls' run (one CLI start each:
    ~8 s)."""
    day = first_day() + timedelta(days=1)
    build_random_lake(paths.lake, first_day(), 2, seed=7)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "ADRECON_LAKE_ROOT": str(paths.lake),
        "ADRECON_WAREHOUSE": str(paths.warehouse),
        "ADRECON_SERVING_DB": str(paths.serving_db),
        "ADRECON_SERVING_URL": "",
        "ADRECON_ENGINE": "polars",
    }
    materialize_day_cli(day, env, tmp_path)
    assert serving_rows(paths.serving_db, day) == expected_rows(paths, day)
    assert serving_rows(paths.serving_db, day) != []
