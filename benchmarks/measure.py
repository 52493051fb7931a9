"""Run one workload in a fresh process and measure its wall time and peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psutil

SAMPLE_SECONDS = 0.05
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunningServer:
    """A Spark Connect server started by someone else (the test suite's, shared by its tests)."""

    remote: str
    processes: list[psutil.Process]
    """Its processes, whose CPU and memory each run's measurement samples."""


@dataclass(frozen=True)
class Measurement:
    workload: str
    emissions_per_day: int
    seconds: float
    """Work time inside the process (imports excluded)."""
    process_seconds: float
    """Wall time of the whole process, interpreter start and imports included."""
    peak_rss_bytes: int
    cpu_seconds: float
    """User plus system CPU time of the process and its children (their rusage, or the sum of
    the process tree's sampled CPU if larger: a local Spark JVM is not always reaped): what the
    work cost, whatever else the shared machine ran at the time."""
    """Largest RSS of the process and its children together (Spark's JVM too), sampled every
    50 ms, or the kernel's peak of its largest single process if that is higher."""
    steps: dict[str, float] = field(default_factory=dict)
    shape: str = "simulated"
    """The lake's shape (`dataset.SHAPES`)."""
    server_cpu_seconds: float = 0.0
    """User plus system CPU time the Spark Connect server spent during the run (0: none)."""
    server_peak_rss_bytes: int = 0
    """Largest RSS of the Spark Connect server's processes sampled during the run."""


def high_water_mark(pid: int) -> int:
    """The kernel's peak RSS of one process since its exec (VmHWM), in bytes; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(process: psutil.Process) -> tuple[int, int]:
    """The tree's current total RSS, and the largest high-water mark of one of its processes."""
    total, largest_peak = 0, 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # exited between listing and sampling
            total += member.memory_info().rss
            largest_peak = max(largest_peak, high_water_mark(member.pid))
    return total, largest_peak


def record_tree_cpu(process: psutil.Process, seen: dict[int, float]) -> None:
    """The CPU seconds of each process of the tree so far, by pid: a Spark JVM that its parent
    never reaps is missing from the parent's rusage, so the tree is sampled too."""
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            seen[member.pid] = max(seen.get(member.pid, 0.0), times.user + times.system)


def processes_cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for member in processes:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


def processes_rss(processes: list[psutil.Process]) -> int:
    total = 0
    for member in processes:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def hardlink_copy(source: Path, target: Path) -> None:
    """A copy of the pre-staged warehouse that costs no I/O (files are never rewritten)."""
    shutil.copytree(source, target, copy_function=os.link)


def measure(
    workload: str,
    lake: Path,
    prestaged: Path,
    work: Path,
    day: date,
    emissions_per_day: int,
    server: list[psutil.Process] | None = None,
) -> Measurement:
    """Run `python -m benchmarks.workload` in WORK (made fresh) and sample its memory, and the
    CPU and memory of the `server` processes (a warm Spark Connect server) during the run."""
    server = server or []
    server_cpu_before, server_peak = processes_cpu_seconds(server), 0
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    hardlink_copy(prestaged, work / "warehouse")
    command = [sys.executable, "-m", "benchmarks.workload", workload, str(lake), str(work)]
    stdout_path, stderr_path = work / "stdout.txt", work / "stderr.txt"
    started = time.perf_counter()
    # Output goes to files: Dagster and Spark log enough to fill a pipe and block the child.
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        child = subprocess.Popen(
            [*command, day.isoformat()], cwd=REPO_ROOT, stdout=stdout, stderr=stderr
        )
    process = psutil.Process(child.pid)
    peak, status, single_peak, cpu_seconds = 0, 0, 0, 0.0
    sampled_cpu: dict[int, float] = {}
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            cpu_seconds = usage.ru_utime + usage.ru_stime
            break
        with contextlib.suppress(psutil.Error):
            total, largest_peak = tree_rss(process)
            record_tree_cpu(process, sampled_cpu)
            peak, single_peak = max(peak, total), max(single_peak, largest_peak)
        server_peak = max(server_peak, processes_rss(server))
        time.sleep(SAMPLE_SECONDS)
    process_seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0:
        log = stderr_path.read_text()[-4000:]
        raise RuntimeError(f"{workload} failed ({returncode}):\n{log}")
    stdout_text = stdout_path.read_text()
    result = json.loads(stdout_text.strip().splitlines()[-1])
    return Measurement(
        workload=workload,
        emissions_per_day=emissions_per_day,
        seconds=result["seconds"],
        process_seconds=round(process_seconds, 3),
        peak_rss_bytes=max(peak, single_peak),
        cpu_seconds=round(max(cpu_seconds, sum(sampled_cpu.values())), 3),
        steps=result["steps"],
        server_cpu_seconds=round(processes_cpu_seconds(server) - server_cpu_before, 3),
        server_peak_rss_bytes=server_peak,
    )


def per_call_ms(call: Callable[[], Any], repeat: int) -> float:
    """Milliseconds per call of `call`, over `repeat` calls (the sensor-tick benchmarks)."""
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat * 1000
