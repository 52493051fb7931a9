"""The instance config of the tests that run the daemon (`dagster dev`, split_dagster.py): the
project's dagster.yaml with the run queue polled every second instead of Dagster's 5 s, so each
queued run starts up to 4 s sooner; every other setting (concurrency limits, run monitoring,
retries) is the shipped one."""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
DEQUEUE_INTERVAL_SECONDS = 1


def write_dev_instance(home: Path) -> None:
    """Write the tests' dagster.yaml into the DAGSTER_HOME `home` (created if missing)."""
    config = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    coordinator = config["run_coordinator"]
    coordinator["config"] = {
        **coordinator.get("config", {}),
        "dequeue_interval_seconds": DEQUEUE_INTERVAL_SECONDS,
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
