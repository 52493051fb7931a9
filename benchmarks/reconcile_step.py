"""Issue 24: the `reconciled_statistics` step alone, its seconds and peak RSS, on both stores.

    python -m benchmarks.reconcile_step LAKE WORK DAY [duckdb|postgresql ...]

Per store: one whole `dagster asset materialize --select '*'` run of DAY (publishes the day),
then `--select reconciled_statistics` again, measured: a rerun audits the day against its
previous rows and replaces them, the costliest case (every key read back from the store, the
drift compared key by key, the day written again). PostgreSQL is a throwaway local server.
Prints one JSON line per store: the step's seconds (Dagster's log), the CLI process's seconds
and the peak RSS of its largest process (the run executes its steps in that process)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from benchmarks.dataset import FIRST_DAY
from benchmarks.measure import REPO_ROOT
from benchmarks.workload import step_seconds, timed_cli_run


@contextmanager
def serving_setting(store: str, work: Path) -> Iterator[dict[str, str]]:
    if store == "duckdb":
        yield {"ADRECON_SERVING_DB": str(work / "serving.duckdb")}
        return
    from adrecon_assets_tests.postgres import postgres_server

    with postgres_server() as server:
        yield {"ADRECON_SERVING_URL": server.url(server.create_database())}


def measure_store(lake: Path, work: Path, day: date, store: str) -> dict[str, object]:
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster_home").mkdir(parents=True)
    with serving_setting(store, work) as serving:
        environment = {
            **os.environ,
            "DAGSTER_HOME": str(work / "dagster_home"),
            "ADRECON_LAKE_ROOT": str(lake),
            "ADRECON_WAREHOUSE": str(work / "warehouse"),
            "ADRECON_START_DATE": FIRST_DAY.isoformat(),
            "ADRECON_ENGINE": "polars",
            **serving,
        }
        environment.pop("ADRECON_SERVING_URL" if store == "duckdb" else "ADRECON_SERVING_DB", None)
        timed_cli_run("*", day, environment, work / "first.log", REPO_ROOT)
        # Each store in a fresh child of its own: RUSAGE_CHILDREN is the largest child's peak.
        return json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.reconcile_step",
                    "--measure",
                    str(work),
                    str(day),
                ],
                env=environment,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        ) | {"store": store}


def measured_rerun(work: Path, day: date) -> dict[str, object]:
    """The measured rerun of reconciled_statistics, in this (fresh) process's only child."""
    log = work / "rerun.log"
    seconds = timed_cli_run("reconciled_statistics", day, dict(os.environ), log, REPO_ROOT)
    steps = step_seconds(log.read_text(errors="replace"))
    return {
        "step_seconds": steps.get("reconciled_statistics"),
        "process_seconds": round(seconds, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2),
    }


def main(argv: list[str]) -> None:
    if argv[0] == "--measure":
        print(json.dumps(measured_rerun(Path(argv[1]), date.fromisoformat(argv[2]))))
        return
    lake, work, day = Path(argv[0]), Path(argv[1]), date.fromisoformat(argv[2])
    for store in argv[3:] or ["duckdb", "postgresql"]:
        print(json.dumps(measure_store(lake, work / store, day, store)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
