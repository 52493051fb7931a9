"""warehouse.atomic_folder: readers see the old or the new version, crashes leave nothing behind
that the next write does not remove, and every reader follows the canonical symlink."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from adrecon_assets.warehouse import (
    Dataset,
    Warehouse,
    atomic_folder,
    current_version,
    leftovers,
    publish_version,
)

DAY = date(2026, 1, 2)


def write_rows(folder: Path, values: list[int]) -> None:
    pl.DataFrame({"value": values}).write_parquet(folder / "part-0.parquet")


def values_of(folder: Path) -> list[int]:
    return sorted(pl.read_parquet(folder / "*.parquet")["value"].to_list())


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return Warehouse(tmp_path / "warehouse").folder(Dataset.FRAUD_FLAGS, DAY)


def test_each_write_swaps_the_link_and_removes_the_old_version(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_rows(staged, [1, 2])
    first = current_version(target)
    assert target.is_symlink() and first is not None and values_of(target) == [1, 2]
    with atomic_folder(target) as staged:
        write_rows(staged, [3])
    assert values_of(target) == [3]
    assert not first.exists() and leftovers(target) == []
    # Only the link, its version and the lock: nothing a glob of partitions would pick up.
    visible = [p.name for p in target.parent.iterdir() if not p.name.startswith(".")]
    assert visible == [target.name]


def test_a_failed_write_leaves_the_previous_output(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_rows(staged, [1])
    with pytest.raises(RuntimeError), atomic_folder(target) as staged:
        write_rows(staged, [9])
        raise RuntimeError("engine failed")
    assert values_of(target) == [1] and leftovers(target) == []


def test_the_next_write_removes_what_a_crash_left(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_rows(staged, [1])
    # A writer killed mid-write, one killed after creating its link, one before removing the
    # version it replaced, and the two-rename swap of older releases.
    parent, name = target.parent, target.name
    for leftover in (f".{name}.v-dead", f".{name}.tmp-1234", f".{name}.old-5678"):
        (parent / leftover).mkdir()
        write_rows(parent / leftover, [7])
    os.symlink(f".{name}.v-dead", parent / f".{name}.link-dead")
    assert len(leftovers(target)) == 4
    assert values_of(target) == [1]  # readers never see leftovers
    with atomic_folder(target) as staged:
        write_rows(staged, [2])
    assert values_of(target) == [2] and leftovers(target) == []


def test_a_real_folder_from_an_older_release_becomes_a_link(target: Path) -> None:
    target.mkdir(parents=True)
    write_rows(target, [1])
    with atomic_folder(target) as staged:
        write_rows(staged, [2])
    assert target.is_symlink() and values_of(target) == [2] and leftovers(target) == []


def test_publish_version_replaces_a_real_folder_in_one_step(target: Path) -> None:
    target.mkdir(parents=True)
    write_rows(target, [1])
    version = target.parent / f".{target.name}.v-new"
    version.mkdir()
    write_rows(version, [2])
    publish_version(target, version)
    assert values_of(target) == [2]
    # The exchanged real folder is removed; the tmp file system supports RENAME_EXCHANGE.
    assert leftovers(target) == []


def test_polars_pyarrow_and_duckdb_read_through_the_link(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_rows(staged, [1, 2, 3])
    assert Warehouse.files(target) == [target / "part-0.parquet"]
    assert pl.scan_parquet(target / "*.parquet").select(pl.len()).collect().item() == 3
    assert pq.read_table(target).num_rows == 3
    assert duckdb.sql(f"SELECT sum(value) FROM '{target}/*.parquet'").fetchall() == [(6,)]


@pytest.mark.spark
def test_spark_reads_through_the_link(target: Path, spark: object) -> None:
    with atomic_folder(target) as staged:
        write_rows(staged, [1, 2, 3])
    frame = spark.read.parquet(str(target))  # type: ignore[attr-defined]
    assert sorted(row["value"] for row in frame.collect()) == [1, 2, 3]
