"""The Polars engine sums a day's emission counts round by round, through scratch parts split
by a hash of (offer_id, placement) (issue 24: millions of keys never in one hash table). A key
whose emission rows sit in several rounds is counted once, in one part; expectations by hand
on the join-rounds test's lake."""

from __future__ import annotations

import polars as pl
import pytest

from adrecon_assets.engines import key_buckets, polars_engine
from adrecon_assets.engines.polars_engine import join_round
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.test_polars_engine_join_rounds import D, write_lake


def test_emission_counts_of_keys_spread_over_rounds_are_summed_once(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_buckets, "ROWS_PER_ROUND", 3)  # 22 emission rows: 8 rounds
    write_lake(paths)
    # (o1, pA)'s twelve f-emissions and s1 fall into several rounds.
    emission_ids = ["s1", *(f"f{n}" for n in range(12))]
    rounds = pl.DataFrame({"emission_id": emission_ids}).select(join_round(8))
    assert rounds.to_series().n_unique() > 1

    run = reconcile(paths.lake, paths.warehouse, D)  # also asserts equality with the reference

    folder = paths.warehouse / "emission_counts" / f"date_partition={D}"
    files = sorted(folder.glob("*.parquet"))
    assert 1 < len(files) <= 8  # parts with keys of D only, at most one per round
    parts = [pl.read_parquet(path) for path in files]
    counts = sorted(row for part in parts for row in part.iter_rows())
    assert len({row[:2] for row in counts}) == len(counts)  # no key in two parts, or twice
    # D's x1 copy (D-1's row wins) and the losing t1/t2 copies are not counted.
    assert counts == [("o1", "pA", 13), ("o1", "pB", 1), ("o1", "pC", 1), ("o2", "pB", 1)]
    assert run.join.emissions_of_day == 16


def test_a_day_without_emissions_writes_one_empty_counts_file(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polars_engine, "CLICKS_PER_CHUNK", 2)
    write_lake(paths)
    for path in (paths.lake / "emissions" / f"date_partition={D}").glob("*.parquet"):
        path.unlink()

    run = reconcile(paths.lake, paths.warehouse, D)

    folder = paths.warehouse / "emission_counts" / f"date_partition={D}"
    files = list(folder.glob("*.parquet"))
    assert len(files) == 1
    assert pl.read_parquet(files[0]).schema == polars_engine.EMISSION_COUNT_SCHEMA
    assert pl.read_parquet(files[0]).height == 0
    assert run.join.emissions_of_day == 0
