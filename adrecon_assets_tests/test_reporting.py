"""Report assets, their checks, and the drift metadata of reconciled_statistics, on a
hand-built two-day lake whose every number is computed by hand below."""

from __future__ import annotations

import base64
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adrecon_assets import serving
from adrecon_assets.definitions import ASSETS
from adrecon_assets.metadata.drift import KeyTotals, drift
from adrecon_assets.metadata.markdown import drift_markdown, largest_corrections_markdown
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths, create_empty_lake, polars_resources_for
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic

DAY1 = date(2026, 1, 1)
DAY2 = date(2026, 1, 2)

# Online layer's rows of DAY1: it counted the duplicate of c1 and billed fraud on (o1, top),
# and lost one of the two clicks of (o2, side).
ONLINE_DAY1 = {("o1", "top"): KeyTotals(3, 300_000, 0, 0), ("o2", "side"): KeyTotals(1, 50_000)}
# What the reconciliation of DAY1 gives (see write_lake).
RECONCILED_DAY1 = {
    ("o1", "top"): KeyTotals(1, 100_000, 1, 100_000),
    ("o2", "side"): KeyTotals(1, 50_000, 1, 50_000),
    ("o2", "footer"): KeyTotals(0, 0, 0, 0),
}


def write_lake(paths: Paths) -> None:
    """DAY1: c1 valid (+ a duplicate), c2 too_fast, c3 denylisted, c5 valid, c4 orphan;
    footer shown but never clicked. DAY2: a click after midnight on e1 and one on e5."""
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        DAY1,
        [
            emission("e1", "o1", "top", 100_000, "2026-01-01T10:00:00"),
            emission("e2", "o1", "top", 100_000, "2026-01-01T10:00:00"),
            emission("e3", "o2", "side", 50_000, "2026-01-01T10:00:00"),
            emission("e4", "o2", "footer", 30_000, "2026-01-01T10:00:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        DAY1,
        [
            click("c1", "e1", "o1", "2026-01-01T10:00:05"),
            click("c1", "e1", "o1", "2026-01-01T10:00:06"),
            click("c2", "e2", "o1", "2026-01-01T10:00:00.500000", user_id="u2"),
            click("c3", "e3", "o2", "2026-01-01T10:01:00", ip="203.0.113.9"),
            click("c5", "e3", "o2", "2026-01-01T10:02:00", user_id="u3"),
            click("c4", "e9", "o1", "2026-01-01T10:03:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        DAY2,
        [
            emission("e5", "o1", "top", 100_000, "2026-01-02T09:00:00"),
            emission("e6", "o2", "footer", 30_000, "2026-01-02T09:00:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        DAY2,
        [
            click("c6", "e1", "o1", "2026-01-02T00:00:10"),
            click("c7", "e5", "o1", "2026-01-02T09:00:10", user_id="u4"),
        ],
    )
    write_denylist(paths.lake, ["203.0.113.0/24"])


def write_online_rows(paths: Paths) -> None:
    rows = pa.table(
        {
            "date": [DAY1, DAY1],
            "offer_id": [key[0] for key in ONLINE_DAY1],
            "placement": [key[1] for key in ONLINE_DAY1],
            "emissions": [2, 1],
            "clicks": [totals.clicks for totals in ONLINE_DAY1.values()],
            "cost_micros": [totals.cost_micros for totals in ONLINE_DAY1.values()],
            "fraud_clicks": [0, 0],
            "refund_micros": [0, 0],
        }
    )
    with duckdb.connect(str(paths.serving_db)) as connection:
        serving.replace_day(
            connection,
            serving.OFFER_PLACEMENT_STATS,
            DAY1,
            rows,
            {"source": serving.ONLINE_SOURCE},
        )


def materialize(
    resources: dict[str, object], day: date, selection: str = "*"
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        partition_key=day.isoformat(),
        resources=resources,
        selection=selection,
        raise_on_error=False,
    )


def report_rows(paths: Paths, table: str, day: date) -> list[tuple[object, ...]]:
    with duckdb.connect(str(paths.serving_db)) as connection:
        return connection.execute(
            f"SELECT * EXCLUDE (updated_at) FROM {table} WHERE date = ? ORDER BY ALL", [day]
        ).fetchall()


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    errors = [event.step_failure_data.error for event in result.all_events if event.is_step_failure]
    return "\n".join(error.to_string() for error in errors if error is not None)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    # A node may materialize several assets (joined_clicks also writes emission_counts).
    [event] = [
        event
        for event in result.asset_materializations_for_node(asset)
        if event.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in event.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()
    }


def serving_rows(paths: Paths, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(paths.serving_db), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def two_days_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, dict[date, Any]]:
    """The small lake's two days materialized once for the module (8 tests read them)."""
    root = tmp_path_factory.mktemp("two_days")
    template = Paths(root / "lake", root / "warehouse", root / "serving.duckdb")
    create_empty_lake(template.lake)
    write_lake(template)
    write_online_rows(template)
    resources = polars_resources_for(template)
    results = {day: materialize(resources, day) for day in (DAY1, DAY2)}
    for result in results.values():
        assert result.success
    return template, results


@pytest.fixture
def two_days(paths: Paths, two_days_once: tuple[Paths, dict[date, Any]]) -> dict[date, Any]:
    """A copy of the materialized days in this test's paths: tests that corrupt a table change
    their copy only."""
    template, results = two_days_once
    shutil.copytree(template.lake, paths.lake, dirs_exist_ok=True)
    shutil.copytree(template.warehouse, paths.warehouse)
    for database in template.serving_db.parent.glob(f"{template.serving_db.name}*"):
        shutil.copy(database, paths.serving_db.parent / database.name)
    return results


def test_drift_splits_the_online_error_into_lost_double_counted_and_fraud() -> None:
    result = drift(ONLINE_DAY1, RECONCILED_DAY1)
    # (o1, top): online 3 billed vs 2 reconciled (1 valid + 1 fraud): 1 double-counted, 100k.
    assert (result.double_counted_clicks, result.double_counted_micros) == (1, 100_000)
    # (o2, side): online 1 vs 2 reconciled: 1 lost click, 50k.
    assert (result.lost_clicks, result.lost_micros) == (1, 50_000)
    assert (result.billed_fraud_clicks, result.billed_fraud_micros) == (2, 150_000)
    # 4 + 1 - 1 - 2 = 2 valid clicks; 350k + 50k - 100k - 150k = 150k.
    assert (result.previous.clicks, result.reconciled.clicks) == (4, 2)
    assert (result.previous.cost_micros, result.reconciled.cost_micros) == (350_000, 150_000)


def test_drift_markdown_rows_add_up_in_counts_and_money() -> None:
    table = drift_markdown(drift(ONLINE_DAY1, RECONCILED_DAY1), "online")
    assert "| previous rows (`online`) | 4 | 0.35 |" in table
    assert "| + lost clicks | 1 | 0.05 |" in table
    assert "| - double-counted clicks | 1 | 0.10 |" in table
    assert "| - billed fraud (refunded) | 2 | 0.15 |" in table
    assert "| **= reconciled** | **2** | **0.15** |" in table


def test_largest_corrections_lists_changed_keys_by_absolute_money() -> None:
    table = largest_corrections_markdown(ONLINE_DAY1, RECONCILED_DAY1)
    lines = table.splitlines()
    # Footer is 0 before and after: unchanged, so not listed; top's -0.20 comes before side's 0.
    assert len(lines) == 4
    assert lines[2] == "| o1 | top | 3 | 1 | 1 | 0.30 | 0.10 | -0.20 |"
    assert lines[3] == "| o2 | side | 1 | 1 | 1 | 0.05 | 0.05 | 0.00 |"


def test_reconciled_statistics_metadata_explains_the_online_drift(
    two_days: dict[date, dg.ExecuteInProcessResult],
) -> None:
    values = metadata(two_days[DAY1], "reconciled_statistics")
    assert values["lost_clicks"] == 1
    assert values["double_counted_micros"] == 100_000
    assert values["billed_fraud_clicks"] == 2
    assert values["rows_in"] == 5  # c1 c2 c3 c4 c5 after deduplication
    assert values["rows_out"] == 3
    assert "| o1 | top | 3 | 1 | 1 | 0.30 | 0.10 | -0.20 |" in values["largest_corrections"]
    assert len(values["input_fingerprint"]) == 16
    joined = metadata(two_days[DAY1], "joined_clicks")
    assert (joined["rows_in"], joined["rows_out"]) == (6, 5)


def test_placement_performance_rows_and_buyerless_flag(
    paths: Paths, two_days: dict[date, dg.ExecuteInProcessResult]
) -> None:
    rows = serving_rows(
        paths,
        "SELECT date, placement, emissions, clicks, ctr, cost_micros, fraud_clicks, "
        "refund_micros, trailing_days, trailing_emissions, trailing_clicks, attracts_no_buyers "
        "FROM placement_performance ORDER BY date, placement",
    )
    assert rows == [
        (DAY1, "footer", 1, 0, 0.0, 0, 0, 0, 1, 1, 0, True),
        (DAY1, "side", 1, 1, 1.0, 50_000, 1, 50_000, 1, 1, 1, False),
        (DAY1, "top", 2, 1, 0.5, 100_000, 1, 100_000, 1, 2, 1, False),
        # footer: 2 emissions over DAY1-DAY2 and still no click; top's c6 matched e1 of DAY1.
        (DAY2, "footer", 1, 0, 0.0, 0, 0, 0, 2, 2, 0, True),
        (DAY2, "top", 1, 2, 2.0, 200_000, 0, 0, 2, 3, 3, False),
    ]
    evaluations = checks(two_days[DAY2])
    assert evaluations["matches_serving_statistics"].passed
    buyerless = evaluations["no_buyerless_placements"]
    assert not buyerless.passed
    assert buyerless.severity == dg.AssetCheckSeverity.WARN
    assert buyerless.description == "placements that don't attract buyers: footer"


def test_refund_ledger_credits_each_offer_by_reason(
    paths: Paths, two_days: dict[date, dg.ExecuteInProcessResult]
) -> None:
    rows = serving_rows(paths, "SELECT * EXCLUDE (updated_at) FROM refund_ledger ORDER BY ALL")
    assert rows == [
        (DAY1, "o1", "too_fast", 1, 100_000),
        (DAY1, "o2", "denylisted_ip", 1, 50_000),
    ]
    values = metadata(two_days[DAY1], "refund_ledger")
    assert values["refund_micros"] == 150_000
    assert values["refund_micros_too_fast"] == 100_000
    assert values["fraud_mix"].startswith("![fraud mix](data:image/png;base64,")
    assert checks(two_days[DAY1])["ledger_matches_statistics"].passed
    # DAY2 has no fraud: an empty ledger that still balances.
    assert metadata(two_days[DAY2], "refund_ledger")["rows_out"] == 0
    assert checks(two_days[DAY2])["ledger_matches_statistics"].passed


def test_ledger_check_fails_when_statistics_disagree(
    paths: Paths, polars_resources: dict[str, object], two_days: dict[date, Any]
) -> None:
    folder = Warehouse(paths.warehouse).folder(Dataset.RECONCILED_STATISTICS, DAY1)
    [part] = Warehouse.files(folder)
    table = pq.read_table(part)
    refunds = table["refund_micros"].to_pylist()
    refunds[table["offer_id"].to_pylist().index("o2")] += 1
    pq.write_table(table.set_column(7, "refund_micros", pa.array(refunds, pa.int64())), part)
    before = report_rows(paths, "refund_ledger", DAY1)
    result = materialize(polars_resources, DAY1, "refund_ledger")
    evaluation = checks(result)["ledger_matches_statistics"]
    assert not evaluation.passed
    # The ledger of o2 refunds one click of 50 000 micros; the corrupted statistics say 50 001.
    found = (
        "1 offers differ (refunded clicks, micros): o2: ledger (1, 50000), statistics (1, 50001)"
    )
    assert evaluation.description == found
    # Audited before publishing: the run fails naming the check, the published ledger stays.
    assert not result.success
    assert f"refund_ledger {DAY1} not published" in failure_text(result)
    assert f"ledger_matches_statistics: {found}" in failure_text(result)
    assert report_rows(paths, "refund_ledger", DAY1) == before


def test_performance_check_fails_when_serving_disagrees_with_warehouse(
    paths: Paths, polars_resources: dict[str, object], two_days: dict[date, Any]
) -> None:
    with duckdb.connect(str(paths.serving_db)) as connection:
        connection.execute(
            "UPDATE offer_placement_stats SET clicks = clicks + 1 WHERE date = ?", [DAY2]
        )
    before = report_rows(paths, "placement_performance", DAY2)
    result = materialize(polars_resources, DAY2, "placement_performance")
    evaluation = checks(result)["matches_serving_statistics"]
    assert not evaluation.passed
    # DAY2 has two valid clicks (c6 on a DAY1 emission, c7); the tampered serving rows one
    # more per key (2 keys).
    found = "differs from offer_placement_stats in clicks: report 2, serving 4"
    assert evaluation.description == found
    assert not result.success and found in failure_text(result)
    assert report_rows(paths, "placement_performance", DAY2) == before


def test_anomaly_metrics_carries_a_small_chart(two_days: dict[date, Any]) -> None:
    chart = metadata(two_days[DAY2], "anomaly_metrics")["anomaly_chart"]
    prefix = "![anomaly view](data:image/png;base64,"
    assert chart.startswith(prefix)
    png = base64.b64decode(chart[len(prefix) : -1])
    assert png.startswith(b"\x89PNG")
    assert len(png) < 40_000


DOCS = Path(__file__).resolve().parents[1] / "docs"


def docs_sql_blocks() -> dict[str, list[str]]:
    """Every ```sql block of docs/*.md, by file (the analysts' page and any other)."""
    return {
        path.name: re.findall(r"```sql\n(.*?)```", path.read_text(), flags=re.DOTALL)
        for path in sorted(DOCS.glob("*.md"))
    }


def run_sql_blocks(paths: Paths, blocks: list[str]) -> list[Any]:
    """Each block's statements on the small lake (the docs' data/ paths pointed at it)."""
    results = []
    with duckdb.connect() as connection:
        for block in blocks:
            sql = (
                block.replace("data/lake", str(paths.lake))
                .replace("data/warehouse", str(paths.warehouse))
                .replace("data/serving.duckdb", str(paths.serving_db))
            )
            for statement in filter(str.strip, sql.split(";")):
                relation = connection.sql(statement)  # None for ATTACH
                results.append(relation.fetchall() if relation is not None else None)
    return results


def test_every_docs_sql_block_runs_against_a_small_lake(
    paths: Paths, two_days: dict[date, Any]
) -> None:
    blocks = docs_sql_blocks()
    assert sum(len(found) for found in blocks.values()) >= 7
    for name, found in blocks.items():
        assert len(run_sql_blocks(paths, found)) >= len(found), name


def test_analysts_sql_gives_the_hand_computed_answers(
    paths: Paths, two_days: dict[date, Any]
) -> None:
    blocks = docs_sql_blocks()["analysts.md"]
    assert len(blocks) == 7
    results = run_sql_blocks(paths, blocks)
    # Spot checks by hand: 6 raw clicks of DAY1 of which 5 distinct; orphan c4; o1 credited 0.10.
    assert results[0][0] == (DAY1, 6, 5)
    assert [row[0] for row in results[5]] == ["c4"]
    assert results[-2] == [("o1", 0.1), ("o2", 0.05)]
