"""What the previous (online) rows of a day got wrong against the reconciled ones.

Pure functions over Parquet or Arrow tables (or hand-written mappings in tests), in SQL on a
DuckDB held to a memory limit (`bounded_duckdb`): a day has up to millions of (offer_id,
placement) rows, too many for a Python loop, or even a Polars frame, per materialization.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import duckdb
import pyarrow as pa

from adrecon_assets import rules
from adrecon_assets.bounded_duckdb import Rows, bounded_connection, register_rows

Key = tuple[str, str]
KEY_COLUMNS = rules.STATS_KEY
MEASURES = rules.DRIFT_MEASURES
PREVIOUS, RECONCILED = "_previous", "_reconciled"


@dataclass(frozen=True)
class KeyTotals:
    """One (offer_id, placement) row of offer_placement_stats, measures only."""

    clicks: int = 0
    cost_micros: int = 0
    fraud_clicks: int = 0
    refund_micros: int = 0

    @property
    def billed_clicks(self) -> int:
        """Clicks the online layer should have billed: valid plus (refundable) fraud."""
        return self.clicks + self.fraud_clicks

    @property
    def billed_micros(self) -> int:
        return self.cost_micros + self.refund_micros


# Measures per (offer_id, placement): serving rows as Parquet or an Arrow table (other columns
# ignored) or, in hand-computed tests, a mapping. All go through the same SQL comparison.
Totals: TypeAlias = "Rows | Mapping[Key, KeyTotals]"
# The relations `register_totals` creates and `COMPARED_SQL` reads.
PREVIOUS_ROWS, RECONCILED_ROWS = "previous_rows", "reconciled_rows"


def register_totals(connection: duckdb.DuckDBPyConnection, name: str, totals: Totals) -> None:
    """Make `totals` queryable as `name`, whichever form it comes in."""
    if isinstance(totals, pa.Table | Path):
        register_rows(connection, name, totals)
        return
    schema = pa.schema(
        [(column, pa.string()) for column in KEY_COLUMNS] + [(m, pa.int64()) for m in MEASURES]
    )
    rows = [
        {**dict(zip(KEY_COLUMNS, key, strict=True)), **{m: getattr(row, m) for m in MEASURES}}
        for key, row in totals.items()
    ]
    register_rows(connection, name, pa.Table.from_pylist(rows, schema=schema))


def _side(relation: str, suffix: str) -> str:
    """The key and measure columns of `relation`, typed alike whichever side they come from."""
    keys = ", ".join(f"{column}::VARCHAR AS {column}" for column in KEY_COLUMNS)
    measures = ", ".join(f"{m}::BIGINT AS {m}{suffix}" for m in MEASURES)
    return f"SELECT {keys}, {measures} FROM {relation}"


# One row per key of either side with `<measure>_previous` and `<measure>_reconciled`; a key
# missing on one side has zeros there (as if its row held nothing).
COMPARED_SQL = f"""
    SELECT {", ".join(f"coalesce(o.{c}, n.{c}) AS {c}" for c in KEY_COLUMNS)},
        {", ".join(f"coalesce(o.{m}{PREVIOUS}, 0) AS {m}{PREVIOUS}" for m in MEASURES)},
        {", ".join(f"coalesce(n.{m}{RECONCILED}, 0) AS {m}{RECONCILED}" for m in MEASURES)}
    FROM ({_side(PREVIOUS_ROWS, PREVIOUS)}) o
    FULL JOIN ({_side(RECONCILED_ROWS, RECONCILED)}) n
        ON {" AND ".join(f"o.{c} = n.{c}" for c in KEY_COLUMNS)}
"""


# A key of `compared` whose measures differ between the two sides.
CHANGED_SQL = " OR ".join(f"{m}{PREVIOUS} <> {m}{RECONCILED}" for m in MEASURES)


@contextmanager
def compared_keys(
    previous: Totals, reconciled: Totals, spill_folder: Path | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A bounded DuckDB connection on which the view `compared` holds `COMPARED_SQL` of
    `previous` and `reconciled`."""
    with bounded_connection(spill_folder) as connection:
        register_totals(connection, PREVIOUS_ROWS, previous)
        register_totals(connection, RECONCILED_ROWS, reconciled)
        connection.execute(f"CREATE TEMP VIEW compared AS {COMPARED_SQL}")
        yield connection


def _billed(side: str) -> tuple[str, str]:
    """Clicks and micros the online layer should have billed: valid plus (refundable) fraud."""
    return f"(clicks{side} + fraud_clicks{side})", f"(cost_micros{side} + refund_micros{side})"


def _positive_sum(difference: str, name: str) -> str:
    return f"coalesce(sum(greatest({difference}, 0)), 0) AS {name}"


@dataclass(frozen=True)
class Drift:
    """How far the previous rows of a day were from the reconciled ones.

    previous.clicks + lost - double_counted - billed_fraud == reconciled.clicks (same for micros).
    """

    previous: KeyTotals
    reconciled: KeyTotals
    lost_clicks: int
    lost_micros: int
    double_counted_clicks: int
    double_counted_micros: int
    billed_fraud_clicks: int
    billed_fraud_micros: int
    changed_keys: int
    """Keys whose measures differ (counted in the same pass over `compared`)."""


def drift(previous: Totals, reconciled: Totals, spill_folder: Path | None = None) -> Drift:
    """Per key, an online count below the reconciled billable clicks means lost clicks, above
    it double counting (message duplicates); fraud the previous rows did not refund was billed."""
    with compared_keys(previous, reconciled, spill_folder) as connection:
        return compared_drift(connection)


def compared_drift(connection: duckdb.DuckDBPyConnection) -> Drift:
    """`drift` of the view `compared` (see `compared_keys`)."""
    (old_clicks, old_micros), (new_clicks, new_micros) = _billed(PREVIOUS), _billed(RECONCILED)
    names = [m + side for side in (PREVIOUS, RECONCILED) for m in MEASURES]
    sums_sql = ", ".join(f"coalesce(sum({name}), 0) AS {name}" for name in names)
    query = connection.execute(
        f"SELECT {sums_sql}, "
        f"{_positive_sum(f'{new_clicks} - {old_clicks}', 'lost_clicks')}, "
        f"{_positive_sum(f'{new_micros} - {old_micros}', 'lost_micros')}, "
        f"{_positive_sum(f'{old_clicks} - {new_clicks}', 'double_counted_clicks')}, "
        f"{_positive_sum(f'{old_micros} - {new_micros}', 'double_counted_micros')}, "
        f"count(*) FILTER (WHERE {CHANGED_SQL}) AS changed_keys "
        "FROM compared"
    )
    row = query.fetchone()
    assert row is not None
    sums = {column[0]: int(value) for column, value in zip(query.description, row, strict=True)}
    old, new = (KeyTotals(*(sums[m + side] for m in MEASURES)) for side in (PREVIOUS, RECONCILED))
    return Drift(
        previous=old,
        reconciled=new,
        lost_clicks=sums["lost_clicks"],
        lost_micros=sums["lost_micros"],
        double_counted_clicks=sums["double_counted_clicks"],
        double_counted_micros=sums["double_counted_micros"],
        billed_fraud_clicks=new.fraud_clicks - old.fraud_clicks,
        billed_fraud_micros=new.refund_micros - old.refund_micros,
        changed_keys=sums["changed_keys"],
    )


def drift_metadata(result: Drift) -> dict[str, int]:
    """The drift numbers under stable keys, so the UI plots them across partitions."""
    return {
        "lost_clicks": result.lost_clicks,
        "lost_micros": result.lost_micros,
        "double_counted_clicks": result.double_counted_clicks,
        "double_counted_micros": result.double_counted_micros,
        "billed_fraud_clicks": result.billed_fraud_clicks,
        "billed_fraud_micros": result.billed_fraud_micros,
    }
