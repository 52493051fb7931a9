"""The Spark engine finds repeated emission keys on the driver (small days) or with a Spark
aggregation (large days): both paths must write and report exactly what Polars does."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.engines.spark_engine import SparkEngine
from adrecon_assets_tests.test_engine_parity import (
    DENYLIST,
    assert_same_outputs,
    click_rows,
    emission_rows,
    run_day,
    write_lake,
)

pytestmark = pytest.mark.spark


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    emissions=emission_rows,
    clicks=click_rows,
    denylist=st.lists(st.sampled_from(DENYLIST), max_size=2),
)
def test_distributed_repeated_keys_path_equals_polars(
    spark: SparkSession,
    emissions: list[tuple[Any, ...]],
    clicks: list[tuple[Any, ...]],
    denylist: list[str],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_lake(root / "lake", emissions, clicks, denylist)
        polars_day = run_day(PolarsEngine(), root / "lake", root / "polars")
        # A limit of 0 rows sends every day, even an empty one, down the aggregation path.
        engine = SparkEngine(spark, driver_sort_max_rows=0)
        assert_same_outputs(polars_day, run_day(engine, root / "lake", root / "spark"))
