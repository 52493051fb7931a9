"""Run one workload in a fresh process and measure its wall time and peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05
REPO_ROOT = Path(__file__).resolve().parent.parent


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
    """User plus system CPU time of the process and its children: what the work cost, whatever
    else the shared machine ran at the time."""
    """Largest RSS of the process and its children together (Spark's JVM too), sampled every
    50 ms, or the kernel's peak of its largest single process if that is higher."""
    steps: dict[str, float] = field(default_factory=dict)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # exited between listing and sampling
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
) -> Measurement:
    """Run `python -m benchmarks.workload` in WORK (made fresh) and sample its memory."""
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
    peak, status, max_rss_kib, cpu_seconds = 0, 0, 0, 0.0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            # ru_maxrss: the largest single process of the tree, in KiB on Linux.
            max_rss_kib = usage.ru_maxrss
            cpu_seconds = usage.ru_utime + usage.ru_stime
            break
        with contextlib.suppress(psutil.Error):
            peak = max(peak, tree_rss(process))
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
        peak_rss_bytes=max(peak, max_rss_kib * 1024),
        cpu_seconds=round(cpu_seconds, 3),
        steps=result["steps"],
    )
