"""The benchmark harness runs end to end on a tiny day and its workloads agree (no timing test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import BenchmarkRun, markdown, run_benchmark

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
    assert run.exact == {("polars", TINY_SIZE): True, ("dagster", TINY_SIZE): True}
    page = markdown(run, "test")
    assert "| (a) Polars chain, no Dagster | 3,000 | 1 |" in page
    assert "serves exactly the rows of (d) at 3,000 rows/day: yes" in page


def test_same_rows_tells_a_changed_count_apart(tmp_path: Path) -> None:
    import polars as pl

    from benchmarks.run import same_rows

    rows = pl.DataFrame({"offer_id": ["o1", "o2"], "clicks": [3, 4]})
    rows.write_parquet(tmp_path / "a.parquet")
    rows.write_parquet(tmp_path / "b.parquet")
    rows.with_columns(pl.Series("clicks", [3, 5])).write_parquet(tmp_path / "c.parquet")

    assert same_rows(tmp_path / "a.parquet", tmp_path / "b.parquet")
    assert not same_rows(tmp_path / "a.parquet", tmp_path / "c.parquet")
