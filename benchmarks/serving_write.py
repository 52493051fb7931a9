"""Issue 24: the serving write of a day with millions of keys, PostgreSQL next to the DuckDB file.

The day's rows (as the DuckDB reference served them) are written with the serving store's own
`replace_day` (one transaction: delete the day, insert its rows, mark it reconciled), streamed
from their Parquet file as reconciled_statistics streams its staged folder, into a fresh
DuckDB file and into a throwaway local PostgreSQL server (Debian's binaries, as the tests start
them), each twice: the first write of a day, then its replacement over the first."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adrecon_assets.bounded_duckdb import Rows

STORES = ("duckdb", "postgresql")
WRITES = ("first", "replace")


@dataclass(frozen=True)
class ServingWrite:
    store: str
    write: str
    """`first`: the day was not there; `replace`: the day's rows were replaced."""
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def timed_writes(store: object, day: date, rows: Rows, name: str) -> list[ServingWrite]:
    from adrecon_assets import serving
    from adrecon_assets.serving.store import row_count

    writes = []
    store.create_tables()  # type: ignore[attr-defined]
    for write in WRITES:
        started = time.perf_counter()
        store.replace_day(  # type: ignore[attr-defined]
            serving.OFFER_PLACEMENT_STATS, day, rows, {"source": serving.OFFLINE_SOURCE}
        )
        writes.append(ServingWrite(name, write, row_count(rows), time.perf_counter() - started))
    return writes


def measure_serving_writes(statistics: Path, day: date) -> list[ServingWrite]:
    """Time the day's serving write into each store, from the rows in `statistics`."""
    from adrecon_assets.serving.duckdb_store import DuckDBServingStore
    from adrecon_assets.serving.postgres_store import PostgresServingStore
    from adrecon_assets_tests.postgres import postgres_server

    rows = statistics
    with tempfile.TemporaryDirectory(prefix="adrecon-serving-write-") as scratch:
        duckdb_store = DuckDBServingStore(str(Path(scratch) / "serving.duckdb"))
        writes = timed_writes(duckdb_store, day, rows, "duckdb")
    with postgres_server() as server:
        database = server.create_database()
        writes += timed_writes(PostgresServingStore(server.url(database)), day, rows, "postgresql")
    return writes


def serving_write_lines(writes: dict[str, list[ServingWrite]]) -> list[str]:
    """One table row per lake, store and write."""
    if not writes:
        return []
    lines = [
        "| lake (emission rows/day) | store | write | rows | seconds | rows/s |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for lake, measured in writes.items():
        lines += [
            f"| {lake} | {w.store} | {w.write} | {w.rows:,} | {w.seconds:.2f} | "
            f"{w.rows_per_second:,.0f} |"
            for w in measured
        ]
    return lines
