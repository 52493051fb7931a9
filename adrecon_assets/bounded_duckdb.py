"""An in-process DuckDB held to a memory limit, over a day's rows as Parquet or Arrow.

reconciled_statistics audits, compares and publishes days of millions of (offer_id, placement)
keys (issue 24): as Polars frames or Python rows such a day took several GB. DuckDB's joins,
aggregates and sorts spill to disk beyond `rules.AUDIT_MEMORY_LIMIT`, so the same SQL runs in
bounded memory whatever the key count.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeAlias

import duckdb
import pyarrow as pa

from adrecon_assets import rules

# A day's rows: an Arrow table (tests, the simulator) or Parquet (a file, or a folder of files).
Rows: TypeAlias = "pa.Table | Path"


def sql_text(value: str) -> str:
    """`value` as a SQL string literal (for paths: DuckDB takes no parameters in a view)."""
    return "'" + value.replace("'", "''") + "'"


def parquet_glob(rows: Path) -> str:
    """The Parquet files of `rows`: the file itself, or every `*.parquet` of the folder."""
    return str(rows / "*.parquet") if rows.is_dir() else str(rows)


@contextmanager
def bounded_connection(spill_folder: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that spills its tables and its queries' state beyond the limit to a
    temporary folder (under `spill_folder` if given), removed with it."""
    with tempfile.TemporaryDirectory(dir=spill_folder, prefix="bounded-duckdb-") as scratch:
        connection = duckdb.connect()
        try:
            connection.execute(f"SET memory_limit = {sql_text(rules.AUDIT_MEMORY_LIMIT)}")
            connection.execute(f"SET threads = {int(rules.AUDIT_THREADS)}")
            connection.execute(f"SET temp_directory = {sql_text(str(Path(scratch) / 'spill'))}")
            # Results are keyed, never read in insertion order: lets DuckDB stream more.
            connection.execute("SET preserve_insertion_order = false")
            connection.execute("SET enable_progress_bar = false")
            yield connection
        finally:
            connection.close()


def register_rows(connection: duckdb.DuckDBPyConnection, name: str, rows: Rows) -> None:
    """Make `rows` queryable as the view `name` (Parquet is scanned, never loaded whole)."""
    if isinstance(rows, pa.Table):
        connection.register(name, rows)
        return
    connection.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS "
        f"SELECT * FROM read_parquet({sql_text(parquet_glob(rows))})"
    )
