"""Faults under the production processes (deploy/: supervisord running the gRPC code server, the
daemon and the webserver; Dagster's storage and the serving store on PostgreSQL) while a
`reconcile_days` backfill of 8 days runs: SIGKILL the daemon, restart PostgreSQL, SIGKILL the
code server, SIGKILL a run's worker. After each the backfill makes progress again (the recovery
time is printed), and in the end it completes, every day is exact and no day ran twice at once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets.partitions import first_day
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.postgres import PASSWORD, PostgresServer
from adrecon_assets_tests.production import ProductionStack, wait_for
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

DAYS = 8
BACKFILL_ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def dagster_url(url: str) -> str:
    """What `make prod` gives Dagster: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3,
    which dagster-postgres does not support; its own driver is psycopg2."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


@pytest.fixture
def stack(
    tmp_path: Path, paths: Paths, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProductionStack]:
    instance_url = dagster_url(postgres.url(postgres.create_database()))
    serving_url = postgres.url(postgres.create_database())
    env = {
        **os.environ,
        "ADRECON_DAGSTER_PG_URL": instance_url,
        "ADRECON_SERVING_URL": serving_url,
        "ADRECON_ENGINE": "polars",
    }
    production = ProductionStack(tmp_path / "production", env)
    # The test reads the same instance (public API) through the same dagster.yaml.
    monkeypatch.setenv("DAGSTER_HOME", str(production.home))
    monkeypatch.setenv("ADRECON_DAGSTER_PG_URL", instance_url)
    production.start()
    try:
        yield production
    finally:
        production.stop()


def launch_backfill(stack: ProductionStack, days: list[date]) -> str:
    launched = stack.query(
        "mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams:"
        " $params) { __typename ... on LaunchBackfillSuccess { backfillId }"
        " ... on PythonError { message } } }",
        {
            "params": {
                "selector": {
                    "partitionSetName": "reconcile_days_partition_set",
                    "repositorySelector": {
                        "repositoryLocationName": "adrecon",
                        "repositoryName": "__repository__",
                    },
                },
                "partitionNames": [day.isoformat() for day in days],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return str(launched["backfillId"])


class Backfill:
    """The runs of one backfill, read from the instance (PostgreSQL) with public APIs."""

    def __init__(self, stack: ProductionStack, backfill_id: str) -> None:
        self.stack = stack
        self.backfill_id = backfill_id

    def runs(self) -> list[dg.RunRecord]:
        with dg.DagsterInstance.get() as instance:
            return list(
                instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": self.backfill_id}))
            )

    def status(self) -> str:
        result = self.stack.query(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
            " ... on PartitionBackfill { status } ... on PythonError { message } } }",
            {"id": self.backfill_id},
        )["partitionBackfillOrError"]
        return str(result.get("status"))

    def started_run(self) -> bool:
        return any(r.dagster_run.status == dg.DagsterRunStatus.STARTED for r in self.runs())

    def succeeded_after(self, moment: float) -> bool:
        """A run that started after `moment` (epoch seconds) has succeeded."""
        return any(
            r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
            and r.start_time is not None
            and r.start_time > moment
            for r in self.runs()
        )

    def not_finished(self) -> None:
        assert self.status() not in BACKFILL_ENDED, "backfill ended too early"


def killed_worker_day(stack: ProductionStack, backfill: Backfill) -> str:
    """SIGKILL the worker of the run executing its steps; returns that run's day."""
    (running,) = [r for r in backfill.runs() if r.dagster_run.status == dg.DagsterRunStatus.STARTED]
    for worker in stack.run_workers():
        worker.kill()
    return running.dagster_run.tags["dagster/partition"]


def run_table(records: list[dg.RunRecord]) -> str:
    return "\n".join(
        f"{r.dagster_run.tags.get('dagster/partition')} {r.dagster_run.status.value} "
        f"{r.start_time} {r.end_time} {r.dagster_run.run_id}"
        for r in sorted(records, key=lambda r: r.create_timestamp)
    )


def test_backfill_survives_process_and_database_faults(
    stack: ProductionStack, paths: Paths, postgres: PostgresServer
) -> None:
    days = [first_day() + timedelta(days=offset) for offset in range(DAYS)]
    build_random_lake(paths.lake, days[0], DAYS, seed=20261129)
    wait_for("the production processes", stack.ready, 180)
    backfill = Backfill(stack, launch_backfill(stack, days))
    recoveries: dict[str, float] = {}

    def fault(name: str, inject: Callable[[], object]) -> float:
        """Inject a fault while a run executes its steps; returns when."""
        wait_for(
            "a run executing its steps",
            lambda: backfill.started_run() and bool(stack.run_workers()),
            300,
            0.5,
        )
        time.sleep(2)
        backfill.not_finished()
        moment = time.time()
        inject()
        return moment

    def recovered(name: str, moment: float) -> None:
        """Recovered once a run started after the fault succeeds (new work is taken again)."""
        recoveries[name] = (
            time.time()
            - moment
            + wait_for(f"progress after: {name}", lambda: backfill.succeeded_after(moment), 600, 2)
        )

    try:
        wait_for("a first reconciled day", lambda: backfill.succeeded_after(0), 600, 2)
        recovered("SIGKILL daemon", fault("SIGKILL daemon", lambda: stack.kill("daemon")))
        # The code server marks the killed run failed, the daemon retries it (run_retries); the
        # retry queues behind the backfill's other days, so its recovery is checked last.
        killed: list[str] = []
        worker_moment = fault(
            "SIGKILL run worker", lambda: killed.append(killed_worker_day(stack, backfill))
        )
        recovered("restart PostgreSQL", fault("restart PostgreSQL", postgres.restart))
        recovered(
            "SIGKILL code server", fault("SIGKILL code server", lambda: stack.kill("code_server"))
        )
        (day,) = killed
        recoveries[f"SIGKILL run worker ({day}, retried last)"] = time.time() - worker_moment
        recoveries[f"SIGKILL run worker ({day}, retried last)"] += wait_for(
            f"the retry of {day}",
            lambda: any(
                r.dagster_run.tags["dagster/partition"] == day
                and r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                and (r.start_time or 0) > worker_moment
                for r in backfill.runs()
            ),
            600,
            2,
        )
        # Dagster reports a backfill with a failed run COMPLETED_FAILED even when the run's
        # retry succeeded; what matters is below: every day's latest run succeeded.
        wait_for("the backfill to finish", lambda: backfill.status() in BACKFILL_ENDED, 600, 3)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nruns:\n{run_table(backfill.runs())}") from None
    for name, seconds in recoveries.items():
        print(f"\n{name}: progress again after {seconds:.0f} s")

    runs = backfill.runs()
    by_day: dict[str, list[dg.RunRecord]] = {}
    for record in runs:
        by_day.setdefault(record.dagster_run.tags["dagster/partition"], []).append(record)
    assert sorted(by_day) == [day.isoformat() for day in days]
    assert backfill.status() != "CANCELED"
    for day, records in by_day.items():
        latest = max(records, key=lambda r: r.create_timestamp)
        assert latest.dagster_run.status == dg.DagsterRunStatus.SUCCESS, day
        spans = sorted((r.start_time or 0, r.end_time or float("inf")) for r in records)
        for (_, previous_end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= previous_end, f"{day} ran twice at once: {spans}"
    assert any(r.dagster_run.status == dg.DagsterRunStatus.FAILURE for r in runs)

    store = ServingResource(url=stack.env["ADRECON_SERVING_URL"]).get_store()
    for day in days:
        assert serving_rows(store, day) == expected_rows(paths, day), day
    assert set(store.reconciled_days()) == set(days)
    logs = "".join(path.read_text() for path in (stack.root / "prod").glob("*.log"))
    assert PASSWORD not in logs
