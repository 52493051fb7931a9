"""Every day accounted for, end to end under `dagster dev` (webserver + daemon): a lake of 30
closed days that nobody reconciled (twice the default 14-day lookback) is reconciled without a
person, each day exactly once."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from adrecon_assets.serving import read_with_retry
from adrecon_assets_tests.sensor_lakes import days_ago, write_day
from adrecon_assets_tests.test_dagster_dev_e2e import (
    PROJECT,
    DagsterDev,
    graphql_up,
    materializations,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]

DAYS = [days_ago(count) for count in range(30, 0, -1)]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterDev]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # dagster.yaml reads DAGSTER_HOME; the test reads the same instance.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    for day in DAYS:  # one emission and its valid click a day, closed
        write_day(tmp_path / "lake", day)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ADRECON_LAKE_ROOT": str(tmp_path / "lake"),
        "ADRECON_WAREHOUSE": str(tmp_path / "warehouse"),
        "ADRECON_SERVING_DB": str(tmp_path / "serving.duckdb"),
        "ADRECON_ENGINE": "polars",
        "ADRECON_SENSOR_INTERVAL_SECONDS": "5",
        "ADRECON_ALERT_WEBHOOK_URL": "",
    }
    env.pop("ADRECON_LATE_DATA_LOOKBACK_DAYS", None)  # the default, 14
    server = DagsterDev(home, env, tmp_path / "dagster_dev.log")
    try:
        yield server
    finally:
        server.stop()
        print((tmp_path / "dagster_dev.log").read_text()[-5000:])


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
