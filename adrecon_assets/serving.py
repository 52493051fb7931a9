"""The serving store (DATA_CONTRACT.md section 4): DuckDB tables replaced one day at a time.

Every write goes through `replace_day`: one explicit transaction that deletes the day and
inserts its new rows, so readers see the old day or the new day and a crash leaves one of them.
An offline replace of offer_placement_stats also upserts the day into `reconciled_days` in that
same transaction (contract 4), so the marker and the rows are never out of step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

OFFLINE_SOURCE = "offline"
ONLINE_SOURCE = "online"


@dataclass(frozen=True)
class ServingTable:
    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]

    @property
    def ddl(self) -> str:
        columns = ", ".join(f"{name} {sql_type} NOT NULL" for name, sql_type in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} ({columns}, "
            f"PRIMARY KEY ({', '.join(self.primary_key)}))"
        )

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


OFFER_PLACEMENT_STATS = ServingTable(
    name="offer_placement_stats",
    columns=(
        ("date", "DATE"),
        ("offer_id", "VARCHAR"),
        ("placement", "VARCHAR"),
        ("emissions", "BIGINT"),
        ("clicks", "BIGINT"),
        ("cost_micros", "BIGINT"),
        ("fraud_clicks", "BIGINT"),
        ("refund_micros", "BIGINT"),
        ("source", "VARCHAR"),
        ("updated_at", "TIMESTAMP"),
    ),
    primary_key=("date", "offer_id", "placement"),
)

PLACEMENT_ANOMALIES = ServingTable(
    name="placement_anomalies",
    columns=(
        ("date", "DATE"),
        ("placement", "VARCHAR"),
        ("clicks", "BIGINT"),
        ("baseline", "DOUBLE"),
        ("stddev", "DOUBLE"),
        ("zscore", "DOUBLE"),
        ("history_days", "BIGINT"),
        ("is_anomaly", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ),
    primary_key=("date", "placement"),
)

RECONCILED_DAYS = ServingTable(
    name="reconciled_days",
    columns=(("date", "DATE"), ("reconciled_at", "TIMESTAMP"), ("run_id", "VARCHAR")),
    primary_key=("date",),
)

# Written by replace_day when no Dagster run is behind the write (simulator, benchmarks).
NO_RUN_ID = "outside-dagster"

# baseline/zscore are null without history: the NOT NULL of the DDL applies to keys and counts.
# ctr is null for a placement without emissions that day (its clicks matched D-1 emissions).
NULLABLE_COLUMNS = {"baseline", "stddev", "zscore", "ctr"}


def create_table(connection: duckdb.DuckDBPyConnection, table: ServingTable) -> None:
    ddl = table.ddl
    for column in NULLABLE_COLUMNS:
        ddl = ddl.replace(f"{column} DOUBLE NOT NULL", f"{column} DOUBLE")
    connection.execute(ddl)


def replace_day(
    connection: duckdb.DuckDBPyConnection,
    table: ServingTable,
    day: date,
    rows: pa.Table,
    constants: dict[str, object] | None = None,
    run_id: str | None = None,
) -> int:
    """Atomically replace every row of `day` in `table` with `rows`; returns rows written.

    `constants` fills columns that `rows` lacks (source, updated_at) with one value per day.
    For offer_placement_stats the same transaction keeps `reconciled_days` in step: an offline
    replace upserts `(day, now, run_id)`, any other source (online rows) removes the day's entry.
    """
    values = {"updated_at": datetime.now(UTC).replace(tzinfo=None), **(constants or {})}
    marks_reconciled = table == OFFER_PLACEMENT_STATS
    # Deleting only `day` but inserting rows of another day would touch that day (contract 4).
    other_days = sorted(str(d) for d in pc.unique(rows["date"]).to_pylist() if d != day)
    if other_days:
        raise ValueError(
            f"replace_day({table.name}, {day}) got rows of other days: {', '.join(other_days)}"
        )
    create_table(connection, table)
    if marks_reconciled:
        create_table(connection, RECONCILED_DAYS)
    select_list = []
    parameters: list[object] = []
    for name in table.column_names:
        if name in rows.column_names:
            select_list.append(f'"{name}"')
        else:
            select_list.append("?")
            parameters.append(values[name])
    connection.register("incoming_rows", rows)
    try:
        connection.execute("BEGIN TRANSACTION")
        connection.execute(f"DELETE FROM {table.name} WHERE date = ?", [day])
        connection.execute(
            f"INSERT INTO {table.name} ({', '.join(table.column_names)}) "
            f"SELECT {', '.join(select_list)} FROM incoming_rows",
            parameters,
        )
        if marks_reconciled:
            connection.execute("DELETE FROM reconciled_days WHERE date = ?", [day])
            if values.get("source") == OFFLINE_SOURCE:
                connection.execute(
                    "INSERT INTO reconciled_days (date, reconciled_at, run_id) VALUES (?, ?, ?)",
                    [day, values["updated_at"], run_id or NO_RUN_ID],
                )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.unregister("incoming_rows")
    return rows.num_rows


T = TypeVar("T")


def read_with_retry(
    database: str, query: Callable[[duckdb.DuckDBPyConnection], T], attempts: int = 8
) -> T:
    """Run `query` on a short-lived read-only connection, retrying while a writer holds the lock."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            with duckdb.connect(database, read_only=True) as connection:
                return query(connection)
        except duckdb.IOException:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DayTotals:
    """What a day of offer_placement_stats held before a replace (for drift metadata)."""

    source: str | None
    rows: int
    emissions: int
    clicks: int
    cost_micros: int
    fraud_clicks: int
    refund_micros: int


def day_totals(connection: duckdb.DuckDBPyConnection, day: date) -> DayTotals:
    create_table(connection, OFFER_PLACEMENT_STATS)
    row = connection.execute(
        "SELECT string_agg(DISTINCT source, '+' ORDER BY source), count(*), "
        "coalesce(sum(emissions), 0), coalesce(sum(clicks), 0), coalesce(sum(cost_micros), 0), "
        "coalesce(sum(fraud_clicks), 0), coalesce(sum(refund_micros), 0) "
        "FROM offer_placement_stats WHERE date = ?",
        [day],
    ).fetchone()
    assert row is not None
    return DayTotals(row[0], *(int(value) for value in row[1:]))


STATS_MEASURES = ("emissions", "clicks", "cost_micros", "fraud_clicks", "refund_micros")


def day_rows(connection: duckdb.DuckDBPyConnection, day: date) -> pa.Table:
    """The rows a day of offer_placement_stats holds now, per (offer_id, placement) with their
    source (what a replace is about to overwrite, for the drift metadata)."""
    create_table(connection, OFFER_PLACEMENT_STATS)
    return connection.sql(
        f"SELECT offer_id, placement, {', '.join(STATS_MEASURES)}, source "
        "FROM offer_placement_stats WHERE date = ? ORDER BY offer_id, placement",
        params=[day],
    ).to_arrow_table()


def reconciled_entry(connection: duckdb.DuckDBPyConnection, day: date) -> tuple[object, ...] | None:
    """The day's `(date, reconciled_at, run_id)` row of reconciled_days, or None."""
    create_table(connection, RECONCILED_DAYS)
    return connection.execute(
        "SELECT date, reconciled_at, run_id FROM reconciled_days WHERE date = ?", [day]
    ).fetchone()
