"""Spark-specific behaviour of the Spark engine: Parquet type coercions, quarantine, bad files,
reading Polars' outputs, and the resource's session handling."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from adrecon_assets.contracts import LakeInputError
from adrecon_assets.engines.base import EmissionSource
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.engines.spark_engine import (
    BYPASS_PARTIAL_AGGREGATION,
    DRIVER_SORT_MAX_ROWS,
    KEY_HASH,
    SparkEngine,
    key_hash,
)
from adrecon_assets.lake import Lake
from adrecon_assets.resources.spark import SparkEngineResource
from adrecon_assets.rules import EMISSION_DEDUP_KEY, Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.engine_runs import table_rows
from adrecon_assets_tests.lakes import at, click, emission, write_topic

DAY = date(2026, 1, 2)
FIRST_DAY = date(2026, 1, 1)


def stage(engine: SparkEngine | PolarsEngine, lake: Path, warehouse: Path, topic: Topic) -> Path:
    out = warehouse / topic.value
    engine.stage_topic(Lake(lake).partition(topic, DAY), out, warehouse / f"q_{topic.value}")
    return out


@pytest.mark.spark
def test_nanosecond_naive_and_narrow_columns_are_typed_like_polars(
    spark: SparkSession, tmp_path: Path
) -> None:
    folder = Lake(tmp_path / "lake").folder(Topic.EMISSIONS, DAY)
    folder.mkdir(parents=True)
    # Naive ns timestamps are UTC wall times floored to µs; int32 costs widen to int64.
    table = pa.table(
        {
            "emission_id": ["e1", "e2"],
            "offer_id": ["o1", "o1"],
            "placement": pa.array(["p1", "p2"]).dictionary_encode(),
            "click_cost_micros": pa.array([7, 2_000_000_000], pa.int32()),
            "emitted_at": pa.array(
                [1_767_312_000_000_001_999, 1_767_398_399_999_999_999], pa.timestamp("ns")
            ),
            "extra": [1.5, 2.5],  # extra columns are ignored
        }
    )
    pq.write_table(table, folder / "nanos.parquet")
    spark_out = stage(SparkEngine(spark), tmp_path / "lake", tmp_path / "spark", Topic.EMISSIONS)
    polars_out = stage(PolarsEngine(), tmp_path / "lake", tmp_path / "polars", Topic.EMISSIONS)
    staged = pl.read_parquet(spark_out / "*.parquet").sort("emission_id")
    assert staged.rows() == [
        ("e1", "o1", "p1", 7, at("2026-01-02T00:00:00.000001")),
        ("e2", "o1", "p2", 2_000_000_000, at("2026-01-02T23:59:59.999999")),
    ]
    assert staged.equals(pl.read_parquet(polars_out / "*.parquet").sort("emission_id"))


@pytest.mark.spark
def test_bad_rows_are_quarantined_with_the_polars_reasons_and_plain_file_path(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = write_topic(
        tmp_path / "lake",
        Topic.CLICKS,
        DAY,
        [
            click("c1", "e1", "o1", "2026-01-02T00:00:00", ip="1.2.3.4\n"),  # Java `$` would pass
            click("c2", "e1", "o1", "2026-01-01T23:59:59.999999"),  # outside its folder's day
            click("c3", "e1", "o1", "2026-01-02T00:00:00") | {"user_id": None},
            click("c4", "e1", "o1", "2026-01-02T23:59:59.999999", ip="255.255.255.255"),
        ],
    )
    report = SparkEngine(spark).stage_topic(
        Lake(tmp_path / "lake").partition(Topic.CLICKS, DAY), tmp_path / "out", tmp_path / "q"
    )
    assert (report.rows_in, report.rows_out) == (4, 1)
    assert report.quarantined == {
        "clicked_at_outside_partition_day": 1,
        "invalid_ipv4_ip": 1,
        "null_user_id": 1,
    }
    quarantined = pl.read_parquet(tmp_path / "q" / "*.parquet").sort("click_id")
    assert quarantined["source_file"].to_list() == [str(path)] * 3  # path holds a '='
    assert quarantined["quarantine_reason"].to_list() == [
        "invalid_ipv4_ip",
        "clicked_at_outside_partition_day",
        "null_user_id",
    ]


@pytest.mark.spark
def test_missing_column_fails_naming_the_file_and_the_column(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = write_topic(
        tmp_path / "lake", Topic.CLICKS, DAY, [click("c1", "e1", "o1", "2026-01-02")]
    )
    pq.write_table(pq.read_table(path).drop_columns(["ip"]), path)
    with pytest.raises(LakeInputError, match=r"part-0\.parquet: missing column 'ip'"):
        SparkEngine(spark).stage_topic(
            Lake(tmp_path / "lake").partition(Topic.CLICKS, DAY), tmp_path / "out", tmp_path / "q"
        )


@pytest.mark.spark
def test_engines_read_each_others_outputs_flood_window_edges(
    spark: SparkSession, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    write_topic(
        lake, Topic.EMISSIONS, FIRST_DAY, [emission("e1", "o1", "p1", 100, "2026-01-01T23:59:59")]
    )
    write_topic(lake, Topic.EMISSIONS, DAY, [])
    times = ["00:00:00", "00:03:20", "00:06:40", "00:10:00", "00:13:20.000001"]
    clicks = [click(f"c{n}", "e1", "o1", f"2026-01-02T{t}") for n, t in enumerate(times, 1)]
    write_topic(lake, Topic.CLICKS, DAY, clicks)
    polars, spark_engine, warehouse = PolarsEngine(), SparkEngine(spark), Warehouse(tmp_path / "w")
    sources = [
        EmissionSource(day, stage_day(polars, lake, warehouse, day)) for day in (FIRST_DAY, DAY)
    ]
    clicks_folder = tmp_path / "clicks"
    polars.stage_topic(Lake(lake).partition(Topic.CLICKS, DAY), clicks_folder, tmp_path / "q")
    joined, counts = tmp_path / "joined", tmp_path / "counts"
    polars.join_clicks(DAY, clicks_folder, sources, joined, counts)
    # Spark flags Polars' joined clicks; Polars aggregates Spark's flags.
    spark_engine.flag_fraud(DAY, joined, [], tmp_path / "flags")
    polars.aggregate(DAY, tmp_path / "flags", counts, tmp_path / "stats")
    reasons = dict(
        pl.read_parquet(tmp_path / "flags" / "*.parquet").select("click_id", "fraud_reason").rows()
    )
    # c4 is exactly 600 s after c1 (3 earlier clicks in the window); c5 is 1 µs past c2's window.
    assert reasons == {"c1": None, "c2": None, "c3": None, "c4": "click_flood", "c5": None}
    stats = table_rows(pl.read_parquet(tmp_path / "stats" / "*.parquet"))
    assert stats == [(DAY, "o1", "p1", 0, 4, 400, 1, 100)]


def stage_day(engine: PolarsEngine, lake: Path, warehouse: Warehouse, day: date) -> Path:
    out = warehouse.folder(Dataset.RAW_EMISSIONS, day)
    engine.stage_topic(
        Lake(lake).partition(Topic.EMISSIONS, day),
        out,
        warehouse.quarantine_folder(Topic.EMISSIONS, day),
    )
    return out


def test_parity_settings_win_over_overrides_and_master_comes_from_the_setting() -> None:
    resource = SparkEngineResource(
        spark_master="spark://127.0.0.1:7077",
        spark_config={
            "spark.sql.session.timeZone": "Europe/Paris",
            "spark.sql.shuffle.partitions": "64",
        },
    )
    config = resource.full_spark_config
    assert config["spark.master"] == "spark://127.0.0.1:7077"
    assert config["spark.sql.session.timeZone"] == "UTC"
    assert config["spark.sql.shuffle.partitions"] == "64"
    assert config["spark.ui.enabled"] == "false"


@pytest.mark.spark
def test_resource_reuses_a_running_session_and_leaves_it_running(spark: SparkSession) -> None:
    resource = SparkEngineResource(spark_master="local[1]")
    context = dg.build_init_resource_context()
    resource.setup_for_execution(context)
    assert resource.spark_session.sparkContext.applicationId == spark.sparkContext.applicationId
    assert resource.get_engine().name == "spark"
    resource.teardown_after_execution(context)
    assert spark.range(3).count() == 3


@pytest.mark.spark
def test_repeated_hashes_by_aggregation_restore_the_session_setting(spark: SparkSession) -> None:
    """A classic session sorts small days' hashes on the driver; the Spark aggregation (the
    path of large days and of every Connect session) finds the same repeats and leaves the
    session's partial-aggregation setting as it found it."""
    assert SparkEngine(spark).driver_sort_max_rows == DRIVER_SORT_MAX_ROWS
    rows = [("e1", "o1"), ("e2", "o1"), ("e2", "o1"), ("e3", "o2"), ("e3", "o2"), ("e3", "o2")]
    emissions = spark.createDataFrame(rows, "emission_id string, offer_id string")
    expected = {
        row[KEY_HASH]
        for row in emissions.select(key_hash(EMISSION_DEDUP_KEY))
        .where(F.col("emission_id") != "e1")
        .collect()
    }
    spark.conf.set(BYPASS_PARTIAL_AGGREGATION, "false")
    for limit in (DRIVER_SORT_MAX_ROWS, 0):
        engine = SparkEngine(spark, driver_sort_max_rows=limit)
        repeated = engine._repeated_hashes(emissions, len(rows)).collect()
        assert {row[KEY_HASH] for row in repeated} == expected
        assert len(repeated) == 2  # e2's and e3's hashes, each once
    assert spark.conf.get(BYPASS_PARTIAL_AGGREGATION) == "false"


def column_encodings(folder: Path) -> dict[str, set[str]]:
    """Each column's Parquet encodings over every file of `folder`."""
    encodings: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.parquet")):
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            for index in range(metadata.num_columns):
                column = metadata.row_group(group).column(index)
                encodings.setdefault(column.path_in_schema, set()).update(column.encodings)
    return encodings


@pytest.mark.spark
def test_ids_are_written_without_a_dictionary_and_other_strings_with_one(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Dictionary encoding of an id column (nearly every value distinct) is wasted work; a
    repetitive column such as `offer_id` keeps it, in plain writes and in the key buckets."""
    rows = [(f"c{n}", f"e{n}", "o1" if n % 2 else "o2") for n in range(200)]
    frame = spark.createDataFrame(rows, "click_id string, emission_id string, offer_id string")
    SparkEngine.write(frame, tmp_path / "plain")
    SparkEngine(spark).write_key_buckets(frame.drop("click_id"), tmp_path / "buckets")

    plain, buckets = column_encodings(tmp_path / "plain"), column_encodings(tmp_path / "buckets")

    for encodings in (plain["click_id"], plain["emission_id"], buckets["emission_id"]):
        assert not any("DICTIONARY" in encoding for encoding in encodings), encodings
    for encodings in (plain["offer_id"], buckets["offer_id"]):
        assert any("DICTIONARY" in encoding for encoding in encodings), encodings
