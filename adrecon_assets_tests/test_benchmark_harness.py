"""The benchmark harness runs end to end on a tiny day and its workloads agree (no timing test)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from adrecon_assets.partitions import first_day
from adrecon_assets.rules import STATS_MEASURES
from adrecon_assets.serving.duckdb_store import DuckDBServingStore
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.connect_server import ConnectServer
from adrecon_assets_tests.engine_runs import table_rows
from adrecon_assets_tests.reference import reference_day
from adrecon_assets_tests.test_polars_engine_join_rounds import DAY, write_lake
from benchmarks.dataset import HIGH_CARDINALITY, SIMULATED
from benchmarks.measure import record_tree_cpu
from benchmarks.run import BenchmarkRun, markdown, parse_arguments, run_benchmark
from benchmarks.serving_write import measure_serving_writes, serving_write_lines, timed_writes
from benchmarks.spark_sql_reference import spark_sql_statistics

TINY_SIZE = 3_000


@pytest.mark.slow
def test_quick_benchmark_runs_every_polars_workload_and_they_agree_with_duckdb(
    tmp_path: Path,
) -> None:
    run: BenchmarkRun = run_benchmark(
        sizes=[TINY_SIZE],
        repeats=1,
        workloads=["polars", "dagster", "duckdb"],
        cache_root=tmp_path / "cache",
        cli_repeats=0,
        log=lambda line: None,
    )

    assert sorted(m.workload for m in run.measurements) == ["dagster", "duckdb", "polars"]
    assert all(m.seconds > 0 and m.peak_rss_bytes > 0 for m in run.measurements)
    assert run.exact == {
        ("polars", SIMULATED, TINY_SIZE): True,
        ("dagster", SIMULATED, TINY_SIZE): True,
    }
    page = markdown(run, "test")
    assert "| (a) Polars chain, no Dagster | 3,000 | 1 |" in page
    assert "serves exactly the rows of (d) at 3,000 rows/day: yes" in page


# `serial`: on the worker of test_spark_connect.py, whose Connect server it shares.
@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.serial
def test_quick_benchmark_runs_the_spark_sql_jobs_and_connect_on_a_high_cardinality_day(
    tmp_path: Path, spark_connect_server: ConnectServer
) -> None:
    run = run_benchmark(
        sizes=[TINY_SIZE],
        repeats=1,
        # connect_sql's job text is spark_sql's; only the session differs (a JVM start saved).
        workloads=["connect", "connect_sql", "duckdb"],
        cache_root=tmp_path / "cache",
        cli_repeats=0,
        log=lambda line: None,
        shapes=(HIGH_CARDINALITY,),
        connect_server=spark_connect_server,
        # The suite's shared server; this test checks the harness, not its seconds.
        connect_warm_up=False,
    )

    assert run.exact == {
        ("connect", HIGH_CARDINALITY, TINY_SIZE): True,
        ("connect_sql", HIGH_CARDINALITY, TINY_SIZE): True,
    }
    on_server = [m for m in run.measurements if m.workload in ("connect", "connect_sql")]
    assert len(on_server) == 2
    assert all(m.server_cpu_seconds > 0 and m.server_peak_rss_bytes > 0 for m in on_server)
    duckdb_job = next(m for m in run.measurements if m.workload == "duckdb")
    assert duckdb_job.server_cpu_seconds == 0 and duckdb_job.server_peak_rss_bytes == 0
    rows = run.serving_rows[(HIGH_CARDINALITY, TINY_SIZE)]
    assert rows > 1_000  # a 3,000-row day of a large catalogue: most rows are their own key
    page = markdown(run, "test")
    assert "## Spark: driver and server" in page
    assert f"- 3,000 (high-cardinality) emission rows/day: {rows:,} serving rows" in page
    assert (
        "| (e') hand-written Spark SQL job on the warm Spark Connect server | 3,000 (high" in page
    )
    assert "on the warm Spark Connect server serves exactly the rows of (d) at 3,000 (high" in page


def test_arguments_take_the_lake_shapes_and_the_new_workloads() -> None:
    arguments = parse_arguments(
        ["--quick", "--shapes", "simulated,high_cardinality", "--workloads", "spark_sql,duckdb"]
    )

    assert arguments.shapes == (SIMULATED, HIGH_CARDINALITY)
    assert arguments.workloads == ["spark_sql", "duckdb"]
    assert arguments.sizes == [20_000]
    with pytest.raises(SystemExit):
        parse_arguments(["--shapes", "tiny"])


def test_documented_quiet_machine_command_is_results_md_s_and_parses() -> None:
    """docs/performance.md's command that measures issue 24's targets: the one prepared in
    benchmarks/RESULTS.md, and every argument it gives `make bench` is one the harness takes."""
    project = Path(__file__).resolve().parents[1]
    docs = (project / "docs" / "performance.md").read_text()
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", docs, re.DOTALL) if "make bench" in b]
    results = (project / "benchmarks" / "RESULTS.md").read_text()
    prepared = results[results.index("### To measure the targets") :]
    assert block == re.findall(r"```\n(.*?)```", prepared, re.DOTALL)[0]
    command = shlex.split(block.replace("\\\n", ""))  # the shell's line continuations
    assert command[:2] == ["make", "bench"] and command[2].startswith("BENCH_ARGS=")
    arguments = parse_arguments(shlex.split(command[2].removeprefix("BENCH_ARGS=")))

    assert arguments.sizes == [20_000_000, 100_000_000]
    assert arguments.shapes == (SIMULATED, HIGH_CARDINALITY)
    assert {"spark_sql", "connect_sql", "duckdb"} <= set(arguments.workloads)
    assert arguments.serving_writes


def test_same_rows_tells_a_changed_count_apart(tmp_path: Path) -> None:
    import polars as pl

    from benchmarks.run import same_rows

    rows = pl.DataFrame({"offer_id": ["o1", "o2"], "clicks": [3, 4]})
    rows.write_parquet(tmp_path / "a.parquet")
    rows.write_parquet(tmp_path / "b.parquet")
    rows.with_columns(pl.Series("clicks", [3, 5])).write_parquet(tmp_path / "c.parquet")

    assert same_rows(tmp_path / "a.parquet", tmp_path / "b.parquet")
    assert not same_rows(tmp_path / "a.parquet", tmp_path / "c.parquet")


def statistics_rows(day: date) -> pa.Table:
    return pa.table(
        {
            "date": [day, day, day],
            "offer_id": ["o1", "o1", "o2"],
            "placement": ["p1", "p2", "p1"],
            **{measure: [1, 2, 3] for measure in STATS_MEASURES},
        }
    )


def test_timed_serving_writes_leave_exactly_the_days_rows(tmp_path: Path) -> None:
    day = date(2026, 1, 2)
    store = DuckDBServingStore(str(tmp_path / "serving.duckdb"))

    writes = timed_writes(store, day, statistics_rows(day), "duckdb")

    assert [(w.store, w.write, w.rows) for w in writes] == [
        ("duckdb", "first", 3),
        ("duckdb", "replace", 3),
    ]
    assert all(w.seconds > 0 and w.rows_per_second == 3 / w.seconds for w in writes)
    served = store.day_rows(day).sort_by([("offer_id", "ascending"), ("placement", "ascending")])
    assert served.column("placement").to_pylist() == ["p1", "p2", "p1"]
    assert served.column("clicks").to_pylist() == [1, 2, 3]


@pytest.mark.slow
def test_serving_writes_are_timed_on_duckdb_and_postgresql(tmp_path: Path) -> None:
    day = date(2026, 1, 2)
    pq.write_table(statistics_rows(day), tmp_path / "duckdb.parquet")

    writes = measure_serving_writes(tmp_path / "duckdb.parquet", day)

    assert [(w.store, w.write, w.rows) for w in writes] == [
        ("duckdb", "first", 3),
        ("duckdb", "replace", 3),
        ("postgresql", "first", 3),
        ("postgresql", "replace", 3),
    ]
    lines = serving_write_lines({"3": writes})
    assert len(lines) == 2 + 4 and lines[-1].startswith("| 3 | postgresql | replace | 3 |")


BUSY_GRANDCHILD = """
import subprocess, sys, time
busy = "import time\\nwhile time.process_time() < 0.3: pass\\ntime.sleep(30)"
subprocess.Popen([sys.executable, "-c", busy])  # never waited for, like a local Spark JVM
time.sleep(30)
"""


def test_tree_cpu_counts_a_grandchild_its_parent_never_reaps() -> None:
    parent = subprocess.Popen([sys.executable, "-c", BUSY_GRANDCHILD])
    try:
        process = psutil.Process(parent.pid)
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            cpu >= 0.25 for pid, cpu in seen.items() if pid != parent.pid
        ):
            record_tree_cpu(process, seen)
            time.sleep(0.05)
        grandchildren = process.children(recursive=True)
        assert [child.pid for child in grandchildren] == [pid for pid in seen if pid != parent.pid]
        assert seen[grandchildren[0].pid] >= 0.25  # it busy-loops 0.3 s of CPU
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()


@pytest.mark.spark
def test_spark_sql_job_serves_the_references_rows_on_the_contracts_edges(
    spark: SparkSession, paths: Paths
) -> None:
    write_lake(paths)  # ties, D-1's rows clicked after midnight, orphans, a too-fast click

    rows = pl.from_arrow(spark_sql_statistics(spark, paths.lake, DAY))

    expected, _ = reference_day(paths.lake, DAY, first_day())
    assert isinstance(rows, pl.DataFrame)
    assert table_rows(rows) == table_rows(expected)
    assert table_rows(rows)[0] == (DAY, "o1", "pA", 13, 6, 600, 1, 100)  # by hand
