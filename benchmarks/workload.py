"""One timed workload in its own process (so its peak memory is its own):

    python -m benchmarks.workload {polars,dagster,cli,spark,connect,duckdb} LAKE WORK DAY

WORK holds a warehouse with D-1's raw_emissions pre-staged; the workload writes the day's
serving rows to WORK/serving.duckdb and WORK/statistics.parquet, and prints one JSON line
with its seconds. Imports are not timed: the process time beside them shows
what the imports cost."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.dataset import FIRST_DAY

STATISTICS_FILE = "statistics.parquet"
# The six daily assets of the contract (section 5); reporting assets are not timed.
CONTRACT_ASSETS = (
    "raw_clicks",
    "raw_emissions",
    "joined_clicks",
    "fraud_flags",
    "reconciled_statistics",
    "anomaly_metrics",
)
SPARK_MASTER = "local[2]"
# Spark's default 1 GB driver heap cannot hold a 20M-row shuffle in local mode.
SPARK_DRIVER_MEMORY = "6g"
# The reference job's memory cap on a shared 24 GB machine (DuckDB's default is 80 % of RAM);
# beyond it DuckDB spills to WORK/duckdb_tmp.
DUCKDB_MEMORY_LIMIT = "10GB"


def contract_environment(lake: Path, work: Path) -> None:
    """The contract's settings, before adrecon_assets is imported (partitions read them)."""
    os.environ["ADRECON_LAKE_ROOT"] = str(lake)
    os.environ["ADRECON_WAREHOUSE"] = str(work / "warehouse")
    os.environ["ADRECON_SERVING_DB"] = str(work / "serving.duckdb")
    os.environ["ADRECON_START_DATE"] = FIRST_DAY.isoformat()
    os.environ["ADRECON_ENGINE"] = "polars"


def served_statistics(work: Path, day: date) -> pa.Table:
    """The day's offer_placement_stats rows as the pipeline served them, in key order."""
    from adrecon_assets.rules import STATS_COLUMNS

    with duckdb.connect(str(work / "serving.duckdb"), read_only=True) as connection:
        return connection.execute(
            f"SELECT {', '.join(STATS_COLUMNS)} FROM offer_placement_stats WHERE date = ? "
            "ORDER BY offer_id, placement",
            [day],
        ).to_arrow_table()


def polars_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    from adrecon_assets.engines.polars_engine import PolarsEngine
    from benchmarks.engine_chain import run_engine_chain

    return run_engine_chain(PolarsEngine(), lake, work / "warehouse", work / "serving.duckdb", day)


def spark_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    from dagster_pyspark.resources import spark_session_from_config

    from adrecon_assets.engines.spark_engine import SparkEngine
    from adrecon_assets.engines.spark_session import spark_config
    from benchmarks.engine_chain import run_engine_chain

    started = time.perf_counter()
    config = spark_config(
        SPARK_MASTER, "adrecon-benchmark", False, {"spark.driver.memory": SPARK_DRIVER_MEMORY}
    )
    session = spark_session_from_config(config)
    session_seconds = round(time.perf_counter() - started, 3)
    try:
        steps = run_engine_chain(
            SparkEngine(session), lake, work / "warehouse", work / "serving.duckdb", day
        )
    finally:
        session.stop()
    return {"spark_session": session_seconds, **steps}


def connect_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    """The Spark engine on the warm Spark Connect server at ADRECON_SPARK_REMOTE (the runner
    starts it once); attaching a session is timed as its own step."""
    from adrecon_assets.engines.spark_engine import SparkEngine
    from adrecon_assets.engines.spark_session import attach_remote, spark_config
    from benchmarks.engine_chain import run_engine_chain

    started = time.perf_counter()
    config = spark_config(SPARK_MASTER, "adrecon-benchmark", False)
    session = attach_remote(os.environ["ADRECON_SPARK_REMOTE"], config)
    attach_seconds = round(time.perf_counter() - started, 3)
    try:
        steps = run_engine_chain(
            SparkEngine(session), lake, work / "warehouse", work / "serving.duckdb", day
        )
    finally:
        session.stop()
    return {"spark_attach": attach_seconds, **steps}


def serve_rows(work: Path, day: date, rows: pa.Table, source: str) -> None:
    """A reference job's rows into the serving store, as the pipeline's serving write does."""
    from adrecon_assets import serving

    with duckdb.connect(str(work / "serving.duckdb")) as connection:
        serving.replace_day(
            connection, serving.OFFER_PLACEMENT_STATS, day, rows, {"source": source}
        )


def spark_sql_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    """Spark's own limit: the one hand-written Spark SQL job, local[2], own JVM, the Spark
    workload's session settings (its start timed as its own step)."""
    from dagster_pyspark.resources import spark_session_from_config

    from adrecon_assets.engines.spark_session import spark_config
    from benchmarks.spark_sql_reference import spark_sql_statistics

    started = time.perf_counter()
    config = spark_config(
        SPARK_MASTER, "adrecon-benchmark", False, {"spark.driver.memory": SPARK_DRIVER_MEMORY}
    )
    session = spark_session_from_config(config)
    session_seconds = round(time.perf_counter() - started, 3)
    try:
        started = time.perf_counter()
        rows = spark_sql_statistics(session, lake, day)
        query_seconds = round(time.perf_counter() - started, 3)
    finally:
        session.stop()
    serve_rows(work, day, rows, "spark_sql")
    return {"spark_session": session_seconds, "query": query_seconds}


def connect_sql_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    """The hand-written Spark SQL job on the warm Spark Connect server the engine uses."""
    from adrecon_assets.engines.spark_session import attach_remote, spark_config
    from benchmarks.spark_sql_reference import spark_sql_statistics

    started = time.perf_counter()
    session = attach_remote(
        os.environ["ADRECON_SPARK_REMOTE"], spark_config(SPARK_MASTER, "adrecon-benchmark", False)
    )
    attach_seconds = round(time.perf_counter() - started, 3)
    try:
        started = time.perf_counter()
        rows = spark_sql_statistics(session, lake, day)
        query_seconds = round(time.perf_counter() - started, 3)
    finally:
        session.stop()
    serve_rows(work, day, rows, "spark_sql")
    return {"spark_attach": attach_seconds, "query": query_seconds}


def cli_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    """The whole `dagster asset materialize --select '*' --partition D` CLI run (a child
    process: its memory counts in the measured process tree), in a fresh DAGSTER_HOME."""
    (work / "dagster_home").mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "DAGSTER_HOME": str(work / "dagster_home")}
    seconds = round(timed_cli_run("*", day, environment, work / "cli.log"), 3)
    return {"cli_run": seconds, **step_seconds((work / "cli.log").read_text(errors="replace"))}


def timed_cli_run(
    selection: str, day: date, environment: dict[str, str], log: Path, cwd: Path | None = None
) -> float:
    """Seconds of one `dagster asset materialize` CLI run of `selection` for `day`, its output
    in `log`; fails naming the log."""
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "asset", "materialize", "-m", "adrecon_assets.definitions"]
    started = time.perf_counter()
    with log.open("w") as output:
        result = subprocess.run(
            [*command, "--select", selection, "--partition", day.isoformat()],
            cwd=cwd,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"dagster CLI run failed, see {log}")
    return time.perf_counter() - started


# Dagster's durations: 533ms, 5.6s, 4m52s (format_duration).
STEP_FINISHED = re.compile(
    r'Finished execution of step "(\w+)" in (?:(\d+)m(\d+)s|([0-9.]+)s|([0-9.]+)ms)\.'
)


def step_seconds(log: str) -> dict[str, float]:
    """Seconds per step from a Dagster run's log: the profile of a CLI run."""
    steps = {}
    for name, minutes, whole_seconds, seconds, milliseconds in STEP_FINISHED.findall(log):
        if minutes:
            value = int(minutes) * 60 + int(whole_seconds)
        else:
            value = float(seconds) if seconds else float(milliseconds) / 1000
        steps[name] = round(value, 3)
    return steps


def dagster_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    import dagster as dg

    from adrecon_assets.definitions import defs

    started = time.perf_counter()
    result = dg.materialize(
        list(defs.assets or []),
        resources=defs.resources,
        partition_key=day.isoformat(),
        selection=list(CONTRACT_ASSETS),
    )
    if not result.success:
        raise RuntimeError(f"materialize of {day} failed")
    return {"materialize": round(time.perf_counter() - started, 3)}


def duckdb_workload(lake: Path, work: Path, day: date) -> dict[str, float]:
    from adrecon_assets import serving
    from adrecon_assets_tests.reference import reference_queries

    started = time.perf_counter()
    query = reference_queries(lake, day, FIRST_DAY).statistics
    with duckdb.connect(str(work / "serving.duckdb")) as connection:
        connection.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        connection.execute(f"SET temp_directory = '{work / 'duckdb_tmp'}'")
        rows = connection.sql(query).to_arrow_table()
        query_seconds = round(time.perf_counter() - started, 3)
        serving.replace_day(
            connection, serving.OFFER_PLACEMENT_STATS, day, rows, {"source": "duckdb_sql"}
        )
    return {"query": query_seconds}


# Imported before the clock starts: an import is the same fixed cost in every run.
IMPORTS = {
    "polars": ("adrecon_assets.engines.polars_engine", "benchmarks.engine_chain"),
    "dagster": ("dagster", "adrecon_assets.definitions"),
    "cli": (),
    "spark": (
        "dagster_pyspark.resources",
        "adrecon_assets.engines.spark_engine",
        "benchmarks.engine_chain",
    ),
    "connect": (
        "pyspark.sql.connect.session",
        "adrecon_assets.engines.spark_engine",
        "benchmarks.engine_chain",
    ),
    "duckdb": ("adrecon_assets.serving", "adrecon_assets_tests.reference"),
    "spark_sql": ("dagster_pyspark.resources", "benchmarks.spark_sql_reference"),
    "connect_sql": ("pyspark.sql.connect.session", "benchmarks.spark_sql_reference"),
}

WORKLOADS: dict[str, Callable[[Path, Path, date], dict[str, float]]] = {
    "polars": polars_workload,
    "dagster": dagster_workload,
    "cli": cli_workload,
    "spark": spark_workload,
    "connect": connect_workload,
    "duckdb": duckdb_workload,
    "spark_sql": spark_sql_workload,
    "connect_sql": connect_sql_workload,
}


def main(argv: list[str]) -> None:
    name, lake, work, day = argv[0], Path(argv[1]), Path(argv[2]), date.fromisoformat(argv[3])
    contract_environment(lake, work)
    workload = WORKLOADS[name]
    for module in IMPORTS[name]:
        importlib.import_module(module)
    started = time.perf_counter()
    steps = workload(lake, work, day)
    seconds = time.perf_counter() - started
    pq.write_table(served_statistics(work, day), work / STATISTICS_FILE)
    print(json.dumps({"workload": name, "seconds": round(seconds, 3), "steps": steps}))


if __name__ == "__main__":
    main(sys.argv[1:])
