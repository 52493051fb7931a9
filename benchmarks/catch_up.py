"""Issue 15 target 2: a catch-up of 30 demo-size days against Dagster's own per-run floor.

On one `dagster dev` instance (the project's dagster.yaml, a fresh DAGSTER_HOME), both launched
as the UI launches a job backfill (GraphQL `launchPartitionBackfill` with a partition-set
selector), timed from the backfill's creation to its end as the daemon records them:

(a) re-reconciling N consecutive days of R emission rows with `reconcile_days` (after a first
    pass that reconciled them once); the daily assets' `BackfillPolicy.single_run()` makes it
    one ranged run;
(b) a do-nothing daily asset over the same days, one run per day (`benchmarks/noop_location.py`).

Target: (a) <= 0.5 x (b), every day's serving rows equal to the reference SQL.

    python -m benchmarks.catch_up [--days 30] [--rows 200000] [--cache /work/benchcache]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import requests

from benchmarks.machine import describe
from benchmarks.measure import REPO_ROOT

FIRST_DAY = date(2026, 1, 1)
SEED = 7
CACHE = REPO_ROOT / "benchmarks" / "cache"
RESULTS = REPO_ROOT / "benchmarks" / "CATCH_UP.md"
TARGET_RATIO = 0.5
ADRECON_LOCATION, NOOP_LOCATION = "adrecon", "noop"
WORKSPACE = f"""load_from:
  - python_module:
      module_name: adrecon_assets.definitions
      location_name: {ADRECON_LOCATION}
  - python_module:
      module_name: benchmarks.noop_location
      location_name: {NOOP_LOCATION}
"""
LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status timestamp endTimestamp } ... on PythonError { message } } }"""
RUNS = """query($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]})
  { ... on Runs { results { status } } } }"""
DONE = {"COMPLETED", "COMPLETED_SUCCESS"}
FAILED = {"FAILED", "COMPLETED_FAILED", "CANCELED"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Backfill:
    seconds: float
    runs: int


class DevServer:
    """`dagster dev -w <workspace>` on a free port of 127.0.0.1, stopped by `stop()`."""

    def __init__(self, work: Path, environment: dict[str, str]) -> None:
        workspace = work / "workspace.yaml"
        workspace.write_text(WORKSPACE)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.log = (work / "dagster_dev.log").open("w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(workspace)]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self.url, json={"query": text, "variables": variables or {}})
        response.raise_for_status()
        body = response.json()
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return dict(body["data"])

    def wait_until_up(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("dagster dev exited; see dagster_dev.log")
            try:
                locations = self.query(
                    "{ workspaceOrError { ... on Workspace { locationEntries {"
                    " locationOrLoadError { __typename } } } } }"
                )["workspaceOrError"]["locationEntries"]
                loaded = [entry["locationOrLoadError"] for entry in locations]
                if len(loaded) == 2 and all(
                    entry and entry["__typename"] == "RepositoryLocation" for entry in loaded
                ):
                    return
            except (requests.RequestException, RuntimeError, KeyError, TypeError):
                pass
            time.sleep(2)
        raise RuntimeError(f"dagster dev did not answer within {timeout:.0f} s")

    def backfill(self, location: str, job: str, days: list[date]) -> Backfill:
        """Launch a job backfill of `days` as the UI does and wait for its end."""
        launched = self.query(
            LAUNCH,
            {
                "params": {
                    "selector": {
                        "partitionSetName": f"{job}_partition_set",
                        "repositorySelector": {
                            "repositoryLocationName": location,
                            "repositoryName": "__repository__",
                        },
                    },
                    "partitionNames": [day.isoformat() for day in days],
                }
            },
        )["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill of {job} not launched: {launched}")
        backfill_id = str(launched["backfillId"])
        while True:
            state = self.query(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            if state["status"] in FAILED:
                raise RuntimeError(f"backfill {backfill_id} of {job} ended {state['status']}")
            if state["status"] in DONE and state["endTimestamp"]:
                break
            time.sleep(1)
        runs = self.query(RUNS, {"id": backfill_id})["runsOrError"]["results"]
        return Backfill(float(state["endTimestamp"]) - float(state["timestamp"]), len(runs))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()


def demo_lake(days: int, rows: int, cache: Path) -> Path:
    """The simulated lake (and its online rows), generated once into the benchmark cache."""
    folder = cache / f"catch_up-{days}x{rows}"
    if not (folder / "serving.duckdb").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(
            [str(Path(sys.executable).parent / "adrecon-simulate")]
            + ["--lake", str(folder / "lake"), "--serving-db", str(folder / "serving.duckdb")]
            + ["--start", FIRST_DAY.isoformat(), "--days", str(days)]
            + ["--emissions-per-day", str(rows), "--seed", str(SEED)],
            check=True,
        )
    return folder


def mismatched_days(lake: Path, serving_db: Path, days: list[date]) -> list[date]:
    """Days whose serving rows differ from the independent reference SQL."""
    from adrecon_assets_tests.engine_runs import table_rows
    from adrecon_assets_tests.reference import STATS_COLUMNS, reference_day

    wrong = []
    with duckdb.connect(str(serving_db), read_only=True) as connection:
        for day in days:
            served = connection.execute(
                f"SELECT {', '.join(STATS_COLUMNS)} FROM offer_placement_stats "
                "WHERE date = ? AND source = 'offline'",
                [day],
            ).fetchall()
            expected, _ = reference_day(lake, day, FIRST_DAY)
            if sorted(served) != sorted(table_rows(expected)) or not served:
                wrong.append(day)
    return wrong


def run(days_count: int, rows: int, cache: Path = CACHE) -> str:
    machine = ", ".join(f"{key} {value}" for key, value in describe().items())
    cached = demo_lake(days_count, rows, cache)
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(days_count)]
    # Kept after the run (in the git-ignored cache) for its dagster_dev.log.
    work = CACHE / "catch_up-work"
    shutil.rmtree(work, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    shutil.copy(cached / "serving.duckdb", work / "serving.duckdb")
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(REPO_ROOT),
        "ADRECON_LAKE_ROOT": str(cached / "lake"),
        "ADRECON_WAREHOUSE": str(work / "warehouse"),
        "ADRECON_SERVING_DB": str(work / "serving.duckdb"),
        "ADRECON_START_DATE": FIRST_DAY.isoformat(),
        "ADRECON_ENGINE": "polars",
        # The sensors look at the days before yesterday, not at these: keep them quiet.
        "ADRECON_SENSOR_INTERVAL_SECONDS": "3600",
        "ADRECON_ALERT_WEBHOOK_URL": "",
    }
    server = DevServer(work, environment)
    try:
        server.wait_until_up()
        print(f"reconciling {days_count} days once (first pass) ...", flush=True)
        first = server.backfill(ADRECON_LOCATION, "reconcile_days", days)
        print(f"  {first.seconds:.1f} s in {first.runs} run(s); again (measured) ...")
        catch_up = server.backfill(ADRECON_LOCATION, "reconcile_days", days)
        print(f"  {catch_up.seconds:.1f} s in {catch_up.runs} run(s); do-nothing backfill ...")
        floor = server.backfill(NOOP_LOCATION, "noop_days", days)
        print(f"  {floor.seconds:.1f} s in {floor.runs} runs", flush=True)
    finally:
        server.stop()
    end_load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    wrong = mismatched_days(cached / "lake", work / "serving.duckdb", days)
    ratio = catch_up.seconds / floor.seconds
    verdict = "met" if ratio <= TARGET_RATIO and not wrong else "MISSED"
    return "\n".join(
        [
            "# Catch-up under `dagster dev` (issue 15, target 2)",
            "",
            f"`python -m benchmarks.catch_up --days {days_count} --rows {rows}"
            + (f" --cache {cache}" if cache != CACHE else "")
            + "` "
            f"(load average at the end {end_load})",
            "",
            f"Machine: {machine}",
            "",
            "| backfill (job backfill via GraphQL, as the UI) | runs | seconds |",
            "| --- | ---: | ---: |",
            f"| reconcile_days, first pass | {first.runs} | {first.seconds:.1f} |",
            f"| reconcile_days, again (measured) | {catch_up.runs} | {catch_up.seconds:.1f} |",
            f"| do-nothing daily asset, one run per day | {floor.runs} | {floor.seconds:.1f} |",
            "",
            f"Ratio {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}. Days differing from the "
            f"reference SQL: {', '.join(map(str, wrong)) or 'none'} (of {days_count}).",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=200_000, help="emission rows a day")
    parser.add_argument(
        "--cache", type=Path, default=CACHE, help="where the simulated lake is kept between runs"
    )
    arguments = parser.parse_args()
    report = run(arguments.days, arguments.rows, arguments.cache)
    RESULTS.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
