"""dead_run_worker_sensor on an instance holding STARTED runs: a run whose worker process is
gone is marked failed on the second tick that sees it so, a run whose worker lives is left
alone. (Under the production processes, with real workers: test_production_faults.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from adrecon_assets.sensors.dead_run_workers import (
    build_dead_run_worker_sensor,
    evaluate_dead_workers,
    worker_alive,
)


@dg.op
def nothing() -> None:
    pass


@dg.job
def stand_in() -> None:
    nothing()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def started_run(instance: dg.DagsterInstance) -> str:
    run = instance.create_run_for_job(job_def=stand_in)
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name="stand_in"),
        run_id=run.run_id,
    )
    return run.run_id


def exited_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def test_a_worker_is_alive_only_as_the_process_that_reported_itself() -> None:
    now = time.time()
    assert worker_alive(os.getpid(), now)
    assert not worker_alive(exited_pid(), now)
    # This process was created long before a report an hour ago: the pid was reused.
    assert not worker_alive(os.getpid(), now - 3600 - time.monotonic())


def test_a_run_whose_worker_is_gone_is_failed_on_the_second_tick(
    instance: dg.DagsterInstance,
) -> None:
    dead, alive = started_run(instance), started_run(instance)
    unreported = started_run(instance)
    pids = {dead: (exited_pid(), time.time()), alive: (os.getpid(), time.time())}

    def tick(cursor: str | None) -> tuple[dg.SkipReason, str | None]:
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        reason = evaluate_dead_workers(context, lambda _, run_id: pids.get(run_id))
        return reason, context.cursor

    first, cursor = tick(None)
    # Seen once: left to the gRPC server that spawned it, which reports it first if it can.
    assert status(instance, dead) == dg.DagsterRunStatus.STARTED
    assert json.loads(cursor or "[]") == [dead]
    assert dead in (first.skip_message or "")

    second, cursor = tick(cursor)
    assert status(instance, dead) == dg.DagsterRunStatus.FAILURE
    assert status(instance, alive) == dg.DagsterRunStatus.STARTED
    assert status(instance, unreported) == dg.DagsterRunStatus.STARTED
    assert f"marked failed (dead worker): {dead}" == second.skip_message
    [failure] = instance.get_records_for_run(dead, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert "worker (pid" in (failure.event_log_entry.message or "")

    third, _ = tick(cursor)
    assert third.skip_message == "every STARTED run's worker is alive"
    assert [
        r.event_log_entry.run_id
        for r in instance.get_records_for_run(dead, of_type=dg.DagsterEventType.RUN_FAILURE).records
    ] == [dead]


def test_a_run_that_ended_between_ticks_is_not_failed(instance: dg.DagsterInstance) -> None:
    """Its gRPC server reported it (or it finished) before the second tick."""
    dead = started_run(instance)
    pid = (exited_pid(), time.time())
    context = dg.build_sensor_context(instance=instance)
    evaluate_dead_workers(context, lambda _, run_id: pid)
    run = instance.get_run_by_id(dead)
    assert run is not None
    instance.report_run_failed(run, "reported by the gRPC server")

    evaluate_dead_workers(
        dg.build_sensor_context(instance=instance, cursor=context.cursor), lambda _, run_id: pid
    )
    assert (
        len(instance.get_records_for_run(dead, of_type=dg.DagsterEventType.RUN_FAILURE).records)
        == 1
    )


def test_the_sensor_runs_by_default_and_without_a_job() -> None:
    sensor = build_dead_run_worker_sensor(30)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    assert not sensor.targets
