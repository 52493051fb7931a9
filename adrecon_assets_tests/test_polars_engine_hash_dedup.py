"""The Polars engine's fast emission dedup (hash every key once, sort only repeated keys) gives
the contract's counts and report numbers, computed here by hand."""

from __future__ import annotations

from datetime import date

import polars as pl

from adrecon_assets.engines.polars_engine import repeated_values
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.lakes import click, emission, write_topic

FIRST = "2026-01-01"
D = "2026-01-02"
DAY = date.fromisoformat(D)


def test_repeated_values_lists_each_value_seen_twice_or_more_once() -> None:
    values = pl.Series([7, 3, 7, 9, 3, 7, 1], dtype=pl.UInt64)

    assert sorted(repeated_values(values).to_list()) == [3, 7]


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
