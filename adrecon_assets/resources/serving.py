"""The serving store resource: the one place that chooses DuckDB or PostgreSQL."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from adrecon_assets.serving.duckdb_store import DuckDBServingStore
from adrecon_assets.serving.store import ServingStore


class ServingResource(dg.ConfigurableResource):
    """`url` (ADRECON_SERVING_URL) set: PostgreSQL shared with the online layer; else the DuckDB
    file `database` (ADRECON_SERVING_DB). Bound with `dg.EnvVar`, so the URL's credentials are
    never shown in the UI's resource config.

    One store per resource instance, and so per run (the in-process executor builds the
    resources once a run): every step and every day of a ranged run shares its one PostgreSQL
    connection, which keeps a run at one serving connection however many days it reconciles
    (contract 4.2 allows 2), instead of one per day held until the step ends."""

    database: str = "data/serving.duckdb"
    url: str = ""
    _store: ServingStore | None = PrivateAttr(default=None)

    def get_store(self) -> ServingStore:
        if self._store is None:
            self._store = self._new_store()
        return self._store

    def _new_store(self) -> ServingStore:
        if self.url:
            # Imported only when used: psycopg is not needed by the embedded default.
            from adrecon_assets.serving.postgres_store import PostgresServingStore

            return PostgresServingStore(self.url)
        return DuckDBServingStore(self.database)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """The run's serving connection ends with the run."""
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def location(self) -> str:
        """Where the store is, credentials masked (for metadata)."""
        return self.get_store().location
