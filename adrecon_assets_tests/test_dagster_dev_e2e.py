"""End to end under `dagster dev` (webserver + daemon) with the project's dagster.yaml: a GraphQL
asset backfill of three days, then a late clicks file that late_data_sensor turns into one rerun
of that day (and the anomaly window after it) and of nothing else, then an asset backfill whose
target Dagster widens to the reconciled days after it. The sensors that act only on a fault, an
alert channel or the SLA are stopped from the UI's API first: none of those happens here, each
has its own end-to-end test, and their ticks were most of this test's CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from adrecon_assets.assets import CONTRACT_ASSET_NAMES
from adrecon_assets.jobs import RECONCILE_DAYS
from adrecon_assets.rules import Topic
from adrecon_assets.run_tags import LATE_DATA_BATCH_TAG, PARTITION_TAG
from adrecon_assets.serving import read_with_retry
from adrecon_assets_tests.dev_instance import write_dev_instance
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.postgres import free_port
from adrecon_assets_tests.process_group import stop_group
from adrecon_assets_tests.sensor_lakes import days_ago
from adrecon_assets_tests.split_dagster import DagsterServer, graphql

PROJECT = Path(__file__).resolve().parents[1]
DAYS = [days_ago(3), days_ago(2), days_ago(1)]
# The days end yesterday, and the widened backfill reaches the anomaly windows up to yesterday:
# across 00:00 UTC "yesterday" moves under the test (it takes 3-6 minutes).
DAYS_HOLD_FOR = timedelta(minutes=10)
LATE_DAY = DAYS[1]
CONTRACT_ASSETS = list(CONTRACT_ASSET_NAMES)
DONE_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS"}
WORKSPACE_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
FAILED_BACKFILL = {"FAILED", "COMPLETED_FAILED", "CANCELED"}
LATE_DATA_SENSOR = "late_data_sensor"
# Act only on a failed or dead run, an alert channel (none is set) or the SLA; under a daemon
# they are tested in test_production_faults (crash relaunch, dead run workers), test_alerts_e2e
# (alerts) and test_make_run (the demo's SLA notification and its resolution).
IDLE_SENSORS = (
    "alert_sensor",
    "crash_relaunch_sensor",
    "dead_run_worker_sensor",
    "reconciled_statistics_sla_sensor",
)

pytestmark = [pytest.mark.slow(seconds=240), pytest.mark.serial, pytest.mark.timeout(1800)]


def write_open_day(lake: Path, day: date) -> None:
    """One emission of the day (ids unique per day, cost 1000) and its valid click; no
    _SUCCESS, so the readiness sensor leaves the day to the backfill."""
    rows = [emission(f"e-{day}", "o1", "top", 1000, f"{day}T10:00:00")]
    write_topic(lake, Topic.EMISSIONS, day, rows, closed=False)
    clicks = [click(f"c-{day}", f"e-{day}", "o1", f"{day}T10:00:05")]
    write_topic(lake, Topic.CLICKS, day, clicks, closed=False)


class DagsterDev:
    """A `dagster dev` process group on 127.0.0.1 and its GraphQL endpoint."""

    def __init__(self, home: Path, env: dict[str, str], log: Path) -> None:
        self.home = home
        self.url = f"http://127.0.0.1:{free_port()}/graphql"
        port = self.url.split(":")[2].split("/")[0]
        self.log_path = log
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev"]
            + ["-m", "adrecon_assets.definitions", "-h", "127.0.0.1", "-p", port],
            cwd=PROJECT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, text, variables)

    def assert_running(self) -> None:
        assert self.process.poll() is None, "dagster dev exited"

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


def sensor_ticks(dev: DagsterDev, sensor: str) -> int:
    """How many ticks of `sensor` the daemon has started so far (its log says so at each)."""
    return dev.log_path.read_text().count(f"Checking for new runs for sensor: {sensor}")


def wait_for(what: str, condition: Callable[[], bool], timeout: float, dev: DagsterServer) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dev.assert_running()
        if condition():
            return
        time.sleep(3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def dagster_dev(
    root: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str | None]
) -> Iterator[DagsterDev]:
    """`dagster dev` on the lake, warehouse and serving DB under `root`, with its own
    DAGSTER_HOME (the project's dagster.yaml as dev_instance.py writes it) that the test reads
    too; `settings` adds or, with None, unsets variables. Stopped, with its log's end printed,
    when the block ends."""
    home = root / "dagster_home"
    # dagster.yaml reads DAGSTER_HOME; the test reads the same instance.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    write_dev_instance(home)
    env: dict[str, str] = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ADRECON_LAKE_ROOT": str(root / "lake"),
        "ADRECON_WAREHOUSE": str(root / "warehouse"),
        "ADRECON_SERVING_DB": str(root / "serving.duckdb"),
        "ADRECON_ENGINE": "polars",
        "ADRECON_SENSOR_INTERVAL_SECONDS": "5",
        "ADRECON_ALERT_WEBHOOK_URL": "",
    }
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    server = DagsterDev(home, env, root / "dagster_dev.log")
    try:
        yield server
    finally:
        server.stop()
        print((root / "dagster_dev.log").read_text()[-5000:])


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterDev]:
    now = datetime.now(UTC)
    if days_ago(1) != DAYS[-1] or (now + DAYS_HOLD_FOR).date() != now.date():
        pytest.skip(f"at {now:%H:%M} UTC the test's days would change before it ends")
    for day in DAYS:
        write_open_day(tmp_path / "lake", day)
    # Sensors every 10 s (5 s elsewhere): the late-data rerun waits one tick more, the runs and
    # the backfill daemon's 30 s loop set the pace, and each tick is CPU of the code server.
    settings = {"ADRECON_LATE_DATA_QUIET_SECONDS": "5", "ADRECON_SENSOR_INTERVAL_SECONDS": "10"}
    with dagster_dev(tmp_path, monkeypatch, settings) as server:
        yield server


def materializations(home: Path, asset: str) -> Counter[date]:
    """How many times each day of `asset` was materialized (read from the instance itself)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    return Counter(date.fromisoformat(str(record.partition_key)) for record in records)


def backfill_status(dev: DagsterDev, backfill_id: str) -> str:
    data = dev.query(
        "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
        " ... on PartitionBackfill { status } ... on PythonError { message } } }",
        {"id": backfill_id},
    )
    result = data["partitionBackfillOrError"]
    assert "status" in result, result
    return str(result["status"])


def backfill_done(dev: DagsterDev, backfill_id: str) -> bool:
    """Whether the backfill has finished; a failed or canceled one fails the test at once."""
    status = backfill_status(dev, backfill_id)
    assert status not in FAILED_BACKFILL, status
    return status in DONE_BACKFILL


def launch_asset_backfill(dev: DagsterDev, days: list[date]) -> str:
    """An asset backfill of the contract assets over `days`, as the asset graph launches one."""
    launched = dev.query(
        "mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams:"
        " $params) { __typename ... on LaunchBackfillSuccess { backfillId }"
        " ... on PythonError { message } } }",
        {
            "params": {
                "partitionNames": [day.isoformat() for day in days],
                "assetSelection": [{"path": [asset]} for asset in CONTRACT_ASSETS],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return str(launched["backfillId"])


def launch_day_run(dev: DagsterServer, day: date) -> str:
    """One run of the day job for `day`, as the job's launchpad starts one: it goes through the
    run queue only, not the backfill daemon (whose loop sleeps 30 s between iterations)."""
    (entry,) = dev.query(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
    launched = dev.query(
        "mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {"
        " __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }",
        {
            "params": {
                "selector": {
                    "repositoryLocationName": entry["name"],
                    "repositoryName": "__repository__",
                    "jobName": RECONCILE_DAYS,
                },
                "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": str(day)}]},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def run_done(dev: DagsterServer, run_id: str) -> bool:
    """Whether the run succeeded; a failed or canceled one fails the test at once."""
    data = dev.query(
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
    )
    status = str(data["runOrError"]["status"])
    assert status not in ("FAILURE", "CANCELED"), status
    return status == "SUCCESS"


def late_data_runs(dev: DagsterDev) -> list[tuple[str, str, str]]:
    """(partition, status, batch) of every run the late-data sensor requested."""
    data = dev.query(
        '{ runsOrError(filter: {tags: [{key: "adrecon/trigger", value: "late_data"}]}) {'
        " ... on Runs { results { status tags { key value } } } } }"
    )
    runs = []
    for run in data["runsOrError"]["results"]:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        runs.append((tags[PARTITION_TAG], run["status"], tags[LATE_DATA_BATCH_TAG]))
    return sorted(runs)


def stop_sensors(dev: DagsterServer, names: tuple[str, ...]) -> None:
    """Stop the sensors `names` as the UI's toggle does (a sensor running by default too)."""
    (entry,) = dev.query(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
    selector = {"repositoryLocationName": entry["name"], "repositoryName": "__repository__"}
    sensors = dev.query(
        "query($selector: RepositorySelector!) { sensorsOrError(repositorySelector: $selector)"
        " { ... on Sensors { results { id name } } } }",
        {"selector": selector},
    )["sensorsOrError"]["results"]
    ids = {sensor["name"]: sensor["id"] for sensor in sensors}
    for name in names:
        stopped = dev.query(
            "mutation($id: String!) { stopSensor(id: $id) { __typename"
            " ... on StopSensorMutationResult { instigationState { status } } } }",
            {"id": ids[name]},
        )["stopSensor"]
        assert stopped.get("instigationState") == {"status": "STOPPED"}, stopped


def serving_days(database: Path) -> dict[date, tuple[int, int, int, int, str]]:
    rows = read_with_retry(
        str(database),
        lambda connection: connection.execute(
            "SELECT date, sum(emissions), sum(clicks), sum(cost_micros), sum(fraud_clicks), "
            "string_agg(DISTINCT source, '+') FROM offer_placement_stats GROUP BY date"
        ).fetchall(),
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5]) for row in rows}


def test_backfill_then_late_clicks_rerun_exactly_the_affected_partitions(
    dev: DagsterDev, tmp_path: Path
) -> None:
    wait_for("the webserver", lambda: graphql_up(dev), 180, dev)
    wait_for("the code location", lambda: code_location_loaded(dev), 180, dev)
    stop_sensors(dev, IDLE_SENSORS)
    # What the global asset graph's "Materialize all…" sends: day names and an asset selection.
    # Dagster widens them along the partition mappings (joined_clicks of the day after, anomaly
    # windows of the week after); the last day is yesterday and today is not a partition yet,
    # so the target is exactly the three days.
    backfill_id = launch_asset_backfill(dev, DAYS)
    wait_for("the 3-day backfill", lambda: backfill_done(dev, backfill_id), 900, dev)
    serving_db = tmp_path / "serving.duckdb"
    # Each day: one emission of o1/top (1000 micros a click) and its valid click.
    assert serving_days(serving_db) == {day: (1, 1, 1000, 0, "offline") for day in DAYS}
    home = dev.home
    assert materializations(home, "reconciled_statistics") == Counter(DAYS)

    late = [click("c-late", f"e-{LATE_DAY}", "o1", f"{LATE_DAY}T11:00:00", user_id="u2")]
    write_topic(tmp_path / "lake", Topic.CLICKS, LATE_DAY, late, name="late-1", closed=False)

    # One batch: LATE_DAY's chain, then the anomaly window of the day after (it reads LATE_DAY).
    rerun_days = [LATE_DAY.isoformat(), DAYS[2].isoformat()]

    def rerun_done() -> bool:
        runs = late_data_runs(dev)
        assert all(status not in ("FAILURE", "CANCELED") for _, status, _ in runs), runs
        return [day for day, _, _ in runs] == rerun_days and all(
            status == "SUCCESS" for _, status, _ in runs
        )

    wait_for("the late-data rerun", rerun_done, 600, dev)
    assert len({batch for _, _, batch in late_data_runs(dev)}) == 1
    # The late click of LATE_DAY is valid too: two clicks, 2000 micros; the other days unchanged.
    expected = {day: (1, 1, 1000, 0, "offline") for day in DAYS}
    expected[LATE_DAY] = (1, 2, 2000, 0, "offline")
    assert serving_days(serving_db) == expected
    assert materializations(home, "raw_clicks") == Counter(DAYS + [LATE_DAY])
    assert materializations(home, "raw_emissions") == Counter(DAYS)
    reconciled_before = materializations(home, "reconciled_statistics")
    assert reconciled_before == Counter(DAYS + [LATE_DAY])
    # anomaly_metrics of the day after reads LATE_DAY in its trailing window, so it follows.
    anomalies_before = materializations(home, "anomaly_metrics")
    assert anomalies_before == Counter(DAYS + [LATE_DAY, DAYS[2]])

    # An asset backfill of the first day alone also targets the days that read it (joined_clicks
    # of the next day, the anomaly windows up to yesterday); they were reconciled before, so
    # they are recomputed, not skipped, and the backfill succeeds. Meanwhile (the backfill
    # daemon sleeps 30 s between iterations) the late-data sensor ticks three more times: the
    # rerun recorded the new fingerprint, nothing more is asked.
    ticks = sensor_ticks(dev, LATE_DATA_SENSOR)
    widened = launch_asset_backfill(dev, DAYS[:1])
    wait_for("the widened backfill", lambda: backfill_done(dev, widened), 600, dev)
    wait_for("3 more ticks", lambda: sensor_ticks(dev, LATE_DATA_SENSOR) > ticks + 3, 120, dev)
    assert backfill_status(dev, widened) == "COMPLETED_SUCCESS"
    assert [day for day, _, _ in late_data_runs(dev)] == rerun_days
    # Exactly the widened days: no late-data rerun came in between.
    assert materializations(home, "reconciled_statistics") - reconciled_before == Counter(DAYS[:2])
    assert materializations(home, "anomaly_metrics") - anomalies_before == Counter(DAYS)
    assert serving_days(serving_db) == expected


def code_location_loaded(dev: DagsterServer) -> bool:
    """Whether the webserver has loaded the code location."""
    data = dev.query("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }")
    entries = data["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


def graphql_up(dev: DagsterServer) -> bool:
    try:
        return bool(dev.query("{ version }")["version"])
    except (requests.RequestException, ValueError):
        return False
