"""Dagster's fixed cost: a whole `dagster asset materialize --select '*'` CLI run of a tiny day."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.dataset import FIRST_DAY
from benchmarks.measure import REPO_ROOT


def time_cli_run(lake: Path, work: Path, day: date) -> float:
    """Seconds of one CLI run (process start to exit) in a fresh DAGSTER_HOME and warehouse."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster_home").mkdir(parents=True)
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(work / "dagster_home"),
        "ADRECON_LAKE_ROOT": str(lake),
        "ADRECON_WAREHOUSE": str(work / "warehouse"),
        "ADRECON_SERVING_DB": str(work / "serving.duckdb"),
        "ADRECON_START_DATE": FIRST_DAY.isoformat(),
        "ADRECON_ENGINE": "polars",
    }
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "asset", "materialize", "-m", "adrecon_assets.definitions"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "--select", "*", "--partition", day.isoformat()],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"dagster CLI run failed:\n{result.stderr[-4000:]}")
    return seconds
