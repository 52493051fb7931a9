"""Warehouse versions (issue 20 point 7, issue 22 point 4): a reader resolves a folder's version
once and never mixes two versions' files, versions are fsynced before the swap, and a clean-up
deletes only names of its own, never what a planted link points to."""

from __future__ import annotations

import os
import threading
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from adrecon_assets import warehouse as warehouse_module
from adrecon_assets.warehouse import (
    Dataset,
    Warehouse,
    WarehouseLinkError,
    atomic_folder,
    current_version,
    leftovers,
    reading,
)

DAY = date(2026, 1, 2)
SWAPS = 100
FILES = 3  # every version writes the same file names, as the engines do


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return Warehouse(tmp_path / "warehouse").folder(Dataset.FRAUD_FLAGS, DAY)


def write_version(folder: Path, number: int) -> None:
    for part in range(FILES):
        pl.DataFrame({"version": [number] * 10}).write_parquet(folder / f"part-{part}.parquet")


def test_a_reader_never_mixes_versions_while_the_folder_is_swapped(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_version(staged, 0)
    seen: list[set[int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read_in_a_loop() -> None:
        try:
            while not done.is_set():
                with reading(target) as (version,):
                    # One file at a time, as an engine's scan opens them: a swap between two
                    # opens would show through a glob of the link.
                    values: set[int] = set()
                    for part in range(FILES):
                        frame = pl.read_parquet(version / f"part-{part}.parquet")
                        values |= set(frame["version"].to_list())
                seen.append(values)
        except BaseException as error:  # reported below: a reader must never fail
            errors.append(error)

    readers = [threading.Thread(target=read_in_a_loop) for _ in range(2)]
    for reader in readers:
        reader.start()
    for number in range(1, SWAPS + 1):
        with atomic_folder(target) as staged:
            write_version(staged, number)
    done.set()
    for reader in readers:
        reader.join()

    assert errors == []
    assert len(seen) > 10  # the readers overlapped the swaps
    assert [values for values in seen if len(values) != 1] == []
    assert {value for values in seen for value in values} <= set(range(SWAPS + 1))
    # Versions a reader held are deleted by a later write; none is left at the end.
    with atomic_folder(target) as staged:
        write_version(staged, SWAPS + 1)
    assert leftovers(target) == []


def test_a_version_being_read_is_not_deleted_by_the_swap(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_version(staged, 1)
    with reading(target) as (version,):
        with atomic_folder(target) as staged:
            write_version(staged, 2)
        # The link shows the new version, the reader still reads its whole old one.
        assert pl.read_parquet(target / "*.parquet")["version"].unique().to_list() == [2]
        assert pl.read_parquet(version / "*.parquet")["version"].unique().to_list() == [1]
    with atomic_folder(target) as staged:
        write_version(staged, 3)
    assert not version.exists() and leftovers(target) == []


@pytest.mark.parametrize("pointing", ["absolute", "relative", "foreign_sibling"])
def test_a_link_pointing_outside_fails_the_write_and_deletes_nothing(
    target: Path, tmp_path: Path, pointing: str
) -> None:
    outside = tmp_path / "precious"
    if pointing == "foreign_sibling":  # a hidden folder beside it, but not one of its versions
        outside = target.parent / ".precious"
    outside.mkdir(parents=True)
    write_version(outside, 7)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(
        {
            "absolute": str(outside),
            "relative": os.path.relpath(outside, target.parent),
            "foreign_sibling": outside.name,
        }[pointing],
        target,
    )
    # A crashed write's leftover beside it: not deleted either, since the write stops first.
    leftover = target.parent / f".{target.name}.v-dead"
    leftover.mkdir()

    with (
        pytest.raises(WarehouseLinkError, match=f"warehouse link {target} points to"),
        atomic_folder(target) as staged,
    ):
        write_version(staged, 1)

    assert sorted(path.name for path in outside.iterdir()) == [
        f"part-{part}.parquet" for part in range(FILES)
    ]
    assert pl.read_parquet(outside / "*.parquet")["version"].unique().to_list() == [7]
    assert leftover.is_dir() and os.readlink(target) != ""
    with pytest.raises(WarehouseLinkError), reading(target):
        pass  # a reader refuses it too


def test_clean_up_keeps_hidden_names_that_are_not_its_own(target: Path) -> None:
    with atomic_folder(target) as staged:
        write_version(staged, 1)
    foreign = target.parent / f".{target.name}.backup"  # someone's copy, same prefix
    foreign.mkdir()
    write_version(foreign, 9)
    with atomic_folder(target) as staged:
        write_version(staged, 2)
    assert foreign.is_dir() and len(list(foreign.iterdir())) == FILES


def test_a_version_is_fsynced_before_the_swap_and_the_parent_after(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source: str | Path, destination: str | Path) -> None:
        events.append(("swap", str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(warehouse_module.os, "fsync", fsync)
    monkeypatch.setattr(warehouse_module.os, "replace", replace)
    with atomic_folder(target) as staged:
        write_version(staged, 1)
    version = current_version(target)
    assert version is not None

    swap = events.index(("swap", str(target)))
    synced_before = {path for kind, path in events[:swap] if kind == "fsync"}
    expected = {str(version / f"part-{part}.parquet") for part in range(FILES)} | {str(version)}
    assert expected <= synced_before
    assert ("fsync", str(target.parent)) in events[swap:]


@pytest.mark.spark
def test_spark_reads_the_resolved_version_folder(target: Path, spark: object) -> None:
    """The Spark engine is handed the hidden version folder itself: Spark skips hidden names
    only below the paths it is given, so it reads the whole version."""
    with atomic_folder(target) as staged:
        write_version(staged, 1)
    with reading(target) as (version,):
        assert version.name.startswith(".")
        frame = spark.read.parquet(str(version))  # type: ignore[attr-defined]
        assert sorted({row["version"] for row in frame.collect()}) == [1]
        assert frame.count() == 10 * FILES
