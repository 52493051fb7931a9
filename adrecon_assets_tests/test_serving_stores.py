"""The serving store interface on both implementations (DuckDB file, PostgreSQL): the day
replace with reconciled_days in its transaction, the online increment of contract 4.2, the
PostgreSQL column types, and credentials masked."""

from __future__ import annotations

from datetime import date

import psycopg
import pyarrow as pa
import pytest

from adrecon_assets import serving
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.serving import ServingStore, add_online_increments
from adrecon_assets.serving.postgres_store import (
    PostgresServingStore,
    ServingStoreError,
    masked_url,
)
from adrecon_assets_tests.postgres import PASSWORD, PostgresServer
from adrecon_assets_tests.test_serving import stats

DAY = date(2026, 1, 2)
OTHER_DAY = date(2026, 1, 3)


def rows_of(store: ServingStore, day: date) -> list[tuple[object, ...]]:
    return store.fetch(
        "SELECT offer_id, placement, emissions, clicks, cost_micros, fraud_clicks, "
        "refund_micros, source FROM offer_placement_stats WHERE date = ? ORDER BY offer_id",
        [day],
    )


def replace(store: ServingStore, day: date, rows: pa.Table, source: str, run: str = "r") -> int:
    return store.replace_day(
        serving.OFFER_PLACEMENT_STATS, day, rows, {"source": source}, run_id=run
    )


def test_offline_replace_marks_the_day_reconciled_in_the_same_transaction(
    store: ServingStore,
) -> None:
    replace(store, DAY, stats(DAY, ["o1", "o2"], 5), serving.ONLINE_SOURCE)
    assert store.reconciled_days() == {}
    assert replace(store, DAY, stats(DAY, ["o2"], 7), serving.OFFLINE_SOURCE, "run-1") == 1
    assert rows_of(store, DAY) == [("o2", "p1", 10, 7, 700, 1, 100, "offline")]
    assert store.reconciled_days() == {DAY: "run-1"}
    replace(store, DAY, stats(DAY, ["o3"], 1), serving.OFFLINE_SOURCE, "run-2")
    assert store.reconciled_days() == {DAY: "run-2"}
    totals = store.day_totals(DAY)
    assert (totals.source, totals.rows, totals.clicks, totals.cost_micros) == ("offline", 1, 1, 100)


def test_failed_replace_keeps_the_old_day_and_its_marker(store: ServingStore) -> None:
    replace(store, DAY, stats(DAY, ["o1", "o2"], 5), serving.OFFLINE_SOURCE, "good")
    before = rows_of(store, DAY)
    duplicate_key = stats(DAY, ["o9", "o9"], 3)
    with pytest.raises(Exception, match="(?i)constraint|duplicate|unique"):
        replace(store, DAY, duplicate_key, serving.OFFLINE_SOURCE, "bad")
    assert rows_of(store, DAY) == before
    assert store.reconciled_days() == {DAY: "good"}


def test_other_tables_replace_by_day_without_a_marker(store: ServingStore) -> None:
    rows = pa.table(
        {
            "date": pa.array([DAY], pa.date32()),
            "offer_id": ["o1"],
            "fraud_reason": ["too_fast"],
            "clicks": pa.array([2], pa.int64()),
            "refund_micros": pa.array([300], pa.int64()),
        }
    )
    store.replace_day(serving.REFUND_LEDGER, DAY, rows)
    store.replace_day(serving.REFUND_LEDGER, DAY, rows)
    assert store.fetch("SELECT offer_id, clicks, refund_micros FROM refund_ledger") == [
        ("o1", 2, 300)
    ]
    assert store.reconciled_days() == {}


def test_online_increments_add_up_until_the_day_is_reconciled(store: ServingStore) -> None:
    # Two increments to one key in one batch, one to another day.
    batch = [
        (DAY, "o1", "p1", 3, 1, 100),
        (DAY, "o1", "p1", 2, 1, 50),
        (OTHER_DAY, "o2", "p2", 1, 0, 0),
    ]
    assert add_online_increments(store, batch) == 3
    add_online_increments(store, [(DAY, "o1", "p1", 1, 1, 10)])
    assert rows_of(store, DAY) == [("o1", "p1", 6, 3, 160, 0, 0, "online")]
    replace(store, DAY, stats(DAY, ["o1"], 5), serving.OFFLINE_SOURCE)
    # Reconciled: later increments are dropped, for keys present and absent alike.
    add_online_increments(store, [(DAY, "o1", "p1", 1, 1, 10), (DAY, "o7", "p1", 1, 1, 10)])
    assert rows_of(store, DAY) == [("o1", "p1", 10, 5, 500, 1, 100, "offline")]
    add_online_increments(store, [(OTHER_DAY, "o2", "p2", 4, 2, 20)])
    assert rows_of(store, OTHER_DAY) == [("o2", "p2", 5, 2, 20, 0, 0, "online")]


def test_an_online_replace_unmarks_the_day(store: ServingStore) -> None:
    """Only offline rows mark a day reconciled (a simulator writing a day's online rows)."""
    replace(store, DAY, stats(DAY, ["o1"], 5), serving.OFFLINE_SOURCE)
    replace(store, DAY, stats(DAY, ["o1"], 5), serving.ONLINE_SOURCE)
    assert store.reconciled_days() == {}


def test_postgres_tables_use_the_contract_types(serving_url: str) -> None:
    PostgresServingStore(serving_url).create_tables()
    with psycopg.connect(serving_url) as connection:
        types = dict(
            connection.execute(
                "SELECT table_name || '.' || column_name, data_type "
                "FROM information_schema.columns WHERE table_schema = 'public'"
            ).fetchall()
        )
    assert types["offer_placement_stats.date"] == "date"
    assert types["offer_placement_stats.offer_id"] == "text"
    assert types["offer_placement_stats.clicks"] == "bigint"
    assert types["offer_placement_stats.updated_at"] == "timestamp with time zone"
    assert types["placement_anomalies.baseline"] == "double precision"
    assert types["reconciled_days.run_id"] == "text"
    assert {name.split(".")[0] for name in types} == {table.name for table in serving.TABLES}


def test_credentials_never_appear_in_location_or_errors(postgres: PostgresServer) -> None:
    url = postgres.url("postgres")
    assert PASSWORD in url
    assert masked_url(url) == f"postgresql://postgres:***@127.0.0.1:{postgres.port}/postgres"
    assert PASSWORD not in ServingResource(url=url).location
    wrong = url.replace(PASSWORD, PASSWORD + "-wrong")
    with pytest.raises(ServingStoreError) as failure:
        PostgresServingStore(wrong).day_totals(DAY)
    assert PASSWORD not in str(failure.value)
    assert "password authentication failed" in str(failure.value)
    # Wrong settings are not retried (libpq gives a refused log-in no SQLSTATE).
    assert "attempts" not in str(failure.value)
    missing = url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(
        ServingStoreError, match='database "no_such_database" does not exist'
    ) as failure:
        PostgresServingStore(missing).day_totals(DAY)
    assert "attempts" not in str(failure.value)
    unreachable = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres"
    with pytest.raises(ServingStoreError) as failure:
        PostgresServingStore(
            unreachable, connect_timeout_seconds=2, retry_budget_seconds=0
        ).day_totals(DAY)
    assert PASSWORD not in str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
