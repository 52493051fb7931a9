"""The serving store interface: what assets, checks, reports and the online layer ask of the
serving tables, whichever database holds them (DuckDB file or PostgreSQL)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adrecon_assets import rules
from adrecon_assets.bounded_duckdb import Rows, bounded_connection, register_rows
from adrecon_assets.serving.tables import (
    OFFER_PLACEMENT_STATS,
    ONLINE_MEASURES,
    STATS_MEASURES,
    Dialect,
    ServingTable,
)

# reconciled_days.run_id when no Dagster run is behind a write (simulator, benchmarks).
NO_RUN_ID = "outside-dagster"
# The day lock of contract 4.2: (LOCK_CLASS, days since 1970-01-01).
DAY_LOCK_CLASS = 1633972835
EPOCH = date(1970, 1, 1)


def day_number(day: date) -> int:
    return (day - EPOCH).days


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

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> DayTotals:
        """The totals of one row of `totals_sql`."""
        return cls(row[0], *(int(value) for value in row[1:]))


def totals_sql(relation: str) -> str:
    """The `DayTotals` columns of the offer_placement_stats rows in `relation`."""
    return (
        "SELECT string_agg(DISTINCT source, '+' ORDER BY source), count(*), "
        + ", ".join(f"coalesce(sum({name}), 0)" for name in STATS_MEASURES)
        + f" FROM {relation}"
    )


def totals_of(rows: Rows) -> DayTotals:
    """`ServingStore.day_totals` of rows read by `ServingStore.day_rows` or exported by
    `ServingStore.export_day_rows` (no second query of the store)."""
    with bounded_connection() as connection:
        register_rows(connection, "day_rows", rows)
        row = connection.execute(totals_sql("day_rows")).fetchone()
    assert row is not None
    return DayTotals.of_row(row)


DAY_ROWS_SCHEMA = pa.schema(
    [("offer_id", pa.string()), ("placement", pa.string())]
    + [(name, pa.int64()) for name in STATS_MEASURES]
    + [("source", pa.string())]
)

# The rows of a day (parameter: the date), unordered (an export needs no sort of the day).
DAY_ROWS_SELECT = (
    f"SELECT {', '.join(DAY_ROWS_SCHEMA.names)} FROM {OFFER_PLACEMENT_STATS.name} WHERE date = ?"
)
DAY_ROWS_SQL = f"{DAY_ROWS_SELECT} ORDER BY offer_id, placement"

ONLINE_COLUMNS = ("date", "offer_id", "placement", *ONLINE_MEASURES)


def parquet_files(rows: Path) -> list[Path]:
    """The Parquet files of `rows`: the file itself, or the folder's visible `*.parquet` files."""
    if not rows.is_dir():
        return [rows]
    return [path for path in sorted(rows.glob("*.parquet")) if not path.name.startswith((".", "_"))]


def row_count(rows: Rows) -> int:
    """Rows of an Arrow table, or of Parquet files from their footers."""
    if isinstance(rows, pa.Table):
        return rows.num_rows
    return sum(pq.read_metadata(path).num_rows for path in parquet_files(rows))


def row_columns(rows: Rows) -> list[str]:
    """The column names of an Arrow table, or of Parquet files (their first file's schema)."""
    if isinstance(rows, pa.Table):
        return rows.column_names
    files = parquet_files(rows)
    return pq.read_schema(files[0]).names if files else []


def row_batches(
    rows: Rows, columns: Sequence[str] | None = None, batch_rows: int | None = None
) -> Iterator[pa.RecordBatch]:
    """`rows` (only `columns`, if given) in record batches of at most `batch_rows` rows
    (`rules.SERVING_CHUNK_ROWS`): Parquet is read batch by batch, never whole."""
    batch_rows = batch_rows or rules.SERVING_CHUNK_ROWS
    if isinstance(rows, pa.Table):
        yield from (rows if columns is None else rows.select(list(columns))).to_batches(batch_rows)
        return
    # File by file with pyarrow.parquet: pyarrow.dataset imports pandas, ~0.5 s of the first
    # serving write in a process (a run's only use of it).
    for path in parquet_files(rows):
        with pq.ParquetFile(path) as parquet:
            yield from parquet.iter_batches(
                batch_size=batch_rows, columns=None if columns is None else list(columns)
            )


@dataclass(frozen=True)
class DayReplace:
    """One day's replace of a serving table (see `ServingStore.replace_day`): its rows as an
    Arrow table or as Parquet (a published day's staged folder, streamed by the stores)."""

    table: ServingTable
    day: date
    rows: Rows
    constants: dict[str, object] | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class ShapedReplace:
    """A `DayReplace` checked for writing: which columns of its table its rows hold, and the
    values of the write (`updated_at`, the constants): each other column takes one of them."""

    replace: DayReplace
    row_columns: list[str]
    values: dict[str, object]

    @property
    def constant_columns(self) -> list[str]:
        """The table's columns the rows lack: each takes its one value from `values`."""
        return [name for name in self.replace.table.column_names if name not in self.row_columns]

    def constants(self) -> pa.Table:
        """One row of the constant columns' values (a DuckDB store cross-joins it)."""
        return pa.table({name: [self.values[name]] for name in self.constant_columns})

    def batches(self, batch_rows: int | None = None) -> Iterator[pa.RecordBatch]:
        """The rows with every column of the table, in its order, batch by batch."""
        names = self.replace.table.column_names
        for batch in row_batches(self.replace.rows, self.row_columns, batch_rows):
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column(name)
                    if name in self.row_columns
                    else pa.repeat(pa.scalar(self.values[name]), batch.num_rows)
                    for name in names
                ],
                names=names,
            )


def shaped_replace(replace: DayReplace, values: dict[str, object]) -> ShapedReplace:
    """`replace` checked: rows of another day are refused (deleting only its day but inserting
    another day's rows would touch that day, contract 4); the columns its rows lack take one
    value from `values`. Reads only the date column, batch by batch."""
    table, day = replace.table, replace.day
    present = set(row_columns(replace.rows))
    other_days: set[date] = set()
    for batch in row_batches(replace.rows, ["date"]):
        other_days.update(d for d in pc.unique(batch.column(0)).to_pylist() if d != day)
    if other_days:
        raise ValueError(
            f"replace_day({table.name}, {day}) got rows of other days: "
            + ", ".join(str(d) for d in sorted(other_days))
        )
    return ShapedReplace(replace, [name for name in table.column_names if name in present], values)


def shaped_replaces(replaces: Sequence[DayReplace], now: object) -> list[ShapedReplace]:
    """Every day of a `replace_days` call checked and shaped before its transaction starts, all
    stamped `updated_at = now`."""
    return [
        shaped_replace(replace, {"updated_at": now, **(replace.constants or {})})
        for replace in replaces
    ]


class ServingStore(ABC):
    """The serving tables of contract 4. Every write of a day is one transaction (several days
    of a ranged step may share one); the online increment follows contract 4.2 so that both
    layers can write at once."""

    dialect: Dialect

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the tables are, without credentials (for metadata, logs and messages)."""

    @abstractmethod
    def create_tables(self) -> None:
        """Create every serving table that is missing."""

    def close(self) -> None:  # noqa: B027 (a no-op for stores that keep no connection)
        """Release the connection the store keeps, if any; the next call opens a new one."""

    def replace_day(
        self,
        table: ServingTable,
        day: date,
        rows: Rows,
        constants: dict[str, object] | None = None,
        run_id: str | None = None,
    ) -> int:
        """Atomically replace every row of `day` in `table` with `rows`; returns rows written.

        `constants` fills the columns `rows` lacks (source, updated_at) with one value. For
        offer_placement_stats the same transaction keeps reconciled_days in step: an offline
        replace upserts `(day, now, run_id)`, any other source removes the day's entry.
        """
        return self.replace_days([DayReplace(table, day, rows, constants, run_id)])

    @abstractmethod
    def replace_days(self, replaces: Sequence[DayReplace]) -> int:
        """Every replace of `replaces`, in their order, in ONE transaction (all or none); each
        is a `replace_day`. A ranged run publishes its days so: one commit (and one connection)
        per step instead of one per day. Returns the rows written."""

    @abstractmethod
    def add_online(self, rows: pa.Table) -> int:
        """The online layer's increment of contract 4.2 for a batch of rows (`date`, `offer_id`,
        `placement`, emissions, clicks, cost_micros), in one transaction; returns the rows given.
        Rows of reconciled days are dropped, rows of other days add to their online row."""

    @abstractmethod
    def fetch(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query written with `?` placeholders (runs on both stores)."""

    def day_totals(self, day: date) -> DayTotals:
        (row,) = self.fetch(f"{totals_sql(OFFER_PLACEMENT_STATS.name)} WHERE date = ?", [day])
        return DayTotals.of_row(row)

    @abstractmethod
    def export_day_rows(self, day: date, path: Path) -> None:
        """Write the rows `day_rows` would return (unordered) to the Parquet file `path`,
        streamed: a day of millions of keys never becomes Python rows or one Arrow table."""

    def day_rows(self, day: date) -> pa.Table:
        """The rows a day of offer_placement_stats holds now, per (offer_id, placement) with their
        source (what a replace is about to overwrite, for the drift metadata)."""
        rows = self.fetch(DAY_ROWS_SQL, [day])
        # Column by column: a day holds tens of thousands of keys.
        columns = list(zip(*rows, strict=True)) or [()] * len(DAY_ROWS_SCHEMA)
        return pa.table(
            [
                pa.array(values, type=column.type)
                for values, column in zip(columns, DAY_ROWS_SCHEMA, strict=True)
            ],
            schema=DAY_ROWS_SCHEMA,
        )

    def reconciled_days(self) -> dict[date, str]:
        """Each day whose offline rows are in place, with the run that wrote them."""
        rows = self.fetch("SELECT date, run_id FROM reconciled_days ORDER BY date")
        return {row[0]: row[1] for row in rows}
