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


def load_average() -> str:
    """The machine's load (1, 5, 15 min) and available memory: it is shared with other jobs."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    available = psutil.virtual_memory().available / 2**30
    return f"{load}; {available:.1f} GiB available"


def describe() -> dict[str, str]:
    memory = psutil.virtual_memory().total / 2**30
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": cpu_model(),
        "memory": f"{memory:.1f} GiB",
        "load average (1, 5, 15 min) at start": load_average(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **{package: metadata.version(package) for package in PACKAGES},
        "java": java_version(),
    }
