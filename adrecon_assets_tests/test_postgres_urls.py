"""Both PostgreSQL URLs accept the forms libpq accepts, `postgresql://` and `postgres://`,
whatever starts the processes (contract 1): here a plain `dagster asset materialize` CLI run
with deploy/dagster.yaml as its instance, no `make prod` rewriting the URL, with both URLs in the
`postgres://` form. `postgresql://` is the form every other PostgreSQL test uses, under the
production processes too (test_production_faults: both URLs bare `postgresql://`), so one CLI
start (~8 s) proves the form that needs the dialect alias."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy

from adrecon_assets.partitions import first_day
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.postgres import PASSWORD, PostgresServer
from adrecon_assets_tests.test_pipeline import expected_rows, materialize_day_cli, serving_rows
from adrecon_simulate import SimulationConfig, simulate

PROJECT = Path(__file__).resolve().parents[1]
SCHEMES = ("postgresql", "postgres")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_both_url_forms_reach_dagster_postgres_through_psycopg2(scheme: str) -> None:
    """dagster-postgres only works on psycopg2 (psycopg 3 fails its first event write)."""
    engine = sqlalchemy.create_engine(f"{scheme}://user:secret@127.0.0.1:5432/dagster")
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg2")


@pytest.mark.slow  # one CLI run of every asset over a small day: ~10 s
def test_cli_run_with_bare_postgres_urls_on_the_production_instance(
    paths: Paths,
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = first_day()
    simulate(
        SimulationConfig(
            lake=paths.lake, serving_db=None, start=day, days=1, emissions_per_day=3_000, seed=5
        )
    )
    urls = {
        name: postgres.url(postgres.create_database()).replace("postgresql://", "postgres://", 1)
        for name in ("instance", "serving")
    }
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ADRECON_DAGSTER_PG_URL": urls["instance"],
        "ADRECON_SERVING_URL": urls["serving"],
        "ADRECON_SERVING_DB": str(paths.serving_db),
        "ADRECON_WAREHOUSE": str(paths.warehouse),
        "ADRECON_ENGINE": "polars",
    }
    completed = materialize_day_cli(day, env, tmp_path)
    assert PASSWORD not in completed.stdout + completed.stderr
    # The chosen store took every write: no DuckDB file appears beside a PostgreSQL store.
    assert not paths.serving_db.exists()

    # The run and its events are in Dagster's PostgreSQL storage, read with the same bare URL.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ADRECON_DAGSTER_PG_URL", urls["instance"])
    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_records_for_run(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
    store = ServingResource(url=urls["serving"]).get_store()
    assert serving_rows(store, day) == expected_rows(paths, day) != []
    assert store.reconciled_days() == {day: record.dagster_run.run_id}
