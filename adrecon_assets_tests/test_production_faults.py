"""Faults under the production processes (deploy/: supervisord running the gRPC code server, the
daemon and the webserver; Dagster's storage and the serving store on PostgreSQL) while a
`reconcile_days` backfill of 12 days runs (one ranged run): SIGKILL the daemon, restart
PostgreSQL, SIGKILL the code server, SIGKILL the run's worker. Each recovery time is printed; in
the end the backfill's last run succeeded, every day is exact and no day ran twice at once."""

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
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows
from adrecon_simulate import SimulationConfig, simulate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

DAYS = 12
# About two seconds a day on a quiet machine: a run of the 12 days outlasts the faults.
EMISSIONS_PER_DAY = 150_000
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
        """A run of the backfill is executing (STARTED)."""
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


def run_table(records: list[dg.RunRecord]) -> str:
    return "\n".join(
        f"{r.dagster_run.status.value} {r.start_time} {r.end_time} {r.dagster_run.run_id}"
        for r in sorted(records, key=lambda r: r.create_timestamp)
    )


def daemon_heartbeat_after(moment: float) -> bool:
    with dg.DagsterInstance.get() as instance:
        beats = instance.get_daemon_heartbeats().values()
    return bool(beats) and all(beat.timestamp > moment for beat in beats)


@pytest.mark.parametrize(
    "kill_code_server",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.xfail(
                run=False,
                reason=(
                    "Dagster 1.13: SIGKILL of the code server fails the running run, and the "
                    "daemon's automatic retry, tried while supervisor restarts the code server, "
                    "is logged 'Failed to retry run' and dropped (seen here after the move to "
                    "single-run backfills); the day needs a manual re-launch"
                ),
            ),
            id="with_code_server_kill",
        ),
    ],
    ids=lambda value: "with_code_server_kill" if value else "daemon_postgres_worker",
)
def test_backfill_survives_process_and_database_faults(
    stack: ProductionStack, paths: Paths, postgres: PostgresServer, kill_code_server: bool
) -> None:
    """The backfill is one ranged run (`BackfillPolicy.single_run()`): the faults hit that run
    one after the other while it computes the days."""
    days = [first_day() + timedelta(days=offset) for offset in range(DAYS)]
    # Simulated days of a few seconds each: the ranged run lasts long enough for the faults
    # to hit it while it computes (a tiny random lake finished before the second fault).
    simulate(
        SimulationConfig(
            lake=paths.lake,
            serving_db=None,
            start=days[0],
            days=DAYS,
            emissions_per_day=EMISSIONS_PER_DAY,
            seed=20261129,
            ctr_scale=3,
        )
    )
    wait_for("the production processes", stack.ready, 180)
    backfill = Backfill(stack, launch_backfill(stack, days))
    recoveries: dict[str, float] = {}

    def executing_after(moment: float) -> Callable[[], bool]:
        """A run of the backfill that started after `moment` is executing its steps."""

        def check() -> bool:
            return any(
                r.dagster_run.status == dg.DagsterRunStatus.STARTED
                and r.start_time is not None
                and r.start_time > moment
                for r in backfill.runs()
            ) and bool(stack.orphaned_run_workers())

        return check

    try:
        # PostgreSQL first, while the daemon is submitting the backfill's run: the webserver,
        # the daemon and the backfill carry on. (A restart while a run writes its events can
        # fail that run's step; Dagster's run retries here cover crashes, not step failures.)
        postgres.restart()
        recoveries["restart PostgreSQL (webserver answering from it)"] = wait_for(
            "the webserver reading PostgreSQL", lambda: bool(backfill.status()), 180, 1
        )
        wait_for("the backfill's run executing its steps", executing_after(0), 300, 0.5)
        if kill_code_server:
            stack.kill("code_server")
            recoveries["SIGKILL code server (location loaded again)"] = wait_for(
                "the code location", stack.ready, 180, 1
            )
        # The run worker: its run fails, and Dagster's run retry computes every day of the
        # range again; the daemon is then killed while that retry runs.
        moment = time.time()
        for worker in stack.orphaned_run_workers():
            worker.kill()
        wait_for("the retry executing its steps", executing_after(moment), 300, 0.5)
        recoveries["SIGKILL run worker (its retry executing)"] = time.time() - moment
        moment = time.time()
        stack.kill("daemon")
        recoveries["SIGKILL daemon (every daemon heartbeating again)"] = wait_for(
            "the daemon's heartbeats", lambda: daemon_heartbeat_after(moment + 1), 180, 1
        )
        backfill.not_finished()
        wait_for("the backfill to finish", lambda: backfill.status() in BACKFILL_ENDED, 900, 3)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nruns:\n{run_table(backfill.runs())}") from None
    for name, seconds in recoveries.items():
        print(f"\n{name}: {seconds:.0f} s")

    runs = sorted(backfill.runs(), key=lambda r: r.start_time or 0)
    assert backfill.status() != "CANCELED"
    assert runs[-1].dagster_run.status == dg.DagsterRunStatus.SUCCESS, run_table(runs)
    assert any(r.dagster_run.status == dg.DagsterRunStatus.FAILURE for r in runs)
    # One run of the backfill at a time: no day ever ran twice at once.
    spans = [(r.start_time or 0, r.end_time or float("inf")) for r in runs]
    for (_, previous_end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= previous_end, f"two runs at once: {run_table(runs)}"

    store = ServingResource(url=stack.env["ADRECON_SERVING_URL"]).get_store()
    for day in days:
        assert serving_rows(store, day) == expected_rows(paths, day), day
    assert set(store.reconciled_days()) == set(days)
    logs = "".join(path.read_text() for path in (stack.root / "prod").glob("*.log"))
    assert PASSWORD not in logs
