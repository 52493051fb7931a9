"""The PostgreSQL serving store rides out a server outage (a failover, a restart) within its
retry budget: a replace and a read wait for the server and succeed, on a new connection; a bad
statement fails at once; past the budget the error names the attempts, credentials masked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest

from adrecon_assets import serving
from adrecon_assets.rules import SERVING_RECONNECT_FIRST_WAIT_SECONDS
from adrecon_assets.serving.postgres_store import (
    PostgresServingStore,
    ServingStoreError,
    reconnect_waits,
)
from adrecon_assets_tests.postgres import PASSWORD, PostgresServer, postgres_server

DAY = date(2026, 3, 1)
ROWS = pa.table(
    {
        "date": [DAY, DAY],
        "offer_id": ["o1", "o2"],
        "placement": ["p1", "p1"],
        "emissions": [10, 20],
        "clicks": [1, 2],
        "cost_micros": [100, 200],
        "fraud_clicks": [0, 1],
        "refund_micros": [0, 50],
    }
)


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of the test's own: it is stopped and started under the store."""
    with postgres_server() as server:
        yield server


def offline_replace() -> serving.DayReplace:
    return serving.DayReplace(
        serving.OFFER_PLACEMENT_STATS, DAY, ROWS, {"source": serving.OFFLINE_SOURCE}, "run-1"
    )


def test_the_waits_double_up_to_the_longest_and_fit_the_budget() -> None:
    assert list(reconnect_waits(40)) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert sum(reconnect_waits(300)) <= 300
    assert sum(reconnect_waits(300)) > 290


@pytest.mark.slow  # stops and starts a server twice: ~7 s
def test_a_replace_and_a_read_wait_for_a_server_that_comes_back(
    own_server: PostgresServer,
) -> None:
    store = PostgresServingStore(own_server.url(own_server.create_database()))
    store.create_tables()  # the store's connection is open when the server goes away
    own_server.stop()
    # Down 2 s: the first reconnect (after 1 s) fails, the second (after 2 s more) succeeds.
    down = 2.0
    restarter = threading.Timer(down, own_server.start)
    began = time.monotonic()
    restarter.start()
    try:
        assert store.replace_days([offline_replace()]) == 2
    finally:
        restarter.join()
    assert time.monotonic() - began >= down
    assert store.reconciled_days() == {DAY: "run-1"}

    own_server.stop()
    restarter = threading.Timer(down, own_server.start)
    restarter.start()
    try:
        assert store.day_totals(DAY) == serving.DayTotals("offline", 2, 30, 3, 300, 1, 50)
    finally:
        restarter.join()


@pytest.mark.slow  # stops a server: ~10 s
def test_past_the_budget_the_error_names_the_attempts_without_the_password(
    own_server: PostgresServer,
) -> None:
    url = own_server.url(own_server.create_database())
    own_server.stop()
    store = PostgresServingStore(url, connect_timeout_seconds=2, retry_budget_seconds=3)
    began = time.monotonic()
    with pytest.raises(ServingStoreError) as failure:
        store.fetch("SELECT 1")
    # Waits of 1 s and 2 s fit the budget of 3 s: three attempts.
    assert "after 3 attempts" in str(failure.value)
    assert 3 <= time.monotonic() - began < 10
    assert PASSWORD not in str(failure.value)
    own_server.start()


def test_a_bad_statement_fails_at_once(serving_url: str) -> None:
    store = PostgresServingStore(serving_url)
    began = time.monotonic()
    with pytest.raises(ServingStoreError, match="SyntaxError") as failure:
        store.fetch("SELEC 1")
    assert "attempts" not in str(failure.value)
    assert time.monotonic() - began < SERVING_RECONNECT_FIRST_WAIT_SECONDS
