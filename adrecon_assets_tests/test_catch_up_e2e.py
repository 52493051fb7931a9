"""Every day accounted for, end to end under `dagster dev` (webserver + daemon): a lake of closed
days that nobody reconciled, over twice as many as the late-data lookback, is reconciled without a
person, each day exactly once. The lookback is 2 days here (6 days in the lake, 4 of them beyond
it) rather than the default 14 (30 days): the same proof that the lookback does not bound
catch-up, with a fifth of the ranged run's per-day steps."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from adrecon_assets.serving import read_with_retry
from adrecon_assets_tests.sensor_lakes import days_ago, write_day
from adrecon_assets_tests.test_dagster_dev_e2e import (
    DagsterDev,
    dagster_dev,
    graphql_up,
    materializations,
    wait_for,
)

pytestmark = [pytest.mark.slow(seconds=60), pytest.mark.serial, pytest.mark.timeout(900)]

LOOKBACK_DAYS = 2
DAYS = [days_ago(count) for count in range(2 * LOOKBACK_DAYS + 2, 0, -1)]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterDev]:
    for day in DAYS:  # one emission and its valid click a day, closed
        write_day(tmp_path / "lake", day)
    # Whatever the environment says, the lookback is LOOKBACK_DAYS: the lake is over twice that.
    # The sensors tick at the shipped interval (30 s), not the e2e tests' 5 s: the readiness
    # sensor's first tick, at the daemon's start, launches the catch-up, and fewer ticks of the
    # other sensors while it runs save CPU.
    settings = {
        "ADRECON_LATE_DATA_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
        "ADRECON_SENSOR_INTERVAL_SECONDS": None,
    }
    with dagster_dev(tmp_path, monkeypatch, settings) as server:
        yield server


def test_closed_days_beyond_the_lookback_nobody_reconciled_are_all_reconciled(
    dev: DagsterDev, tmp_path: Path
) -> None:
    started = time.monotonic()
    wait_for("the webserver", lambda: graphql_up(dev), 180, dev)

    def reconciled() -> Counter[date]:
        return materializations(dev.home, "reconciled_statistics")

    wait_for(f"all {len(DAYS)} days", lambda: set(reconciled()) >= set(DAYS), 600, dev)
    seconds = time.monotonic() - started
    print(f"{len(DAYS)} days reconciled {seconds:.0f} s after dagster dev started")
    assert reconciled() == Counter(DAYS)  # each exactly once
    rows = read_with_retry(
        str(tmp_path / "serving.duckdb"),
        lambda connection: connection.execute(
            "SELECT date, sum(clicks), sum(cost_micros), min(source) "
            "FROM offer_placement_stats GROUP BY date"
        ).fetchall(),
    )
    # Each day: one valid click of offer o1 on `top` at 1000 micros, published offline.
    assert {row[0]: tuple(row[1:]) for row in rows} == {day: (1, 1000, "offline") for day in DAYS}
