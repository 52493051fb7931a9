"""Fail a run whose worker process is gone, so that Dagster's run retries (or
crash_relaunch_sensor) take its days up again without a person.

The production processes launch runs with Dagster's DefaultRunLauncher: each run is a process
spawned by the code server's gRPC server. That launcher has no worker health check, so Dagster's
run monitoring never fails a STARTED run whose worker died (only `max_runtime_seconds` would,
hours later). The gRPC server that spawned the worker marks it failed itself, but not always:
- a PostgreSQL outage longer than dagster-postgres's ~12 s of connect retries kills the worker
  at its next event write, and the gRPC server's check of its workers, which writes the
  failure to the same database, fails too and stops checking for good (measured: the run stayed
  STARTED with no worker);
- a worker whose gRPC server is gone (a code server killed with its process group) is watched
  by nobody.

The worker logs its pid when it starts ("Started process for run", engine event metadata
`pid`). A tick looks at every STARTED run with such a pid: a pid that is gone, a zombie, or a
process created after the run started (the pid reused) is a dead worker. A run seen dead on two
ticks in a row (so that the gRPC server, which checks every second, reports it first when it
can) is marked failed, with the reason. Runs are spawned on the code server's host, where this
sensor runs too; runs executed elsewhere log no such pid and are never touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import dagster as dg
import psutil

# What DefaultRunLauncher's worker records when it starts (EngineEventData.in_process).
WORKER_PID_METADATA = "pid"
# Where a run's worker pid comes from: (instance, run id) -> (pid, reported at) or None.
PidSource = Callable[[dg.DagsterInstance, str], tuple[int, float] | None]


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The run worker's pid and when it reported itself (epoch s), if it did."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.engine_event_data is None:
            continue
        pid = event.engine_event_data.metadata.get(WORKER_PID_METADATA)
        if pid is not None and str(pid.value).isdigit():
            return int(str(pid.value)), record.event_log_entry.timestamp
    return None


def worker_alive(pid: int, reported_at: float) -> bool:
    """The process `pid` runs and is the one that reported itself at `reported_at`."""
    try:
        process = psutil.Process(pid)
        # One second of slack: create_time is rounded to the clock tick.
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= reported_at + 1
    except psutil.NoSuchProcess:
        return False


def dead_worker_runs(instance: dg.DagsterInstance, pid_of: PidSource) -> dict[str, int]:
    """STARTED runs whose worker is gone, with the worker's pid."""
    started = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    dead = {}
    for record in started:
        found = pid_of(instance, record.dagster_run.run_id)
        if found is not None and not worker_alive(*found):
            dead[record.dagster_run.run_id] = found[0]
    return dead


def evaluate_dead_workers(
    context: dg.SensorEvaluationContext, pid_of: PidSource = worker_pid
) -> dg.SkipReason:
    instance = context.instance
    seen_before = set(json.loads(context.cursor)) if context.cursor else set()
    dead = dead_worker_runs(instance, pid_of)
    failed = []
    for run_id, pid in dead.items():
        if run_id not in seen_before:
            continue
        run = instance.get_run_by_id(run_id)
        if run is None or run.status != dg.DagsterRunStatus.STARTED:
            continue
        message = (
            f"The run worker (pid {pid}) is gone while the run was STARTED: marked failed by "
            "dead_run_worker_sensor so that its retry or relaunch takes the days up again."
        )
        context.log.warning(f"run {run_id}: {message}")
        instance.report_run_failed(run, message)
        failed.append(run_id)
    context.update_cursor(json.dumps(sorted(set(dead) - set(failed))))
    if failed:
        return dg.SkipReason(f"marked failed (dead worker): {', '.join(failed)}")
    if dead:
        return dg.SkipReason(f"worker gone, failing next tick if still STARTED: {', '.join(dead)}")
    return dg.SkipReason("every STARTED run's worker is alive")


def build_dead_run_worker_sensor(interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="dead_run_worker_sensor",
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Marks failed a STARTED run whose worker process is gone (Dagster's run monitoring "
            "cannot see it with the default run launcher), so that run retries and "
            "crash_relaunch_sensor take its days up again."
        ),
    )
    def dead_run_worker_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        return evaluate_dead_workers(context)

    return dead_run_worker_sensor
