"""The Polars engine's fast emission dedup (hash every key once, sort only repeated keys) gives
the contract's counts and report numbers, computed here by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from adrecon_assets.engines import key_buckets, polars_engine
from adrecon_assets.engines.key_buckets import emission_rounds, key_bucket_files
from adrecon_assets.engines.polars_engine import KEY_HASH, dedup_first, repeated_values
from adrecon_assets.rules import EMISSION_DEDUP_KEY, EMISSION_DEDUP_ORDER, Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.lakes import click, emission, write_topic

FIRST = "2026-01-01"
D = "2026-01-02"
DAY = date.fromisoformat(D)


def test_repeated_values_lists_each_value_seen_twice_or_more_once() -> None:
    values = pl.Series([7, 3, 7, 9, 3, 7, 1], dtype=pl.UInt64)

    assert sorted(repeated_values(values).to_list()) == [3, 7]
    assert repeated_values(pl.Series([5], dtype=pl.UInt64)).to_list() == []


@pytest.mark.parametrize("hashes_collide", [False, True])
def test_dedup_first_keeps_each_keys_first_row_even_when_keys_share_a_hash(
    monkeypatch: pytest.MonkeyPatch, hashes_collide: bool
) -> None:
    if hashes_collide:  # every key hashes to 0: the rows of e1 and e2 interleave when sorted
        monkeypatch.setattr(
            polars_engine,
            "key_hash",
            lambda key: (pl.col(key[0]).str.len_bytes() * 0).cast(pl.UInt64).alias(KEY_HASH),
        )
    rows = pl.DataFrame(
        [
            ("e2", "o1", "pB", 100, datetime(2026, 1, 2, 10, tzinfo=UTC)),
            ("e1", "o1", "pA", 300, datetime(2026, 1, 2, 9, tzinfo=UTC)),
            ("e2", "o1", "pA", 100, datetime(2026, 1, 2, 9, 30, tzinfo=UTC)),  # e2's earliest
            ("e1", "o1", "pC", 200, datetime(2026, 1, 2, 9, tzinfo=UTC)),  # tie: cheaper wins
            ("e3", "o1", "pD", 100, datetime(2026, 1, 2, 12, tzinfo=UTC)),  # once
        ],
        schema=["emission_id", "offer_id", "placement", "click_cost_micros", "emitted_at"],
        orient="row",
    )

    first = dedup_first(rows, EMISSION_DEDUP_KEY, EMISSION_DEDUP_ORDER)

    assert first.columns == rows.columns
    assert sorted(first.select("emission_id", "placement").rows()) == [
        ("e1", "pC"),
        ("e2", "pA"),
        ("e3", "pD"),
    ]


def test_repeats_within_and_across_days_count_once_with_the_first_rows_placement(
    paths: Paths,
) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        FIRST,
        [
            emission("e1", "o1", "p1", 100, f"{FIRST}T23:00:00"),
            emission("e1", "o1", "p1", 100, f"{FIRST}T23:00:00"),  # exact copy on D-1
        ],
    )
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p2", 100, f"{D}T00:00:01"),  # key of D-1: not counted on D
            emission("e2", "o1", "p3", 200, f"{D}T05:00:00"),  # repeated on D, first is p3
            emission("e2", "o1", "p2", 100, f"{D}T05:00:01"),
            emission("e2", "o1", "p2", 100, f"{D}T06:00:00"),
            emission("e3", "o1", "p2", 300, f"{D}T07:00:00"),  # once: its own row
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [click("c1", "e2", "o1", f"{D}T05:10:00"), click("c2", "e1", "o1", f"{D}T00:10:00")],
    )

    run = reconcile(paths.lake, paths.warehouse, D)

    assert run.join.emissions_in == 7
    assert run.join.emissions_deduplicated == 3  # e1, e2, e3
    assert run.join.emissions_of_day == 2  # e2 (p3) and e3 (p2)
    assert run.join.matched_previous_day == 1  # c2 on e1 of D-1
    assert run.statistics == [
        (DAY, "o1", "p1", 0, 1, 100, 0, 0),
        (DAY, "o1", "p2", 1, 0, 0, 0, 0),
        (DAY, "o1", "p3", 1, 1, 200, 0, 0),
    ]


def write_repeats_across_days(paths: Paths) -> None:
    """Keys repeated within and across days, more keys than buckets would leave empty."""
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        FIRST,
        [emission(f"e{n}", "o1", "p1", 100, f"{FIRST}T23:00:00") for n in range(40)],
    )
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [emission(f"e{n}", "o1", "p2", 100, f"{D}T00:00:01") for n in range(0, 40, 2)]
        + [emission(f"f{n}", "o1", "p2", 300, f"{D}T07:00:00") for n in range(30)]
        + [emission(f"f{n}", "o1", "p3", 200, f"{D}T06:00:00") for n in range(0, 30, 3)],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [click("c1", "f3", "o1", f"{D}T07:10:00"), click("c2", "e4", "o1", f"{D}T00:10:00")],
    )


def staged_emission_folders(paths: Paths) -> list[Path]:
    return sorted({path.parent for path in paths.warehouse.rglob("part-k*.parquet")}, key=str)


def test_staged_emissions_are_key_bucket_files_and_no_key_spans_two_rounds(
    paths: Paths,
) -> None:
    write_repeats_across_days(paths)
    reconcile(paths.lake, paths.warehouse, D)
    folders = staged_emission_folders(paths)

    assert len(folders) == 2  # raw_emissions of D-1 and of D
    assert all(key_bucket_files(folder) is not None for folder in folders)
    assert len(emission_rounds(folders)) == 1  # 100 rows: far below ROWS_PER_ROUND
    rounds = emission_rounds(folders, rows_per_round=30)
    assert len(rounds) == 4  # ceil(100 / 30)
    keys = [
        set(pl.read_parquet(files).select(pl.concat_str("emission_id", "offer_id")).to_series())
        for files in rounds
    ]
    assert sum(len(files) for files in rounds) == sum(
        len(list(folder.glob("*.parquet"))) for folder in folders
    )
    assert all(not (a & b) for i, a in enumerate(keys) for b in keys[i + 1 :])


def test_deduplication_in_many_rounds_gives_the_hand_computed_day(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_buckets, "ROWS_PER_ROUND", 7)  # 100 rows: 15 rounds
    write_repeats_across_days(paths)

    run = reconcile(paths.lake, paths.warehouse, D)

    assert run.join.emissions_in == 100  # 40 on D-1, 20 + 30 + 10 on D
    assert run.join.emissions_deduplicated == 70  # e0-e39, f0-f29
    assert run.join.emissions_of_day == 30  # the f keys; e keys belong to D-1
    assert run.join.matched_previous_day == 1  # c2 on e4 of D-1
    # f0, f3, ..., f27 are first seen at 06:00 on p3 (cost 200), the other f keys on p2.
    assert run.statistics == [
        (DAY, "o1", "p1", 0, 1, 100, 0, 0),
        (DAY, "o1", "p2", 20, 0, 0, 0, 0),
        (DAY, "o1", "p3", 10, 1, 200, 0, 0),
    ]


def test_folders_bucketed_otherwise_are_deduplicated_in_one_round(paths: Paths) -> None:
    write_repeats_across_days(paths)
    reconcile(paths.lake, paths.warehouse, D)
    folders = staged_emission_folders(paths)
    # As another engine (or Polars version) would leave D-1: one file, no bucketing tag.
    merged = pl.read_parquet(list(folders[0].glob("*.parquet")))
    for path in folders[0].glob("*.parquet"):
        path.unlink()
    merged.write_parquet(folders[0] / "part-00000.parquet")
    (folders[0] / key_buckets.BUCKETING_MARKER).unlink()

    assert key_bucket_files(folders[0]) is None
    assert emission_rounds(folders, rows_per_round=30) == [
        sorted(path for folder in folders for path in folder.glob("*.parquet"))
    ]
