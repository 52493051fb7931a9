"""Contract section 7 on the Polars path, each case through `dagster.materialize`.

Structural faults (unreadable file, missing column, wrong type) fail the run naming the file and
column; row faults (null, negative cost, timestamp outside the day) are quarantined and stop the
day with a failed blocking check. Either way the day's serving rows stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adrecon_assets import rules, serving
from adrecon_assets.checks.staging import NO_QUARANTINED_ROWS
from adrecon_assets.definitions import ASSETS
from adrecon_assets.lake import Lake
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, frame, write_topic

DAY = date(2026, 1, 2)
# What the online layer wrote for the day before any reconciliation: must survive a failed run.
ONLINE_ROWS = [(DAY, "o1", "top", 9, 9, 900, 0, 0, "online")]
STATS_QUERY = (
    "SELECT offer_id, placement, emissions, clicks, cost_micros, fraud_clicks, refund_micros, "
    "source FROM offer_placement_stats WHERE date = ? ORDER BY offer_id, placement"
)
GOOD_EMISSIONS = [
    emission("e1", "o1", "top", 100, "2026-01-02T00:00:00"),
    emission("e2", "o2", "side", 50, "2026-01-02T00:00:00"),
]
GOOD_CLICKS = [
    click("c1", "e1", "o1", "2026-01-02T01:00:00", user_id="u1"),
    click("c2", "e2", "o2", "2026-01-02T02:00:00", user_id="u2"),
]
# GOOD_* reconciled by hand: one valid click of each emission.
GOOD_STATS = [
    ("o1", "top", 1, 1, 100, 0, 0, "offline"),
    ("o2", "side", 1, 1, 50, 0, 0, "offline"),
]


def seed_online_day(database: Path) -> None:
    columns = ["date", "offer_id", "placement", "emissions", "clicks", "cost_micros"]
    columns += ["fraud_clicks", "refund_micros", "source"]
    rows = pa.table({name: [row[i] for row in ONLINE_ROWS] for i, name in enumerate(columns)})
    with duckdb.connect(str(database)) as connection:
        serving.replace_day(connection, serving.OFFER_PLACEMENT_STATS, DAY, rows)


def stats_of_day(database: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(STATS_QUERY, [DAY]).fetchall()


ONLINE_STATS = [row[1:] for row in ONLINE_ROWS]


def folder(paths: Paths, topic: Topic) -> Path:
    target = Lake(paths.lake).folder(topic, DAY)
    target.mkdir(parents=True, exist_ok=True)
    return target


def run_day(resources: dict[str, object]) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS, partition_key=DAY.isoformat(), resources=resources, raise_on_error=False
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    errors = [event.step_failure_data.error for event in result.all_events if event.is_step_failure]
    return "\n".join(error.to_string() for error in errors if error is not None)


@pytest.fixture
def good_lake(paths: Paths) -> Paths:
    write_topic(paths.lake, Topic.EMISSIONS, DAY, GOOD_EMISSIONS)
    write_topic(paths.lake, Topic.CLICKS, DAY, GOOD_CLICKS)
    seed_online_day(paths.serving_db)
    return paths


def assert_failed_untouched(result: dg.ExecuteInProcessResult, paths: Paths) -> None:
    assert not result.success
    assert stats_of_day(paths.serving_db) == ONLINE_STATS


# Structural faults: the run fails, naming the file and the column. Each writes one bad file
# beside the good ones and returns the error text the failure must contain.


def corrupt_file(paths: Paths) -> str:
    bad = folder(paths, Topic.CLICKS) / "late-1.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet footer")
    return f"{bad}: not a readable Parquet file"


def zero_byte_file(paths: Paths) -> str:
    # A 0-byte file is a write cut short, not an empty day: its rows may exist somewhere.
    bad = folder(paths, Topic.EMISSIONS) / "late-1.parquet"
    bad.touch()
    return f"{bad}: not a readable Parquet file"


def missing_column(paths: Paths) -> str:
    bad = folder(paths, Topic.CLICKS) / "late-1.parquet"
    rows = frame(Topic.CLICKS, [click("c3", "e1", "o1", "2026-01-02T03:00:00")])
    rows.drop("ip").write_parquet(bad)
    return f"{bad}: missing column 'ip'"


def wrong_type(paths: Paths) -> str:
    bad = folder(paths, Topic.EMISSIONS) / "late-1.parquet"
    rows = frame(Topic.EMISSIONS, [emission("e3", "o3", "top", 7, "2026-01-02T05:00:00")])
    rows.with_columns(pl.col("click_cost_micros").cast(pl.Float64)).write_parquet(bad)
    return f"{bad}: column 'click_cost_micros' has type double, expected int64"


POLARS = "polars"
SPARK = "spark"


def on(engine: str, fault: object, name: str) -> object:
    """One (engine, fault) case, marked `spark` on Spark, named e.g. `spark-corrupt_file`."""
    marks = [pytest.mark.spark] if engine == SPARK else []
    return pytest.param(engine, fault, id=f"{engine}-{name}", marks=marks)


def engine_resources(
    engine: str, polars_resources: dict[str, object], request: pytest.FixtureRequest
) -> dict[str, object]:
    if engine == POLARS:
        return polars_resources
    request.getfixturevalue("spark")  # the suite's shared session, reused by the resource
    from adrecon_assets.resources.spark import SparkEngineResource

    return {**polars_resources, "engine": SparkEngineResource(spark_master="local[2]")}


@pytest.mark.parametrize(
    ("engine", "fault"),
    [
        on(POLARS, fault, fault.__name__)
        for fault in (corrupt_file, zero_byte_file, missing_column, wrong_type)
    ]
    + [on(SPARK, fault, fault.__name__) for fault in (corrupt_file, missing_column)],
)
def test_structural_fault_fails_the_run_naming_file_and_column(
    good_lake: Paths,
    polars_resources: dict[str, object],
    request: pytest.FixtureRequest,
    engine: str,
    fault: Callable[[Paths], str],
) -> None:
    expected_error = fault(good_lake)
    result = run_day(engine_resources(engine, polars_resources, request))
    assert_failed_untouched(result, good_lake)
    assert expected_error in failure_text(result)


# Row faults: quarantined beside the warehouse output, counted, reported by a blocking check.

NULL_USER = (
    Topic.CLICKS,
    {**click("c3", "e1", "o1", "2026-01-02T03:00:00"), "user_id": None},
    "null_user_id",
)
NEGATIVE_COST = (
    Topic.EMISSIONS,
    emission("e3", "o3", "top", -1, "2026-01-02T05:00:00"),
    "negative_click_cost_micros",
)
CLICK_NEXT_DAY = (
    Topic.CLICKS,
    click("c3", "e1", "o1", "2026-01-03T00:00:00"),
    "clicked_at_outside_partition_day",
)
EMISSION_DAY_BEFORE = (
    Topic.EMISSIONS,
    emission("e3", "o3", "top", 7, "2026-01-01T23:59:59.999999"),
    "emitted_at_outside_partition_day",
)


@pytest.mark.parametrize(
    ("engine", "row_fault"),
    [
        on(POLARS, fault, fault[2])
        for fault in (NULL_USER, NEGATIVE_COST, CLICK_NEXT_DAY, EMISSION_DAY_BEFORE)
    ]
    + [on(SPARK, fault, fault[2]) for fault in (NULL_USER, NEGATIVE_COST, CLICK_NEXT_DAY)],
)
def test_bad_row_is_quarantined_and_blocks_the_day(
    good_lake: Paths,
    polars_resources: dict[str, object],
    request: pytest.FixtureRequest,
    engine: str,
    row_fault: tuple[Topic, dict[str, object], str],
) -> None:
    topic, bad_row, reason = row_fault
    write_topic(good_lake.lake, topic, DAY, [bad_row], name="late-1")
    result = run_day(engine_resources(engine, polars_resources, request))
    assert_failed_untouched(result, good_lake)

    raw_asset = f"raw_{topic.value}"
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path == [raw_asset] and e.check_name == NO_QUARANTINED_ROWS
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["quarantined_rows"].value == 1
    assert check.metadata[f"quarantined_{reason}"].value == 1
    # The on-call reads the reason (which names the column) and its count in the check and in
    # the run's failure, which the run-failure alert carries.
    quarantine = Warehouse(good_lake.warehouse).quarantine_folder(topic, DAY)
    found = f"1 bad rows quarantined ({reason}: 1) in {quarantine}"
    assert check.description == found
    assert f"{raw_asset} {DAY} not published" in failure_text(result)
    assert f"no_quarantined_rows: {found}" in failure_text(result)

    quarantined = pl.read_parquet(quarantine / "*.parquet")  # Spark adds .crc files beside
    assert quarantined[rules.QUARANTINE_REASON_COLUMN].to_list() == [reason]
    assert quarantined[rules.SOURCE_FILE_COLUMN].to_list()[0].endswith("late-1.parquet")
    materialized = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert "reconciled_statistics" not in materialized and raw_asset not in materialized


def test_every_quarantine_reason_is_counted_in_the_failure(
    good_lake: Paths, polars_resources: dict[str, object]
) -> None:
    bad_rows = [NEGATIVE_COST[1], EMISSION_DAY_BEFORE[1], {**NEGATIVE_COST[1], "emission_id": "e4"}]
    write_topic(good_lake.lake, Topic.EMISSIONS, DAY, bad_rows, name="late-1")
    result = run_day(polars_resources)
    assert_failed_untouched(result, good_lake)
    assert (
        "3 bad rows quarantined (negative_click_cost_micros: 2, "
        "emitted_at_outside_partition_day: 1)" in failure_text(result)
    )


# Accepted input: the run succeeds and the numbers follow the rules.


def test_unknown_extra_columns_are_ignored(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    seed_online_day(paths.serving_db)
    write_topic(paths.lake, Topic.EMISSIONS, DAY, GOOD_EMISSIONS)
    clicks_folder = folder(paths, Topic.CLICKS)
    extra = frame(Topic.CLICKS, GOOD_CLICKS).with_columns(
        pl.lit("spring-sale").alias("campaign"), pl.lit(3).alias("attempt")
    )
    extra.select(["campaign", *extra.columns[:-2], "attempt"]).write_parquet(
        clicks_folder / "part-0.parquet"
    )
    assert run_day(polars_resources).success
    assert stats_of_day(paths.serving_db) == GOOD_STATS


def test_folder_without_files_is_an_empty_day(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    write_topic(paths.lake, Topic.EMISSIONS, DAY, GOOD_EMISSIONS)
    (folder(paths, Topic.CLICKS) / "_SUCCESS").touch()
    result = run_day(polars_resources)
    assert result.success
    # Emissions counted, no clicks (with online clicks the day is held back: see
    # test_write_audit_publish.py).
    assert stats_of_day(paths.serving_db) == [
        ("o1", "top", 1, 0, 0, 0, 0, "offline"),
        ("o2", "side", 1, 0, 0, 0, 0, "offline"),
    ]


def test_parquet_file_with_zero_rows_is_accepted(
    good_lake: Paths, polars_resources: dict[str, object]
) -> None:
    frame(Topic.CLICKS, []).write_parquet(folder(good_lake, Topic.CLICKS) / "late-1.parquet")
    assert pq.read_metadata(folder(good_lake, Topic.CLICKS) / "late-1.parquet").num_rows == 0
    assert run_day(polars_resources).success
    assert stats_of_day(good_lake.serving_db) == GOOD_STATS


def test_conflicting_duplicates_keep_the_earliest_click(
    good_lake: Paths, polars_resources: dict[str, object]
) -> None:
    # c1 again, earlier and on the other emission: rule 1 keeps this copy (01:00 > 00:30), so
    # o1/top loses its click and o2/side gets two.
    conflicting = click("c1", "e2", "o2", "2026-01-02T00:30:00", user_id="u9", ip="10.0.0.1")
    write_topic(good_lake.lake, Topic.CLICKS, DAY, [conflicting], name="late-1")
    result = run_day(polars_resources)
    assert result.success
    assert stats_of_day(good_lake.serving_db) == [
        ("o1", "top", 1, 0, 0, 0, 0, "offline"),
        ("o2", "side", 1, 2, 100, 0, 0, "offline"),
    ]
    (duplicates,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "duplicate_click_rate"
    ]
    # 1 duplicate of 3 clicks in: 33% > 5%, a WARN that does not fail the run.
    assert not duplicates.passed and duplicates.metadata["duplicate_clicks"].value == 1
