"""The Spark engine stages emissions in the key-bucket layout both engines share and joins them
round by round. Tiny rounds are forced so that D-1's rows clicked after midnight, ties, orphans
and a duplicated click_id whose copies point to emissions of different rounds all cross round
boundaries; the expectations are the hand-computed ones of the Polars engine's rounds test
(`test_polars_engine_join_rounds.py`), and the reference must agree."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from pyspark.sql import SparkSession

from adrecon_assets.engines import key_buckets
from adrecon_assets.engines.base import Engine
from adrecon_assets.engines.key_buckets import BUCKET_FILE, emission_rounds, key_bucket_files
from adrecon_assets.engines.polars_engine import PolarsEngine, emission_bucket
from adrecon_assets.engines.spark_engine import SparkEngine
from adrecon_assets.partitions import first_day
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import DayRun, run_engine_day, table_rows
from adrecon_assets_tests.reference import reference_day
from adrecon_assets_tests.test_polars_engine_join_rounds import DAY, D, write_lake

pytestmark = pytest.mark.spark

# (date, offer, placement, emissions, clicks, cost, fraud clicks, refunds), by hand in the
# Polars rounds test: c01, c10-c13, c20 on o1/pA with c02 refunded; t1 and t2's ties; c03 on
# D-1's x1 row (not D's copy) and c14 on s1/o2; c21 an orphan.
EXPECTED_STATISTICS = [
    (DAY, "o1", "pA", 13, 6, 600, 1, 100),
    (DAY, "o1", "pB", 1, 1, 200, 0, 0),
    (DAY, "o1", "pC", 1, 1, 200, 0, 0),
    (DAY, "o2", "pB", 1, 2, 1200, 0, 0),
]


def staged_emissions(warehouse: Path) -> list[Path]:
    return sorted((warehouse / "raw_emissions").iterdir())


def assert_hand_computed(run: DayRun, lake: Path) -> None:
    assert run.join.clicks_in == 13
    assert run.join.clicks_deduplicated == 12
    assert run.join.emissions_in == 22
    assert run.join.emissions_deduplicated == 19  # D's x1, t1 and t2 copies dropped
    assert run.join.emissions_of_day == 16
    assert run.join.matched_clicks == 11  # all but the orphan c21
    assert run.join.matched_previous_day == 3  # c01, c02, c03 on D-1's rows
    assert run.reasons["c02"] == "too_fast"
    assert run.reasons["c21"] == "no_emission"
    assert run.statistics == EXPECTED_STATISTICS
    statistics, reasons = reference_day(lake, DAY, first_day())
    assert run.reasons == reasons
    assert run.statistics == table_rows(statistics)


def assert_bucket_files_hold_the_rows_polars_puts_in_that_bucket(warehouse: Path) -> None:
    checked = 0
    for folder in staged_emissions(warehouse):
        for path in folder.glob("*.parquet"):
            match = BUCKET_FILE.match(path.name)
            assert match is not None, path.name
            buckets = pl.read_parquet(path).select(emission_bucket()).to_series().unique()
            assert buckets.to_list() == [int(match.group(1))]
            checked += 1
    assert checked >= 2


def test_spark_stages_key_buckets_and_joins_them_in_rounds(
    spark: SparkSession, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_buckets, "ROWS_PER_ROUND", 3)  # 22 emission rows: 8 rounds
    write_lake(paths)

    run = run_engine_day(SparkEngine(spark), paths.lake, paths.warehouse, DAY)

    assert_hand_computed(run, paths.lake)
    folders = staged_emissions(paths.warehouse)
    assert len(folders) == 2
    assert all(key_bucket_files(folder) is not None for folder in folders)
    # Staging does not depend on the round size: the same bucket files as with the default.
    assert_bucket_files_hold_the_rows_polars_puts_in_that_bucket(paths.warehouse)
    assert len(emission_rounds(folders)) == 8
    joined = paths.warehouse / "joined_clicks" / f"date_partition={D}"
    rounds_written = {path.name[:9] for path in joined.glob("*.parquet")}
    assert rounds_written == {f"part-r{number:03d}" for number in range(8)}
    assert not [path for path in joined.parent.iterdir() if path.name.startswith(".")]


# Each engine's own D-1 is covered above and by the Polars rounds test; here D-1 is the other's.
@pytest.mark.parametrize(
    ("previous_day_engine", "engine_of_day"), [("polars", "spark"), ("spark", "polars")]
)
def test_either_engine_joins_in_rounds_what_the_other_staged(
    spark: SparkSession,
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
    previous_day_engine: str,
    engine_of_day: str,
) -> None:
    engines: dict[str, Engine] = {"polars": PolarsEngine(), "spark": SparkEngine(spark)}
    monkeypatch.setattr(key_buckets, "ROWS_PER_ROUND", 5)  # 22 emission rows: 5 rounds
    write_lake(paths)

    run = run_engine_day(
        engines[engine_of_day],
        paths.lake,
        paths.warehouse,
        DAY,
        previous_day_engine=engines[previous_day_engine],
    )

    assert_hand_computed(run, paths.lake)
    assert len(emission_rounds(staged_emissions(paths.warehouse))) == 5
