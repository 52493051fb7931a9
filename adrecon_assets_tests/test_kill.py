"""SIGKILL a real `dagster asset materialize` of a simulated day at random points.

After every kill each warehouse output of the day and each serving table's day must be the
complete old version (the lake before its late files) or the complete new one (with them), never
missing or torn; a last, uninterrupted run must converge to the new version exactly and leave no
leftovers beside any output. The phase each kill landed in is read from the run's own log lines.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from adrecon_assets.assets.audit import PUBLISHING_MARK
from adrecon_assets.rules import Topic
from adrecon_assets.serving import (
    OFFER_PLACEMENT_STATS,
    PLACEMENT_ANOMALIES,
    PLACEMENT_PERFORMANCE,
    REFUND_LEDGER,
)
from adrecon_assets.warehouse import Dataset, Warehouse, leftovers
from adrecon_assets_tests.reference import reference_day
from adrecon_simulate import SimulationConfig, simulate

DAY = date(2026, 1, 1)
# Each kill is a whole CLI start (~8 s on 2 cores, over half of it the start before the first
# step): one aimed at each of the 6 publications (fired when a step logs its audit passed), then
# 3 at a uniformly random instant of the run's steps (staging, audits, between steps). Was 20
# kills (8 aimed): 169 s; then 12 (6 random): 117 s.
PUBLICATIONS = 6
# 100k emission rows (~2.9k clicks, 22k online rows): a full run ~14 CPU s instead of 1M's ~24.
# Each publication (warehouse swap, serving write, metadata) still lasts a second or more, far
# longer than the 0-40 ms an aimed kill waits, so the kills still land inside it.
EMISSIONS = 100_000
RANDOM_KILLS = 3
KILLS = PUBLICATIONS + RANDOM_KILLS
SERVING_TABLES = [OFFER_PLACEMENT_STATS, PLACEMENT_ANOMALIES, PLACEMENT_PERFORMANCE, REFUND_LEDGER]

# A generous limit: on a loaded machine (load average 35 on 2 cores) 12 kills outlasted 600 s.
pytestmark = [pytest.mark.slow(seconds=120), pytest.mark.serial, pytest.mark.timeout(1800)]


@dataclass
class Run:
    """One CLI run: its log lines (as they arrive) and when its first step started."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    first_step: threading.Event = field(default_factory=threading.Event)
    publishing: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    startup_seconds: float = 0.0  # process start to its first STEP_START (imports, loading)

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "STEP_START" in line and not self.first_step.is_set():
                self.startup_seconds = time.monotonic() - self.started
                self.first_step.set()
            if PUBLISHING_MARK in line:
                self.publishing.set()


def start_run(environment: dict[str, str]) -> tuple[Run, threading.Thread]:
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize"]
    command += ["-m", "adrecon_assets.definitions", "--select", "*"]
    command += ["--partition", DAY.isoformat()]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    run = Run(process)
    reader = threading.Thread(target=run.read, daemon=True)
    reader.start()
    return run, reader


def run_to_end(environment: dict[str, str]) -> Run:
    run, reader = start_run(environment)
    assert run.process.wait(timeout=300) == 0, "".join(run.lines[-30:])
    reader.join()
    return run


def phase_of(lines: list[str]) -> str:
    """Where the run was when it died: the step it was in, and whether that step had passed its
    audit and was publishing (warehouse swap, serving write) or still computing/auditing."""
    step, publishing = None, False
    for line in lines:
        if "STEP_START" in line:
            # "<time> - dagster - DEBUG - <job> - <run id> - <pid> - <step> - STEP_START - ..."
            step, publishing = line.split(" - ")[6].strip(), False
        elif "STEP_SUCCESS" in line:
            step = None
        elif PUBLISHING_MARK in line:
            publishing = True
        elif "RUN_SUCCESS" in line:
            return "after the run succeeded"
    if step is None:
        return "between steps (or before the first)"
    stage = "audit passed: swap, serving write, metadata" if publishing else "staging/audit"
    return f"{step}: {stage}"


def digest(folder: Path) -> tuple[int, int]:
    """Rows and an order-independent checksum of a Parquet folder (read through its link)."""
    assert folder.is_dir(), f"{folder} is missing"
    files = Warehouse.files(folder)
    if not files:
        return (0, 0)
    rows = pl.read_parquet(files)
    return rows.height, int(rows.hash_rows().sum())


def outputs(warehouse: Warehouse) -> dict[str, Path]:
    folders = {dataset.value: warehouse.folder(dataset, DAY) for dataset in Dataset}
    for topic in Topic:
        folders[f"quarantine/{topic.value}"] = warehouse.quarantine_folder(topic, DAY)
    return folders


def snapshot(warehouse: Warehouse, database: Path) -> dict[str, object]:
    """Every output of the day as comparable values (serving rows without updated_at)."""
    state: dict[str, object] = {name: digest(folder) for name, folder in outputs(warehouse).items()}
    with duckdb.connect(str(database)) as connection:
        for table in SERVING_TABLES:
            columns = ", ".join(c for c in table.column_names if c != "updated_at")
            state[table.name] = connection.execute(
                f"SELECT {columns} FROM {table.name} WHERE date = ? ORDER BY ALL", [DAY]
            ).fetchall()
        state["reconciled_days"] = connection.execute(
            "SELECT count(*) FROM reconciled_days WHERE date = ?", [DAY]
        ).fetchall()
    return state


@pytest.fixture
def simulated(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A simulated day of EMISSIONS emission rows with its late files held back (the old
    version)."""
    lake, database, home = tmp_path / "lake", tmp_path / "serving.duckdb", tmp_path / "home"
    home.mkdir()
    # In this process: the CLI's start-up (imports) would only add CPU.
    simulate(
        SimulationConfig(
            lake=lake,
            serving_db=database,
            start=DAY,
            days=1,
            emissions_per_day=EMISSIONS,
            seed=11,
            ctr_scale=3,
        )
    )
    held_back = tmp_path / "late"
    held_back.mkdir()
    for late in sorted(lake.glob("*/date_partition=*/late-*.parquet")):
        topic = late.parent.parent.name
        (held_back / topic).mkdir(exist_ok=True)
        shutil.move(late, held_back / topic / late.name)
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ADRECON_LAKE_ROOT": str(lake),
        "ADRECON_WAREHOUSE": str(tmp_path / "warehouse"),
        "ADRECON_SERVING_DB": str(database),
        "ADRECON_START_DATE": DAY.isoformat(),
    }
    environment.pop("ADRECON_ALERT_WEBHOOK_URL", None)
    yield environment, held_back


def test_sigkill_at_random_points_never_tears_a_day(
    simulated: tuple[dict[str, str], Path],
) -> None:
    environment, held_back = simulated
    warehouse = Warehouse(Path(environment["ADRECON_WAREHOUSE"]))
    database = Path(environment["ADRECON_SERVING_DB"])
    lake = Path(environment["ADRECON_LAKE_ROOT"])

    old_run = run_to_end(environment)
    old = snapshot(warehouse, database)
    step_seconds = steps_duration(old_run)
    print(
        f"\nold version: {old_run.startup_seconds:.1f} s to the first step,"
        f" steps {step_seconds:.1f} s"
    )
    # The late files arrive: every kill below interrupts the run that publishes the new version.
    for topic_folder in held_back.iterdir():
        for late in topic_folder.iterdir():
            shutil.move(late, lake / topic_folder.name / f"date_partition={DAY}" / late.name)

    randomness = random.Random(20260101)
    random_span = step_seconds
    seen: list[dict[str, object]] = []
    phases: Counter[str] = Counter()
    started = time.monotonic()
    for kill in range(KILLS):
        run, reader = start_run(environment)
        assert run.first_step.wait(timeout=120), "".join(run.lines[-30:])
        if kill < PUBLICATIONS:
            run.publishing.clear()
            # Each of the 6 publications in turn (raw_clicks, raw_emissions,
            # reconciled_statistics, anomaly_metrics and the two reports): skip the ones before
            # it, then kill 0-40 ms into it.
            for _ in range(kill % PUBLICATIONS):
                run.publishing.wait(timeout=300)
                run.publishing.clear()
            run.publishing.wait(timeout=300)
            if kill == PUBLICATIONS - 1:
                # The random kills below fall between the first step's start and the last
                # publication, as this run of the new version took them: the old run's steps
                # are slower (its serving writes also delete the online rows), and a kill drawn
                # from them landed after the new run's end (a whole run that proves nothing).
                random_span = time.monotonic() - run.started - run.startup_seconds
            time.sleep(randomness.uniform(0, 0.04))
        else:
            time.sleep(randomness.uniform(0, random_span))
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(timeout=30)
        reader.join(timeout=30)
        phase = phase_of(run.lines)
        print(
            f"kill {kill}: {time.monotonic() - run.started:.1f} s after the start"
            f" ({run.startup_seconds:.1f} s to the first step), {phase}"
        )
        phases[phase] += 1
        seen.append(snapshot(warehouse, database))

    new_run = run_to_end(environment)
    new = snapshot(warehouse, database)
    report = "\n".join(f"  {count:2d}  {phase}" for phase, count in sorted(phases.items()))
    print(f"\n{KILLS} kills in {time.monotonic() - started:.0f} s, by phase:\n{report}")

    assert new != old, "the late files must change the day"
    for number, state in enumerate(seen):
        for name, value in state.items():
            assert value in (old[name], new[name]), f"kill {number}: {name} is torn"
    # Converged to the exact rows: the serving day equals the reference SQL over the full lake.
    assert "RUN_SUCCESS" in "".join(new_run.lines)
    expected, _ = reference_day(lake, DAY, DAY)
    assert new[OFFER_PLACEMENT_STATS.name] == [
        (*row.values(), "offline") for row in expected.to_pylist()
    ]
    for name, folder in outputs(warehouse).items():
        assert leftovers(folder) == [], f"{name} has leftovers"
    assert not list(Path(environment["ADRECON_WAREHOUSE"]).rglob(".*staging-*"))
    assert sum(phases.values()) == KILLS
    assert sum(count for phase, count in phases.items() if "audit passed" in phase) >= 3


def steps_duration(run: Run) -> float:
    """Seconds from the first STEP_START to RUN_SUCCESS, from the log lines' timestamps."""
    stamps = [
        time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        for line in run.lines
        if "STEP_START" in line or "RUN_SUCCESS" in line
    ]
    return max(stamps) - min(stamps) + 0.5
