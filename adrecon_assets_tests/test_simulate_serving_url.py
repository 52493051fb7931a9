"""`adrecon-simulate --serving-url`: the simulator's online layer writes through the product's
online writer into a PostgreSQL serving store, the same rows as into the DuckDB file."""

from __future__ import annotations

from pathlib import Path

import pytest

from adrecon_assets.resources.serving import ServingResource
from adrecon_assets_tests.postgres import PASSWORD
from adrecon_simulate.cli import main

ONLINE_ROWS = (
    "SELECT date, offer_id, placement, source, emissions, clicks, cost_micros, fraud_clicks, "
    "refund_micros FROM offer_placement_stats ORDER BY date, offer_id, placement"
)
ARGUMENTS = ["--start", "2026-01-01", "--days", "2", "--emissions-per-day", "2000", "--seed", "5"]


def test_online_rows_go_to_postgresql_as_to_duckdb(
    tmp_path: Path, serving_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb_file = tmp_path / "online.duckdb"
    main(["--lake", str(tmp_path / "a" / "lake"), "--serving-db", str(duckdb_file), *ARGUMENTS])
    main(["--lake", str(tmp_path / "b" / "lake"), "--serving-url", serving_url, *ARGUMENTS])

    in_duckdb = ServingResource(database=str(duckdb_file)).get_store().fetch(ONLINE_ROWS)
    in_postgres = ServingResource(url=serving_url).get_store().fetch(ONLINE_ROWS)
    assert {row[0].isoformat() for row in in_postgres} == {"2026-01-01", "2026-01-02"}
    assert {row[3] for row in in_postgres} == {"online"}
    assert in_postgres == in_duckdb
    assert PASSWORD not in capsys.readouterr().out


def test_serving_db_and_url_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "--lake",
                str(tmp_path / "lake"),
                "--serving-db",
                str(tmp_path / "s.duckdb"),
                "--serving-url",
                "postgresql://u@127.0.0.1:1/db",
                *ARGUMENTS,
            ]
        )
