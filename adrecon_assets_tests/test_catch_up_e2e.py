"""Every day accounted for, end to end under `dagster dev` (webserver + daemon): a lake of 30
closed days that nobody reconciled (twice the default 14-day lookback) is reconciled without a
person, each day exactly once."""

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

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]

DAYS = [days_ago(count) for count in range(30, 0, -1)]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterDev]:
    for day in DAYS:  # one emission and its valid click a day, closed
        write_day(tmp_path / "lake", day)
    # The default lookback (14 days), whatever the environment says.
    with dagster_dev(tmp_path, monkeypatch, {"ADRECON_LATE_DATA_LOOKBACK_DAYS": None}) as server:
        yield server


def test_thirty_closed_days_nobody_reconciled_are_all_reconciled(
    dev: DagsterDev, tmp_path: Path
) -> None:
    started = time.monotonic()
    wait_for("the webserver", lambda: graphql_up(dev), 180, dev)

    def reconciled() -> Counter[date]:
        return materializations(dev.home, "reconciled_statistics")

    wait_for("all 30 days", lambda: set(reconciled()) >= set(DAYS), 600, dev)
    print(f"30 days reconciled {time.monotonic() - started:.0f} s after dagster dev started")
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
