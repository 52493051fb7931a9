"""A description of the machine and versions, for the results page."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import psutil

PACKAGES = ("polars", "duckdb", "pyspark", "dagster", "pyarrow")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def java_version() -> str:
    try:
        result = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "none"
    lines = result.stderr.strip().splitlines()
    return lines[0] if lines else "unknown"


def describe() -> dict[str, str]:
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": cpu_model(),
        "memory": f"{memory:.1f} GiB",
        "load average (1, 5, 15 min) at start": load,
        "os": platform.platform(),
        "python": platform.python_version(),
        **{package: metadata.version(package) for package in PACKAGES},
        "java": java_version(),
    }
