"""The serving store resource: short-lived DuckDB connections to ADRECON_SERVING_DB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource


class ServingResource(DuckDBResource):
    """DuckDBResource (connect with backoff while another process holds the file lock) that
    also creates the database's folder, so a fresh checkout needs no set-up step."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as connection:
            yield connection
