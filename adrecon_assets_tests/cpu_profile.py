"""CPU seconds per test, for a suite whose parallel part is CPU-bound on 2 cores: wall-clock
durations there measure the neighbours as much as the test. Enabled by ADRECON_TEST_CPU_LOG=path:
each test appends `cpu_seconds wall_seconds nodeid` (setup, call and teardown together) to it.

A test's CPU is its worker's own CPU plus the larger of two lower bounds of what the processes
it started used: (a) the children it waited for (subprocess CLI runs, with what they waited for)
plus what the live descendants (a session's Spark JVM, servers it started) used meanwhile;
(b) the sum over every descendant seen by a sampler every 0.5 s. (a) misses a process that
exits before the test ends without this worker waiting for it, e.g. every run `dagster dev`
launches: its code server never reaps them, so their CPU reaches no rusage (test_dagster_dev_e2e:
34 CPU s by (a), 118 by (b)). (b) misses each process's last half second."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Generator
from pathlib import Path

import psutil
import pytest

LOG_VARIABLE = "ADRECON_TEST_CPU_LOG"
SAMPLE_SECONDS = 0.5


def _descendants_cpu() -> dict[tuple[int, float], float]:
    """CPU seconds of each live descendant, keyed by (pid, start time): pids are reused."""
    result = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            key = (child.pid, child.create_time())
        except psutil.Error:
            continue
        result[key] = times.user + times.system
    return result


class _DescendantSampler(threading.Thread):
    """Keeps the last CPU sample of every descendant, including those that have since exited."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen = _descendants_cpu()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            self.seen.update(_descendants_cpu())

    def stop(self) -> dict[tuple[int, float], float]:
        self.done.set()
        self.join()
        self.seen.update(_descendants_cpu())
        return self.seen


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _waited_cpu() -> float:
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return waited.ru_utime + waited.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None]:
    log = os.environ.get(LOG_VARIABLE)
    if not log:
        yield
        return
    own, waited, wall = _own_cpu(), _waited_cpu(), time.monotonic()
    sampler = _DescendantSampler()
    before = dict(sampler.seen)
    sampler.start()
    yield
    sampled = sampler.stop()
    after = _descendants_cpu()
    live_cpu = sum(seconds - before.get(key, 0.0) for key, seconds in after.items())
    reaped_or_live = _waited_cpu() - waited + max(live_cpu, 0.0)
    every_seen = sum(seconds - before.get(key, 0.0) for key, seconds in sampled.items())
    cpu = _own_cpu() - own + max(reaped_or_live, every_seen)
    with Path(log).open("a") as out:
        out.write(f"{cpu:.2f} {time.monotonic() - wall:.2f} {item.nodeid}\n")
