"""The Polars engine's steps equal the independent DuckDB reference on several seeded random
lakes (no Dagster: a fast, broad sweep of edge combinations beside the hand-computed tests)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adrecon_assets.engines import key_buckets, polars_engine
from adrecon_assets.partitions import first_day
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.random_lake import build_random_lake

DAYS = 4


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_engine_equals_reference_for_every_day_of_a_random_lake(paths: Paths, seed: int) -> None:
    lake = build_random_lake(paths.lake, first_day(), DAYS, seed=seed)
    assert lake.clicks_made > 0
    for offset in range(DAYS):
        run = reconcile(paths.lake, paths.warehouse, first_day() + timedelta(days=offset))
        # The day's statistics account for every matched click exactly once.
        matched = [reason for reason in run.reasons.values() if reason != "no_emission"]
        assert run.totals.clicks + run.totals.fraud_clicks == len(matched)


@pytest.mark.parametrize("seed", [1, 2])
def test_engine_in_small_chunks_and_rounds_equals_reference(
    paths: Paths, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded-memory paths forced on a small lake: clicks in chunks of 7 (by click_id for the
    join, by user and offer for the flood window) and emissions in rounds of 50 rows."""
    monkeypatch.setattr(polars_engine, "CLICKS_PER_CHUNK", 7)
    monkeypatch.setattr(key_buckets, "ROWS_PER_ROUND", 50)
    lake = build_random_lake(paths.lake, first_day(), DAYS, seed=seed)
    assert lake.clicks_made > 7
    for offset in range(DAYS):
        day = first_day() + timedelta(days=offset)
        run = reconcile(paths.lake, paths.warehouse, day)
        matched = [reason for reason in run.reasons.values() if reason != "no_emission"]
        assert run.totals.clicks + run.totals.fraud_clicks == len(matched)
        joined = paths.warehouse / "joined_clicks" / f"date_partition={day.isoformat()}"
        assert len(list(joined.glob("*.parquet"))) > 1  # really written chunk by chunk
