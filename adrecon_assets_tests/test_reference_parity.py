"""The Polars engine's steps equal the independent DuckDB reference on several seeded random
lakes (no Dagster: a fast, broad sweep of edge combinations beside the hand-computed tests)."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
