"""A run holds at most 2 serving connections whatever its length (contract 4.2): a 6-day ranged
run against a PostgreSQL server that allows 5 connections succeeds, and a sampler of
pg_stat_activity never sees more than one connection of the run to the serving database (a
connection per day, kept until the step ended, made this run fail with "too many clients")."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from adrecon_assets.partitions import first_day
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.postgres import PostgresServer, postgres_server
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows
from adrecon_assets_tests.test_ranged_run import ranged_run

# More days than the server allows connections (the sampler takes one more): a connection kept
# per day cannot pass. Was 15 days and 10 connections (~14 s); the same proof in ~6 s.
DAYS = 6
MAX_CONNECTIONS = 5


class ConnectionSampler:
    """The most connections to `database` seen at once, sampled every 50 ms from another
    connection (not counted: it is to the `postgres` database)."""

    def __init__(self, server: PostgresServer, database: str) -> None:
        self.server, self.database = server, database
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        with psycopg.connect(self.server.url(), autocommit=True) as connection:
            while not self._stop.wait(0.05):
                [(count,)] = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchall()
                self.peak = max(self.peak, int(count))
                self.samples += 1

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def small_server() -> Iterator[PostgresServer]:
    with postgres_server({"max_connections": str(MAX_CONNECTIONS)}) as server:
        yield server


@pytest.mark.slow  # a 6-day ranged run of every asset: ~6 s
def test_a_ranged_run_of_more_days_than_connections_holds_one_serving_connection(
    paths: Paths, polars_resources: dict[str, object], small_server: PostgresServer
) -> None:
    days = [first_day() + timedelta(days=offset) for offset in range(DAYS)]
    build_random_lake(paths.lake, days[0], DAYS, seed=40)
    database = small_server.create_database()
    serving_db = ServingResource(url=small_server.url(database))
    resources = {**polars_resources, "serving_db": serving_db}

    with ConnectionSampler(small_server, database) as sampler:
        result = ranged_run(resources, days)

    assert result.success
    assert sampler.samples > 20  # every 50 ms through the run
    assert 1 <= sampler.peak <= 2
    store = ServingResource(url=small_server.url(database)).get_store()
    run_id = result.run_id
    assert store.reconciled_days() == {day: run_id for day in days}
    for day in (days[0], days[DAYS // 2], days[-1]):
        assert serving_rows(store, day) == expected_rows(paths, day) != []
