"""Issue 24's high-cardinality benchmark day has the shape it promises: many (offer_id,
placement) keys over 40 placements, Zipf-skewed offers, files of FILE_ROWS rows, the day's
clicks in one file, and every edge the reconciliation must handle; the Polars engine and the
reference agree on it."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from benchmarks import high_cardinality
from benchmarks.dataset import BENCHMARK_DAY, FIRST_DAY
from benchmarks.high_cardinality import offer_cdf, write_high_cardinality_lake

ROWS_PER_DAY = 40_000


def emission_files(lake: Path, day: str) -> list[Path]:
    return sorted((lake / "emissions" / f"date_partition={day}").glob("*.parquet"))


def test_high_cardinality_day_has_many_skewed_keys_and_every_edge(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(high_cardinality, "FILE_ROWS", 15_000)  # 40,000 rows: 3 files a day
    generated = write_high_cardinality_lake(paths.lake, FIRST_DAY, ROWS_PER_DAY, seed=5)

    files = {day: emission_files(paths.lake, day.isoformat()) for day in (FIRST_DAY, BENCHMARK_DAY)}
    assert [len(found) for found in files.values()] == [3, 3]
    clicks_folder = paths.lake / "clicks" / f"date_partition={BENCHMARK_DAY}"
    assert len(list(clicks_folder.glob("*.parquet"))) == 1
    emissions = pl.read_parquet(files[BENCHMARK_DAY])
    # 1 % of the rows are sent twice: 40,000 * 1.01 = 40,400 rows a day.
    assert generated.emission_rows == 2 * emissions.height == 2 * 40_400
    assert emissions["placement"].n_unique() == high_cardinality.PLACEMENTS
    keys = emissions.select("offer_id", "placement").n_unique()
    offers = emissions["offer_id"].n_unique()
    assert offers < keys < emissions.height  # offers on several placements, keys repeated
    assert keys > 100 * high_cardinality.PLACEMENTS  # not the simulator's small catalogue
    # Zipf: the most popular offer ("o0") draws a share cdf[0] of the rows (binomial, 5 sigma).
    share = float(offer_cdf()[0])
    sigma = math.sqrt(share * (1 - share) / 40_000)
    top = emissions.filter(pl.col("offer_id") == "o0").height - 400 * share  # minus duplicates
    assert abs(top / 40_000 - share) < 5 * sigma + 0.002

    run = reconcile(paths.lake, paths.warehouse, BENCHMARK_DAY)  # engine == reference

    reasons = Counter(run.reasons.values())
    assert all(reasons[reason] > 0 for reason in ("no_emission", "too_fast", "click_flood"))
    assert reasons["denylisted_ip"] > 0
    assert run.join.duplicate_clicks > 0
    assert run.join.duplicate_emissions > 0
    assert run.join.matched_previous_day > 0  # D-1's emissions clicked after midnight
    assert len(run.statistics) >= keys  # D's keys, and those of D-1's clicked emissions
