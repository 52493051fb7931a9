"""A real Spark standalone cluster (one master, one worker, on 127.0.0.1) runs a partition of
the Dagster assets chosen by ADRECON_ENGINE=spark, and serves the rows Polars serves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pyspark
import pytest

from adrecon_assets.definitions import ASSETS
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.process_group import stop_group
from adrecon_assets_tests.spark_jvm import JVM_OPTIONS_VARIABLE, SHORT_LIVED_JVM_OPTIONS
from adrecon_assets_tests.test_engine_parity import DAY, FIRST_DAY, SECOND, serving_rows, write_lake

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.serial]

SPARK_HOME = Path(pyspark.__file__).parent
STARTUP_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 480
# Lake to serving; raw_emissions of D-1 is staged by joined_clicks within the same run.
CHAIN = ("raw_clicks", "raw_emissions", "joined_clicks", "fraud_flags", "reconciled_statistics")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spark_daemon(
    main_class: str, args: list[str], log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A Spark daemon in its own process group, so stopping it also stops its executors."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), main_class, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as response:
            state = json.load(response)
    except OSError:
        return 0
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@contextmanager
def standalone_cluster(work: Path) -> Iterator[str]:
    """Yield the `spark://` URL of a master with one ALIVE worker (1 core); always stopped."""
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(work),
        "SPARK_WORKER_DIR": str(work / "worker"),
        JVM_OPTIONS_VARIABLE: SHORT_LIVED_JVM_OPTIONS,  # master, worker and its executors
    }
    port, ui_port = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    daemons = [
        spark_daemon(
            "org.apache.spark.deploy.master.Master",
            ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)],
            work / "master.log",
            env,
        )
    ]
    try:
        daemons.append(
            spark_daemon(
                "org.apache.spark.deploy.worker.Worker",
                [
                    *("--host", "127.0.0.1", "--webui-port", str(free_port())),
                    *("--cores", "1", "--memory", "2g", "--work-dir", str(work / "worker")),
                    master_url,
                ],
                work / "worker.log",
                env,
            )
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while alive_workers(ui_port) < 1:
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                logs = "\n".join(p.read_text()[-2000:] for p in work.glob("*.log"))
                pytest.fail(
                    f"Spark cluster did not come up in {STARTUP_TIMEOUT_SECONDS} s:\n{logs}"
                )
            time.sleep(1)
        yield master_url
    finally:
        for daemon in reversed(daemons):
            stop_group(daemon, timeout=20)


def test_partition_on_standalone_cluster_serves_the_polars_rows(
    paths: Paths, polars_resources: dict[str, object], tmp_path: Path
) -> None:
    emissions = [
        ("e1", "o1", "p1", 100, -SECOND),
        ("e2", "o1", "p1", 250, 0),
        ("e3", "o2", "p2", 40, 300 * SECOND),
    ]
    clicks = [
        ("c1", "e1", "o1", 0, "u1", "10.0.0.9"),  # valid, emission of D-1
        ("c1", "e1", "o1", 5 * SECOND, "u1", "10.0.0.9"),  # a later duplicate: dropped
        ("c2", "e2", "o1", SECOND - 1, "u1", "192.0.2.1"),  # too_fast
        ("c3", "e3", "o2", 600 * SECOND, "u2", "10.0.0.4"),  # denylisted
        ("c4", "e9", "o2", 600 * SECOND, "u2", "192.0.2.2"),  # orphan
    ]
    write_lake(paths.lake, emissions, clicks, ["10.0.0.4/32"])
    spark_db = tmp_path / "cluster_serving.duckdb"
    work = tmp_path / "spark-cluster"
    work.mkdir()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    with standalone_cluster(work) as master_url:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),  # an empty instance of this test's own
            "ADRECON_ENGINE": "spark",
            "ADRECON_SPARK_MASTER": master_url,
            "ADRECON_WAREHOUSE": str(tmp_path / "cluster_warehouse"),
            "ADRECON_SERVING_DB": str(spark_db),
            "SPARK_LOCAL_IP": "127.0.0.1",
            JVM_OPTIONS_VARIABLE: SHORT_LIVED_JVM_OPTIONS,  # the run's driver
        }
        command = [
            str(Path(sys.executable).parent / "dagster"),
            *("asset", "materialize", "-m", "adrecon_assets.definitions"),
            *("--select", ",".join(CHAIN)),
            *("--partition", DAY.isoformat()),
        ]
        run = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
        )
        assert run.returncode == 0, run.stderr[-4000:]
        # The run's session really ran on the cluster: the master records a finished app.
        assert "Registered app adrecon" in (work / "master.log").read_text()

    for day in (FIRST_DAY, DAY):
        result = dg.materialize(ASSETS, partition_key=day.isoformat(), resources=polars_resources)
        assert result.success
    polars_rows = serving_rows(paths.serving_db, "offer_placement_stats")
    day_rows = [row for row in polars_rows if row[0] == DAY]
    # Hand-computed: (o1, p1) has e2, c1 valid (100) and c2 too_fast (refund 250);
    # (o2, p2) has e3 and c3 denylisted (refund 40); c4 is an orphan.
    assert [row[1:8] for row in day_rows] == [
        ("o1", "p1", 1, 1, 100, 1, 250),
        ("o2", "p2", 1, 0, 0, 1, 40),
    ]
    assert serving_rows(spark_db, "offer_placement_stats") == day_rows
