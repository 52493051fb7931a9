"""The serving store resource: the one place that chooses DuckDB or PostgreSQL."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.serving.duckdb_store import DuckDBServingStore
from adrecon_assets.serving.store import ServingStore


class ServingResource(dg.ConfigurableResource):
    """`url` (ADRECON_SERVING_URL) set: PostgreSQL shared with the online layer; else the DuckDB
    file `database` (ADRECON_SERVING_DB). Bound with `dg.EnvVar`, so the URL's credentials are
    never shown in the UI's resource config."""

    database: str = "data/serving.duckdb"
    url: str = ""

    def get_store(self) -> ServingStore:
        if self.url:
            # Imported only when used: psycopg is not needed by the embedded default.
            from adrecon_assets.serving.postgres_store import PostgresServingStore

            return PostgresServingStore(self.url)
        return DuckDBServingStore(self.database)

    @property
    def location(self) -> str:
        """Where the store is, credentials masked (for metadata)."""
        return self.get_store().location
