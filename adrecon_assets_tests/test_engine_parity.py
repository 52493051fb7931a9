"""The Spark engine gives exactly the Polars engine's outputs: every warehouse folder, every
report, on random small lakes that hit the contract's edges, and through the Dagster assets."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from pyspark.sql import SparkSession

from adrecon_assets.definitions import ASSETS
from adrecon_assets.engines.base import EmissionSource, Engine
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.engines.spark_engine import DRIVER_SORT_MAX_ROWS, SparkEngine
from adrecon_assets.lake import Lake
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.spark import SparkEngineResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import MICROS_PER_SECOND, Topic
from adrecon_assets.warehouse import QUARANTINE_FOLDER, RAW_DATASET, Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import table_rows
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic
from adrecon_assets_tests.reference import reference_day

pytestmark = pytest.mark.spark

FIRST_DAY = date(2026, 1, 1)  # the default ADRECON_START_DATE: D-1 of DAY is the first partition
DAY = date(2026, 1, 2)
SECOND = MICROS_PER_SECOND
# Event times are an anchor plus an edge, so gaps between any two events land on the contract's
# boundaries: 1 s (too_fast), 600 s (flood window), midnight (D-1 emissions, out-of-day rows).
ANCHORS = (-SECOND, 0, 300 * SECOND, 600 * SECOND, 1_200 * SECOND)
EDGES = (0, 1, SECOND - 1, SECOND, SECOND + 1, 600 * SECOND - 1, 600 * SECOND, 600 * SECOND + 1)
DENYLIST = ("10.0.0.0/30", "10.0.0.4/32", "192.0.2.128/25", "0.0.0.0/32", "255.255.255.254/31")
IPS = (
    "10.0.0.0",
    "10.0.0.3",
    "10.0.0.4",
    "10.0.0.5",
    "192.0.2.127",
    "192.0.2.128",
    "192.0.2.255",
    "0.0.0.0",
    "0.0.0.1",
    "255.255.255.255",
    "1.2.3.4\n",  # Java's `$` would accept this; the contract's dotted quad does not
    "256.0.0.1",
)


def iso(offset_micros: int) -> str:
    """DAY's midnight plus an offset, as the ISO text `lakes.click`/`emission` take."""
    return (datetime(2026, 1, 2) + timedelta(microseconds=offset_micros)).isoformat()


event_time = st.builds(lambda a, e: a + e, st.sampled_from(ANCHORS), st.sampled_from(EDGES))
emission_rows = st.lists(
    st.tuples(
        st.sampled_from(["e1", "e2", "e3"]),
        st.sampled_from(["o1", "o2"]),
        st.sampled_from(["p1", "p2"]),
        st.sampled_from([0, 100, 100, 250, -1]),
        event_time,
    ),
    max_size=8,
)
click_rows = st.lists(
    st.tuples(
        st.sampled_from([f"c{n}" for n in range(1, 9)]),
        st.sampled_from(["e1", "e2", "e3", "e9"]),  # e9 never emitted: an orphan
        st.sampled_from(["o1", "o2"]),
        event_time,
        st.sampled_from(["u1", "u1", "u2", None]),
        st.sampled_from(IPS),
    ),
    max_size=14,
)


def write_lake(
    lake: Path,
    emissions: list[tuple[Any, ...]],
    clicks: list[tuple[Any, ...]],
    denylist: list[str],
) -> None:
    """Emissions go to the folder of their own day; clicks all go to DAY's folder, so a click
    timed before midnight is an out-of-day row that both engines must quarantine."""
    for day, rows in (
        (FIRST_DAY, [e for e in emissions if e[4] < 0]),
        (DAY, [e for e in emissions if e[4] >= 0]),
    ):
        write_topic(lake, Topic.EMISSIONS, day, [emission(*e[:4], iso(e[4])) for e in rows])
    click_dicts = [
        click(c[0], c[1], c[2], iso(c[3])) | {"user_id": c[4], "ip": c[5]} for c in clicks
    ]
    # Two files, so duplicates across files and per-file reading are exercised too.
    write_topic(lake, Topic.CLICKS, DAY, click_dicts[::2], name="part-a")
    write_topic(lake, Topic.CLICKS, DAY, click_dicts[1::2], name="part-b")
    write_denylist(lake, denylist)


@dataclass(frozen=True)
class EngineDay:
    reports: list[object]
    warehouse: Warehouse


def run_day(engine: Engine, lake_root: Path, warehouse_root: Path) -> EngineDay:
    """Every engine step for DAY, as the assets chain them, keeping each report."""
    lake, warehouse = Lake(lake_root), Warehouse(warehouse_root)
    reports: list[object] = []
    sources = []
    for topic, day in ((Topic.EMISSIONS, FIRST_DAY), (Topic.EMISSIONS, DAY), (Topic.CLICKS, DAY)):
        out = warehouse.folder(RAW_DATASET[topic], day)
        quarantine = warehouse.quarantine_folder(topic, day)
        reports.append(engine.stage_topic(lake.partition(topic, day), out, quarantine))
        if topic is Topic.EMISSIONS:
            sources.append(EmissionSource(day, out))
    folder = {dataset: warehouse.folder(dataset, DAY) for dataset in Dataset}
    reports.append(
        engine.join_clicks(
            DAY,
            folder[Dataset.RAW_CLICKS],
            sources,
            folder[Dataset.JOINED_CLICKS],
            folder[Dataset.EMISSION_COUNTS],
        )
    )
    reports.append(
        engine.flag_fraud(
            DAY, folder[Dataset.JOINED_CLICKS], lake.denylist(), folder[Dataset.FRAUD_FLAGS]
        )
    )
    reports.append(
        engine.aggregate(
            DAY,
            folder[Dataset.FRAUD_FLAGS],
            folder[Dataset.EMISSION_COUNTS],
            folder[Dataset.RECONCILED_STATISTICS],
        )
    )
    return EngineDay(reports, warehouse)


def read_sorted(folder: Path) -> pl.DataFrame:
    frame = pl.read_parquet(folder / "*.parquet") if any(folder.glob("*.parquet")) else None
    assert frame is not None, f"{folder} has no Parquet files"
    return frame.sort(frame.columns, nulls_last=True)


def output_folders(warehouse: Warehouse) -> dict[str, Path]:
    """Every Parquet folder an engine wrote, keyed by its path below the warehouse root."""
    return {
        str(folder.relative_to(warehouse.root)): folder
        for folder in sorted(warehouse.root.rglob("date_partition=*"))
        if any(folder.glob("*.parquet"))
    }


def assert_same_outputs(polars_day: EngineDay, spark_day: EngineDay) -> None:
    assert spark_day.reports == polars_day.reports
    polars_folders = output_folders(polars_day.warehouse)
    spark_folders = output_folders(spark_day.warehouse)
    assert spark_folders.keys() == polars_folders.keys()
    for name, folder in polars_folders.items():
        assert_frame_equal(read_sorted(spark_folders[name]), read_sorted(folder))


# The Spark engine finds repeated emission keys on the driver (small days) or with a Spark
# aggregation (large days); a limit of 0 rows sends every day, even an empty one, down the
# aggregation path. Both paths must write and report exactly what Polars does.
SPARK_DEDUP_PATHS = {"driver": DRIVER_SORT_MAX_ROWS, "aggregation": 0}

# Several random lakes share one lake, so that one Spark run (a few dozen tiny Spark jobs, most of
# this test's CPU) checks them all. Each lake's ids carry a prefix of its own: no rule relates rows
# of two lakes (clicks dedup by click_id, emissions by (emission_id, offer_id), flood groups are
# (user_id, offer_id), statistics keys (offer_id, placement)), and a common prefix keeps every
# tie-break order (ids compared as text) of a lake's rows. Only the denylist is shared.
LAKES_PER_RUN = 8
lakes = st.lists(st.tuples(emission_rows, click_rows), min_size=1, max_size=LAKES_PER_RUN)
Lakes = list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]


def merged_lake(lakes: Lakes) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of every lake in one, each lake's ids prefixed with its own `l<n>-`."""
    emissions: list[tuple[Any, ...]] = []
    clicks: list[tuple[Any, ...]] = []
    for number, (lake_emissions, lake_clicks) in enumerate(lakes):
        prefix = f"l{number}-"
        emissions += [(prefix + e, prefix + o, *rest) for e, o, *rest in lake_emissions]
        clicks += [
            (prefix + c, prefix + e, prefix + o, at, user and prefix + user, ip)
            for c, e, o, at, user, ip in lake_clicks
        ]
    return emissions, clicks


# Every edge in one clean lake (no quarantined row, so the reference computation runs too).
EDGE_EMISSIONS = [
    ("e1", "o1", "p1", 100, -SECOND),  # D-1, clicked after midnight
    ("e1", "o1", "p2", 70, 0),  # D's later copy of D-1's (e1, o1): dropped
    ("e2", "o1", "p2", 250, 0),  # a tie of time and cost: placement p1 kept
    ("e2", "o1", "p1", 250, 0),
    ("e3", "o2", "p1", 100, 0),  # a tie of time: the cheaper p2 kept, whatever the placement
    ("e3", "o2", "p2", 40, 0),
    ("e4", "o2", "p1", 100, 300 * SECOND),
]
EDGE_CLICKS = [
    ("c01", "e1", "o1", 0, "u1", "10.0.0.5"),  # exactly 1 s after D-1's e1: valid
    ("c01", "e1", "o1", SECOND, "u2", "10.0.0.4"),  # a later copy in the other file: dropped
    ("c02", "e2", "o1", SECOND, "u2", "10.0.0.0"),  # exactly 1 s; first address of a block
    ("c03", "e2", "o1", SECOND - 1, "u3", "10.0.0.3"),  # too_fast before denylisted_ip
    ("c04", "e2", "o1", 2 * SECOND, "u3", "10.0.0.3"),  # last address of the block
    ("c05", "e2", "o1", 2 * SECOND, "u4", "10.0.0.4"),  # a /32 block
    # (u1, o2): c10 exactly 600 s before c13 counts, so c13 is the third-earlier flood.
    ("c10", "e3", "o2", 600 * SECOND, "u1", "192.0.2.127"),  # just below a block
    ("c11", "e3", "o2", 700 * SECOND, "u1", "192.0.2.128"),
    ("c12", "e3", "o2", 900 * SECOND, "u1", "192.0.2.255"),
    ("c13", "e3", "o2", 1_200 * SECOND, "u1", "0.0.0.1"),
    # (u2, o2): d1, 600 s and 1 us before d4, is out of d4's window: d4 is valid.
    ("d1", "e4", "o2", 400 * SECOND, "u2", "255.255.255.253"),
    ("d2", "e4", "o2", 500 * SECOND, "u2", "255.255.255.254"),
    ("d3", "e4", "o2", 700 * SECOND, "u2", "255.255.255.255"),
    ("d4", "e4", "o2", 1_000 * SECOND + 1, "u2", "192.0.2.1"),
    ("d5", "e4", "o2", 1_000 * SECOND + 1, "u5", "0.0.0.0"),  # same time, another user
    ("d6", "e9", "o2", 1_200 * SECOND, "u2", "192.0.2.2"),  # an orphan
]


@pytest.mark.parametrize("dedup_path", SPARK_DEDUP_PATHS)
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lakes=lakes, denylist=st.lists(st.sampled_from(DENYLIST), max_size=3))
@example(lakes=[([], [])], denylist=[])  # an empty day (and an empty D-1)
@example(lakes=[(EDGE_EMISSIONS, EDGE_CLICKS)], denylist=list(DENYLIST))
def test_spark_outputs_and_reports_equal_polars_on_contract_edges(
    spark: SparkSession, dedup_path: str, lakes: Lakes, denylist: list[str]
) -> None:
    emissions, clicks = merged_lake(lakes)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_lake(root / "lake", emissions, clicks, denylist)
        polars_day = run_day(PolarsEngine(), root / "lake", root / "polars")
        engine = SparkEngine(spark, driver_sort_max_rows=SPARK_DEDUP_PATHS[dedup_path])
        spark_day = run_day(engine, root / "lake", root / "spark")
        assert_same_outputs(polars_day, spark_day)
        if not (root / "spark" / QUARANTINE_FOLDER).exists() or not any(
            (root / "spark" / QUARANTINE_FOLDER).rglob("*.parquet")
        ):
            # A clean lake: both also equal the independent reference computation.
            statistics, reasons = reference_day(root / "lake", DAY, FIRST_DAY)
            flagged = read_sorted(spark_day.warehouse.folder(Dataset.FRAUD_FLAGS, DAY))
            assert dict(flagged.select("click_id", "fraud_reason").rows()) == reasons
            spark_statistics = spark_day.warehouse.folder(Dataset.RECONCILED_STATISTICS, DAY)
            assert table_rows(read_sorted(spark_statistics)) == table_rows(statistics)


def serving_rows(database: Path, table: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        columns = [
            name
            for (name,) in connection.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = ? AND column_name <> 'updated_at' ORDER BY ordinal_position",
                [table],
            ).fetchall()
        ]
        return connection.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY ALL"
        ).fetchall()


def test_asset_chain_on_spark_resource_serves_the_polars_rows(
    spark: SparkSession, paths: Paths, polars_resources: dict[str, object], tmp_path: Path
) -> None:
    emissions = [
        ("e1", "o1", "p1", 100, -SECOND),  # D-1, clicked after midnight
        ("e2", "o1", "p2", 250, 0),  # same (emission, offer) and time, larger placement: dropped
        ("e2", "o1", "p1", 250, 0),
        ("e3", "o2", "p1", 40, 300 * SECOND),
    ]
    clicks = [
        ("c1", "e1", "o1", 0, "u1", "10.0.0.9"),
        ("c2", "e2", "o1", SECOND - 1, "u1", "192.0.2.1"),  # too_fast
        ("c3", "e2", "o1", 300 * SECOND, "u1", "10.0.0.4"),  # denylisted
        ("c4", "e3", "o2", 600 * SECOND, "u2", "192.0.2.2"),
        ("c5", "e9", "o2", 600 * SECOND, "u2", "192.0.2.2"),  # orphan
    ]
    write_lake(paths.lake, emissions, clicks, ["10.0.0.4/32"])
    selection = [key for asset in ASSETS for key in asset.keys]
    for day in (FIRST_DAY, DAY):
        result = dg.materialize(ASSETS, partition_key=day.isoformat(), resources=polars_resources)
        assert result.success
    polars_rows = serving_rows(paths.serving_db, "offer_placement_stats")
    polars_anomalies = serving_rows(paths.serving_db, "placement_anomalies")

    spark_db = tmp_path / "spark_serving.duckdb"
    spark_resources = {
        **polars_resources,
        "storage": StorageResource(
            lake_root=str(paths.lake), warehouse_root=str(tmp_path / "spark_warehouse")
        ),
        "serving_db": ServingResource(database=str(spark_db)),
        "engine": SparkEngineResource(spark_master="local[2]"),
    }
    for day in (FIRST_DAY, DAY):
        result = dg.materialize(
            ASSETS, partition_key=day.isoformat(), resources=spark_resources, selection=selection
        )
        assert result.success
        engines = {
            event.materialization.metadata["engine"].value  # type: ignore[union-attr]
            for event in result.get_asset_materialization_events()
            if "engine" in event.materialization.metadata
        }
        assert engines == {"spark"}
    assert serving_rows(spark_db, "offer_placement_stats") == polars_rows
    assert serving_rows(spark_db, "placement_anomalies") == polars_anomalies
    # Hand-computed day D: (o1, p1) has e2 emitted, c1 valid (100, via D-1's e1), c2 too_fast
    # and c3 denylisted (refund 250 + 250); (o2, p1) has e3 and c4 valid (40); c5 is an orphan.
    day_rows = [row[1:8] for row in polars_rows if row[0] == DAY]
    assert day_rows == [("o1", "p1", 1, 1, 100, 2, 500), ("o2", "p1", 1, 1, 40, 0, 0)]
    assert spark.range(1).count() == 1  # the shared session survived the resource's teardown
