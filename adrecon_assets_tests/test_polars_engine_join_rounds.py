"""The Polars engine joins clicks round by round with the emissions of their key's buckets
(clicks deduplicated by click_id chunks first). Tiny chunks and rounds are forced here so that
a key's clicks sit in several click chunks, a duplicated click_id's copies point to emissions
of different rounds, and D-1's emissions match clicks after midnight; expectations by hand."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from adrecon_assets.engines import key_buckets, polars_engine
from adrecon_assets.engines.polars_engine import join_round, key_hash, scratch_prefix
from adrecon_assets.rules import CLICK_DEDUP_KEY, Topic
from adrecon_assets.warehouse import atomic_folder, leftovers
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.lakes import at, click, emission, write_topic

FIRST = "2026-01-01"
D = "2026-01-02"
DAY = date.fromisoformat(D)
SHARED_KEY_CLICKS = ["c10", "c11", "c12", "c13"]


def write_lake(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        FIRST,
        [
            emission("m1", "o1", "pA", 100, f"{FIRST}T23:59:00"),
            emission("m2", "o1", "pA", 100, f"{FIRST}T23:59:59.500000"),
            emission("x1", "o2", "pB", 500, f"{FIRST}T23:30:00"),  # wins over D's copy
        ],
    )
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("x1", "o2", "pC", 900, f"{D}T00:00:05"),  # key of D-1: not D's
            emission("t1", "o1", "pB", 300, f"{D}T08:00:00"),  # tie on emitted_at: cost 200 wins
            emission("t1", "o1", "pC", 200, f"{D}T08:00:00"),
            emission("t2", "o1", "pD", 200, f"{D}T09:00:00"),  # tie on time and cost: pB wins
            emission("t2", "o1", "pB", 200, f"{D}T09:00:00"),
            emission("s1", "o1", "pA", 100, f"{D}T10:00:00"),  # clicked four times
            emission("s1", "o2", "pB", 700, f"{D}T10:00:00"),  # same emission_id, other offer
            *(emission(f"f{n}", "o1", "pA", 100, f"{D}T11:00:00") for n in range(12)),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [
            click("c01", "m1", "o1", f"{D}T00:01:00", user_id="u01"),  # D-1's m1
            click("c02", "m2", "o1", f"{D}T00:00:00.200000", user_id="u02"),  # too fast
            click("c03", "x1", "o2", f"{D}T00:10:00", user_id="u03"),  # D-1's x1 row
            click("c04", "t1", "o1", f"{D}T08:05:00", user_id="u04"),
            click("c05", "t2", "o1", f"{D}T09:05:00", user_id="u05"),
            *(
                click(click_id, "s1", "o1", f"{D}T10:0{n + 1}:00", user_id=f"u1{n}")
                for n, click_id in enumerate(SHARED_KEY_CLICKS)
            ),
            click("c14", "s1", "o2", f"{D}T10:03:00", user_id="u14"),
            # One click_id twice at the same instant: the copy on f0 (first emission_id) wins,
            # though f1's copy belongs to another round's emissions.
            click("c20", "f1", "o1", f"{D}T12:00:00", user_id="u20"),
            click("c20", "f0", "o1", f"{D}T12:00:00", user_id="u20"),
            click("c21", "nope", "o1", f"{D}T13:00:00", user_id="u21"),  # no emission
        ],
    )


def test_join_in_rounds_by_key_bucket_gives_the_hand_computed_day(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polars_engine, "CLICKS_PER_CHUNK", 2)  # 13 clicks: 7 chunks
    monkeypatch.setattr(key_buckets, "ROWS_PER_ROUND", 3)  # 22 emission rows: 8 rounds
    write_lake(paths)
    chunks = pl.DataFrame({"click_id": SHARED_KEY_CLICKS}).select(key_hash(CLICK_DEDUP_KEY) % 7)
    assert chunks.to_series().n_unique() > 1  # the shared key's clicks span click chunks
    rounds = pl.DataFrame({"emission_id": ["f0", "f1"]}).select(join_round(8))
    assert rounds.to_series().n_unique() == 2  # c20's two copies point to different rounds

    run = reconcile(paths.lake, paths.warehouse, D)  # also asserts equality with the reference

    assert run.join.clicks_in == 13
    assert run.join.clicks_deduplicated == 12
    assert run.join.emissions_in == 22
    assert run.join.emissions_deduplicated == 19  # D's x1, t1 and t2 copies dropped
    assert run.join.emissions_of_day == 16  # t1, t2, s1/o1, s1/o2, f0-f11
    assert run.join.matched_clicks == 11  # all but c21
    assert run.join.matched_previous_day == 3  # c01, c02, c03
    joined_folder = paths.warehouse / "joined_clicks" / f"date_partition={D}"
    assert len(list(joined_folder.glob("*.parquet"))) == 8  # one file per round
    assert [path.name for path in joined_folder.parent.iterdir()] == [joined_folder.name]
    joined = {
        row[0]: row[1:]
        for row in pl.read_parquet(joined_folder / "*.parquet")
        .select("click_id", "emission_id", "placement", "click_cost_micros", "emitted_at")
        .iter_rows()
    }
    assert len(joined) == 12
    assert joined["c03"] == ("x1", "pB", 500, at(f"{FIRST}T23:30:00"))
    assert joined["c04"] == ("t1", "pC", 200, at(f"{D}T08:00:00"))
    assert joined["c05"] == ("t2", "pB", 200, at(f"{D}T09:00:00"))
    assert {joined[click_id] for click_id in SHARED_KEY_CLICKS} == {
        ("s1", "pA", 100, at(f"{D}T10:00:00"))
    }
    assert joined["c14"] == ("s1", "pB", 700, at(f"{D}T10:00:00"))
    assert joined["c20"] == ("f0", "pA", 100, at(f"{D}T11:00:00"))
    assert joined["c21"] == ("nope", None, None, None)
    assert run.reasons["c02"] == "too_fast"
    assert run.reasons["c21"] == "no_emission"
    # (date, offer, placement, emissions, clicks, cost, fraud clicks, refunds)
    assert run.statistics == [
        (DAY, "o1", "pA", 13, 6, 600, 1, 100),  # c01, c10-c13, c20; c02 refunded
        (DAY, "o1", "pB", 1, 1, 200, 0, 0),  # t2, c05
        (DAY, "o1", "pC", 1, 1, 200, 0, 0),  # t1, c04
        (DAY, "o2", "pB", 1, 2, 1200, 0, 0),  # s1/o2; c03 on D-1's x1 and c14
    ]


def test_default_sizes_join_the_same_day_in_one_round(paths: Paths) -> None:
    write_lake(paths)

    run = reconcile(paths.lake, paths.warehouse, D)

    assert (run.join.clicks_deduplicated, run.join.matched_clicks) == (12, 11)
    assert run.join.matched_previous_day == 3
    joined_folder = paths.warehouse / "joined_clicks" / f"date_partition={D}"
    assert len(list(joined_folder.glob("*.parquet"))) == 1
    assert run.statistics[0] == (DAY, "o1", "pA", 13, 6, 600, 1, 100)


def test_a_killed_joins_click_scratch_is_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "joined_clicks" / f"date_partition={D}"
    with atomic_folder(target) as version:  # the join writes into a fresh version folder
        scratch = Path(tempfile.mkdtemp(dir=version.parent, prefix=scratch_prefix(version)))
        (scratch / "round-000-chunk-00000.parquet").touch()  # as a SIGKILL would leave it
    assert scratch.name.startswith(".") and leftovers(target) == [scratch]

    with atomic_folder(target):
        pass

    assert not scratch.exists()
