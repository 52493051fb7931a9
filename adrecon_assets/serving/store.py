"""The serving store interface: what assets, checks, reports and the online layer ask of the
serving tables, whichever database holds them (DuckDB file or PostgreSQL)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


def totals_of(rows: pa.Table) -> DayTotals:
    """`ServingStore.day_totals` of rows read by `ServingStore.day_rows` (no second query)."""
    sources = sorted(source for source in pc.unique(rows["source"]).to_pylist() if source)
    return DayTotals(
        "+".join(sources) or None,
        rows.num_rows,
        *(int(pc.sum(rows[name]).as_py() or 0) for name in STATS_MEASURES),
    )


DAY_ROWS_SCHEMA = pa.schema(
    [("offer_id", pa.string()), ("placement", pa.string())]
    + [(name, pa.int64()) for name in STATS_MEASURES]
    + [("source", pa.string())]
)

DAY_ROWS_SQL = (
    f"SELECT {', '.join(DAY_ROWS_SCHEMA.names)} FROM {OFFER_PLACEMENT_STATS.name} "
    "WHERE date = ? ORDER BY offer_id, placement"
)

ONLINE_COLUMNS = ("date", "offer_id", "placement", *ONLINE_MEASURES)


def day_rows_with_constants(
    table: ServingTable, day: date, rows: pa.Table, values: dict[str, object]
) -> pa.Table:
    """`rows` with every column of `table`, in its order; the columns `rows` lacks (source,
    updated_at) take one value from `values`. Rows of another day are refused: deleting only
    `day` but inserting another day's rows would touch that day (contract 4)."""
    other_days = sorted(str(d) for d in pc.unique(rows["date"]).to_pylist() if d != day)
    if other_days:
        raise ValueError(
            f"replace_day({table.name}, {day}) got rows of other days: {', '.join(other_days)}"
        )
    columns = {}
    for name in table.column_names:
        if name in rows.column_names:
            columns[name] = rows[name]
        else:
            columns[name] = pa.array([values[name]] * rows.num_rows)
    return pa.table(columns)


@dataclass(frozen=True)
class DayReplace:
    """One day's replace of a serving table (see `ServingStore.replace_day`)."""

    table: ServingTable
    day: date
    rows: pa.Table
    constants: dict[str, object] | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class ShapedReplace:
    """A `DayReplace` checked and shaped for writing: its rows with every column of its table,
    and the constant values (updated_at, source) they took."""

    replace: DayReplace
    rows: pa.Table
    values: dict[str, object]


def shaped_replaces(replaces: Sequence[DayReplace], now: object) -> list[ShapedReplace]:
    """Every day of a `replace_days` call checked and shaped before its transaction starts, all
    stamped `updated_at = now`."""
    shaped = []
    for replace in replaces:
        values = {"updated_at": now, **(replace.constants or {})}
        rows = day_rows_with_constants(replace.table, replace.day, replace.rows, values)
        shaped.append(ShapedReplace(replace, rows, values))
    return shaped


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
        rows: pa.Table,
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
        (row,) = self.fetch(
            "SELECT string_agg(DISTINCT source, '+' ORDER BY source), count(*), "
            + ", ".join(f"coalesce(sum({name}), 0)" for name in STATS_MEASURES)
            + f" FROM {OFFER_PLACEMENT_STATS.name} WHERE date = ?",
            [day],
        )
        return DayTotals(row[0], *(int(value) for value in row[1:]))

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
