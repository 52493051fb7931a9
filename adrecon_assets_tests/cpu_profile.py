"""CPU seconds per test, for a suite whose parallel part is CPU-bound on 2 cores: wall-clock
durations there measure the neighbours as much as the test. Enabled by ADRECON_TEST_CPU_LOG=path:
each test appends `cpu_seconds wall_seconds nodeid` (setup, call and teardown together) to it.

A test's CPU is its worker's own CPU, plus the children it waited for (subprocess CLI runs),
plus what the live descendants (a session's Spark JVM, servers it started) used meanwhile."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Generator
from pathlib import Path

import psutil
import pytest

LOG_VARIABLE = "ADRECON_TEST_CPU_LOG"


def _descendants_cpu() -> dict[int, float]:
    result = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        result[child.pid] = times.user + times.system
    return result


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None]:
    log = os.environ.get(LOG_VARIABLE)
    if not log:
        yield
        return
    started, wall, live = _own_cpu(), time.monotonic(), _descendants_cpu()
    yield
    after = _descendants_cpu()
    live_cpu = sum(seconds - live.get(pid, 0.0) for pid, seconds in after.items())
    cpu = _own_cpu() - started + max(live_cpu, 0.0)
    with Path(log).open("a") as out:
        out.write(f"{cpu:.2f} {time.monotonic() - wall:.2f} {item.nodeid}\n")
