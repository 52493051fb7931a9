"""`make demo` (what `make run` runs after installing) shared by the tests that need it: one
demo per test session serves test_make_run (the newcomer's quiet catch-up) and the README
screenshots (its pages), instead of one demo start-up (~80 s on 2 cores) each."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import unittest.mock as mock
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import requests

from adrecon_assets_tests.postgres import free_port

PROJECT = Path(__file__).resolve().parents[1]
DEMO_DAYS = 14
STARTUP_SECONDS = 300  # simulating the lake, then dg dev's processes on a busy 2-core machine
RECONCILED_WITHIN_SECONDS = 180
REPORT_ASSETS = [
    "reconciled_statistics",
    "anomaly_metrics",
    "placement_performance",
    "refund_ledger",
]


class MakeRun:
    """`make demo` in its own process group, its terminal output in a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "dagster_home"
        self.data = tmp_path / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = tmp_path / "make_run.log"
        # The venv running the tests, named as the Makefile's default when it is that one.
        venv = PROJECT / ".venv"
        if venv.resolve() != Path(sys.prefix).resolve():
            venv = Path(sys.prefix)
        with self.output.open("w") as terminal:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "demo", f"VENV={venv}"]
                + [f"DEMO_DATA={self.data}", f"DAGSTER_HOME={self.home}", f"PORT={self.port}"],
                cwd=PROJECT,
                env={**os.environ, "PYTHONPATH": str(PROJECT)},
                stdout=terminal,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @contextlib.contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The server's instance, read from the test (its dagster.yaml reads $DAGSTER_HOME)."""
        with (
            mock.patch.dict(os.environ, {"DAGSTER_HOME": str(self.home)}),
            dg.DagsterInstance.from_config(str(self.home)) as instance,
        ):
            yield instance

    def answers(self) -> bool:
        assert self.process.poll() is None, self.output.read_text()[-3000:]
        try:
            return requests.get(f"{self.url}/server_info", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # dg dev's children, if any are left
        self.process.wait(timeout=30)


def demo_days() -> list[date]:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return [yesterday - timedelta(days=offset) for offset in range(DEMO_DAYS - 1, -1, -1)]


def unreconciled(instance: dg.DagsterInstance, days: list[date]) -> dict[str, list[date]]:
    """For each report asset, the demo days it has no materialization of yet."""
    missing = {}
    for asset in REPORT_ASSETS:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
        done = {date.fromisoformat(str(record.partition_key)) for record in records}
        if set(days) - done:
            missing[asset] = sorted(set(days) - done)
    return missing


def failed_checks(instance: dg.DagsterInstance) -> list[str]:
    failed = []
    for run in instance.get_runs():
        for entry in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ):
            evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
            if isinstance(evaluation, dg.AssetCheckEvaluation) and not evaluation.passed:
                failed.append(f"{evaluation.check_name} {evaluation.partition}")
    return failed


@dataclass(frozen=True)
class DemoCatchUp:
    """The demo and what it showed at the moment its catch-up had reconciled every demo day
    (later tests, such as the screenshots' backfill, add runs and terminal lines)."""

    server: MakeRun
    # Seconds from the UI answering until every demo day was reconciled.
    reconciled_after: float
    # Demo days still unreconciled when the wait gave up (empty when it did not).
    missing: dict[str, list[date]]
    failed_checks: list[str]
    terminal: list[str]
    # When `make demo` was started and when every demo day was reconciled (UTC).
    started_at: datetime
    reconciled_at: datetime


# Time to give up on the catch-up: twice the promise, so the test asserting the promise fails
# with its figures rather than the fixture erroring.
CATCH_UP_TIMEOUT_SECONDS = 2 * RECONCILED_WITHIN_SECONDS


@pytest.fixture(scope="session")
def make_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoCatchUp]:
    """`make demo` on a fresh demo lake, after the sensors' catch-up (conftest runs the modules
    that use it last, so the idle demo never loads the machine under other serial tests)."""
    server = MakeRun(tmp_path_factory.mktemp("make_demo"))
    try:
        started, started_at = time.monotonic(), datetime.now(UTC)
        while not server.answers():
            assert time.monotonic() - started < STARTUP_SECONDS, "the UI never answered"
            time.sleep(1)
        answered = time.monotonic()
        days = demo_days()
        with server.instance() as instance:
            while missing := unreconciled(instance, days):
                if time.monotonic() - answered > CATCH_UP_TIMEOUT_SECONDS:
                    break
                time.sleep(3)
            seconds = time.monotonic() - answered
            failed = failed_checks(instance)
        terminal = server.output.read_text().splitlines()
        yield DemoCatchUp(server, seconds, missing, failed, terminal, started_at, datetime.now(UTC))
    finally:
        server.stop()
        print(server.output.read_text()[-5000:])
