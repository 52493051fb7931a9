"""Every asset check fails when it should and passes when it should (hand-computed numbers)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest

from adrecon_assets.assets import CONTRACT_ASSET_NAMES
from adrecon_assets.checks import reconciliation as recon_checks
from adrecon_assets.checks import staging as staging_checks
from adrecon_assets.checks.monitoring import (
    ANOMALY_ROWS_MATCH_STATISTICS,
    NO_PLACEMENT_ANOMALIES,
    anomaly_check_results,
    anomaly_rows_audit,
)
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.definitions import ASSETS
from adrecon_assets.engines.base import (
    AnomalyReport,
    FlagReport,
    JoinReport,
    StageReport,
)
from adrecon_assets.engines.polars_engine import write
from adrecon_assets.rules import FraudReason, Topic
from adrecon_assets.serving import DayTotals
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, frame, write_topic

DAY = date(2026, 1, 2)
# The contract's six assets, whose checks this module owns (reporting assets test their own).
CONTRACT_ASSETS = set(CONTRACT_ASSET_NAMES)
THRESHOLDS = CheckThresholds()
NO_PREVIOUS = DayTotals(None, 0, 0, 0, 0, 0, 0)


def result(results: list[dg.AssetCheckResult], name: str) -> dg.AssetCheckResult:
    (found,) = [r for r in results if r.check_name == name]
    return found


def metadata_value(check: dg.AssetCheckResult, key: str) -> object:
    return check.metadata[key].value


def staged_clicks(folder: Path, rows: list[dict[str, object]]) -> Path:
    write(frame(Topic.CLICKS, rows), folder)
    return folder


def good_click(click_id: str = "c1", at_time: str = "2026-01-02T10:00:00") -> dict[str, object]:
    return click(click_id, "e1", "o1", at_time)


# raw_*: quarantine and the pandera contract on the staged output


def test_no_quarantined_rows_fails_with_counts_per_reason(tmp_path: Path) -> None:
    staged = staged_clicks(tmp_path / "staged", [good_click()])
    report = StageReport(rows_in=4, rows_out=1, quarantined={"null_ip": 2, "negative_x": 1})
    results = staging_checks.lake_check_results(
        report, tmp_path / "q", staged, Topic.CLICKS, DAY, THRESHOLDS
    )
    check = result(results, staging_checks.NO_QUARANTINED_ROWS)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert metadata_value(check, "quarantined_rows") == 3
    assert metadata_value(check, "quarantined_null_ip") == 2


def test_lake_checks_pass_on_a_clean_staged_day(tmp_path: Path) -> None:
    staged = staged_clicks(tmp_path / "staged", [good_click("c1"), good_click("c2")])
    results = staging_checks.lake_check_results(
        StageReport(2, 2), tmp_path / "q", staged, Topic.CLICKS, DAY, THRESHOLDS
    )
    assert all(check.passed for check in results)
    contract = result(results, staging_checks.STAGED_ROWS_MATCH_CONTRACT)
    assert metadata_value(contract, "rows_checked") == 2


def test_staged_contract_fails_on_null_and_bad_ip_an_engine_let_through(tmp_path: Path) -> None:
    rows = [
        good_click("c1"),
        {**good_click("c2"), "user_id": None},
        {**good_click("c3"), "ip": "1.2.3"},
    ]
    staged = staged_clicks(tmp_path / "staged", rows)
    results = staging_checks.lake_check_results(
        StageReport(3, 3), tmp_path / "q", staged, Topic.CLICKS, DAY, THRESHOLDS
    )
    check = result(results, staging_checks.STAGED_ROWS_MATCH_CONTRACT)
    assert not check.passed
    assert metadata_value(check, "failure_cases") == 2
    assert "user_id" in (check.description or "") and "ip" in (check.description or "")


def test_staged_contract_fails_on_a_wrong_dtype(tmp_path: Path) -> None:
    folder = tmp_path / "staged"
    write(
        frame(Topic.CLICKS, [good_click()]).with_columns(pl.col("clicked_at").cast(pl.Int64)),
        folder,
    )
    results = staging_checks.lake_check_results(
        StageReport(1, 1), tmp_path / "q", folder, Topic.CLICKS, DAY, THRESHOLDS
    )
    check = result(results, staging_checks.STAGED_ROWS_MATCH_CONTRACT)
    assert not check.passed and "clicked_at" in (check.description or "")


def test_staged_negative_cost_fails_the_emissions_contract(tmp_path: Path) -> None:
    folder = tmp_path / "staged"
    write(frame(Topic.EMISSIONS, [emission("e1", "o1", "top", -5, "2026-01-02T01:00:00")]), folder)
    results = staging_checks.lake_check_results(
        StageReport(1, 1), tmp_path / "q", folder, Topic.EMISSIONS, DAY, THRESHOLDS
    )
    check = result(results, staging_checks.STAGED_ROWS_MATCH_CONTRACT)
    assert not check.passed and "click_cost_micros" in (check.description or "")


def test_timestamp_of_the_next_day_fails_the_window_check(tmp_path: Path) -> None:
    # 2026-01-03T00:00:00 is the first instant outside 2026-01-02 (the window is half-open).
    rows = [good_click("c1", "2026-01-02T23:59:59.999999"), good_click("c2", "2026-01-03T00:00:00")]
    staged = staged_clicks(tmp_path / "staged", rows)
    results = staging_checks.lake_check_results(
        StageReport(2, 2), tmp_path / "q", staged, Topic.CLICKS, DAY, THRESHOLDS
    )
    check = result(results, staging_checks.TIMESTAMPS_INSIDE_PARTITION_DAY)
    assert not check.passed
    assert metadata_value(check, "failure_cases") == 1


def test_sample_size_bounds_the_data_checks(tmp_path: Path) -> None:
    rows = [good_click("c1"), good_click("c2", "2026-01-05T00:00:00")]
    staged = staged_clicks(tmp_path / "staged", rows)
    one_row = CheckThresholds(contract_sample_rows=1)
    results = staging_checks.lake_check_results(
        StageReport(2, 2), tmp_path / "q", staged, Topic.CLICKS, DAY, one_row
    )
    check = result(results, staging_checks.TIMESTAMPS_INSIDE_PARTITION_DAY)
    assert check.passed and metadata_value(check, "rows_checked") == 1


# joined_clicks


def join_report(clicks_in: int, deduplicated: int, matched: int) -> JoinReport:
    return JoinReport(clicks_in, deduplicated, 10, 10, 10, matched, 0)


def joined_folder(tmp_path: Path, click_ids: list[str]) -> Path:
    folder = tmp_path / "joined"
    folder.mkdir()
    pl.DataFrame({"click_id": click_ids}).write_parquet(folder / "part-0.parquet")
    return folder


@pytest.mark.parametrize(
    ("clicks_in", "passed"),
    # 105 in, 100 left: 5/105 = 4.76% <= 5%; 106 in: 6/106 = 5.66% > 5%.
    [(105, True), (106, False)],
)
def test_duplicate_click_rate_bound(tmp_path: Path, clicks_in: int, passed: bool) -> None:
    folder = joined_folder(tmp_path, [f"c{i}" for i in range(100)])
    results = recon_checks.join_check_results(join_report(clicks_in, 100, 100), folder, THRESHOLDS)
    check = result(results, recon_checks.DUPLICATE_CLICK_RATE)
    assert check.passed is passed and check.severity == dg.AssetCheckSeverity.WARN
    assert metadata_value(check, "duplicate_clicks") == clicks_in - 100


@pytest.mark.parametrize(("matched", "passed"), [(98, True), (97, False)])
def test_orphan_click_rate_bound(tmp_path: Path, matched: int, passed: bool) -> None:
    folder = joined_folder(tmp_path, [f"c{i}" for i in range(100)])
    results = recon_checks.join_check_results(join_report(100, 100, matched), folder, THRESHOLDS)
    check = result(results, recon_checks.ORPHAN_CLICK_RATE)
    assert check.passed is passed
    assert metadata_value(check, "rate") == pytest.approx((100 - matched) / 100)


@pytest.mark.parametrize(
    ("click_ids", "passed"),
    [(["a", "b", "c"], True), (["a", "b", "b"], False), (["a", "b"], False)],
)
def test_every_click_joined_once(tmp_path: Path, click_ids: list[str], passed: bool) -> None:
    folder = joined_folder(tmp_path, click_ids)
    results = recon_checks.join_check_results(join_report(3, 3, 3), folder, THRESHOLDS)
    check = result(results, recon_checks.EVERY_CLICK_JOINED_ONCE)
    assert check.passed is passed and check.severity == dg.AssetCheckSeverity.ERROR


# fraud_flags


@pytest.mark.parametrize(
    ("valid_clicks", "passed"),
    # 1000 matched clicks (10 no_emission left out): 0 fraud < 0.05%, 1 = 0.1%, 200 = 20%,
    # 201 > 20%.
    [(1000, False), (999, True), (800, True), (799, False)],
)
def test_fraud_rate_within_bounds(valid_clicks: int, passed: bool) -> None:
    report = FlagReport(1010, valid_clicks, {FraudReason.NO_EMISSION.value: 10})
    check = result(recon_checks.flag_check_results(report, THRESHOLDS), "fraud_rate_within_bounds")
    assert check.passed is passed
    assert metadata_value(check, "matched_clicks") == 1000
    assert metadata_value(check, "fraud_clicks") == 1000 - valid_clicks


# reconciled_statistics


def flagged_folder(tmp_path: Path, reasons: tuple[str | None, ...] | None = None) -> Path:
    """Three clicks of o1/top: valid (cost 100), too_fast (cost 40), no_emission (cost 7)."""
    folder = tmp_path / "flagged"
    folder.mkdir()
    reasons = reasons if reasons is not None else (None, "too_fast", "no_emission")
    pl.DataFrame(
        {
            "offer_id": ["o1"] * len(reasons),
            "placement": ["top"] * len(reasons),
            "fraud_reason": list(reasons),
            "click_cost_micros": [100, 40, 7][: len(reasons)],
        },
        schema={
            "offer_id": pl.String,
            "placement": pl.String,
            "fraud_reason": pl.String,
            "click_cost_micros": pl.Int64,
        },
    ).write_parquet(folder / "part-0.parquet")
    return folder


def counts_folder(tmp_path: Path) -> Path:
    """Emissions of the day: 5 of o1/top and 3 of o2/side (a key without clicks)."""
    folder = tmp_path / "counts"
    folder.mkdir()
    pl.DataFrame(
        {"offer_id": ["o1", "o2"], "placement": ["top", "side"], "emissions": [5, 3]}
    ).write_parquet(folder / "part-0.parquet")
    return folder


def staged_stats(*rows: tuple[str, str, int, int, int, int, int]) -> pa.Table:
    names = ["offer_id", "placement", "emissions", "clicks", "cost_micros"]
    columns = [*names, "fraud_clicks", "refund_micros"]
    return pa.table(
        {"date": pa.array([DAY] * len(rows), pa.date32())}
        | {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    )


# The hand-computed rule 4 rows of flagged_folder and counts_folder.
GOOD_ROWS = (("o1", "top", 5, 1, 100, 1, 40), ("o2", "side", 3, 0, 0, 0, 0))


def statistics_results(
    tmp_path: Path, staged: pa.Table, previous: DayTotals = NO_PREVIOUS, **options: object
) -> list[dg.AssetCheckResult]:
    return recon_checks.statistics_check_results(
        staged,
        previous,
        flagged_folder(tmp_path),
        counts_folder(tmp_path),
        THRESHOLDS,
        **options,  # type: ignore[arg-type]
    )


def test_totals_balance_passes_on_the_recounted_rows(tmp_path: Path) -> None:
    check = result(statistics_results(tmp_path, staged_stats(*GOOD_ROWS)), "totals_balance")
    assert check.passed and check.description is None
    assert metadata_value(check, "recount_refund_micros") == 40
    assert metadata_value(check, "recount_rows") == 2


@pytest.mark.parametrize(
    ("rows", "found"),
    [
        # One key's clicks and cost moved to fraud: totals of clicks + fraud still balance.
        (
            (("o1", "top", 5, 0, 100, 2, 40), GOOD_ROWS[1]),
            "o1/top: clicks 0 (recount 1); o1/top: fraud_clicks 2 (recount 1)",
        ),
        ((("o1", "top", 5, 1, 100, 1, 41), GOOD_ROWS[1]), "o1/top: refund_micros 41 (recount 40)"),
        ((GOOD_ROWS[0],), "o2/side: missing from the staged rows"),
        ((*GOOD_ROWS, ("o3", "top", 0, 0, 0, 0, 0)), "o3/top: staged but not in the recount"),
        ((*GOOD_ROWS, GOOD_ROWS[1]), "o2/side: 2 staged rows"),
        # As many staged rows as recount rows, each equal to its recount row: still a repeat.
        ((GOOD_ROWS[0], GOOD_ROWS[0]), "o1/top: 2 staged rows"),
    ],
)
def test_totals_balance_names_each_key_that_differs(
    tmp_path: Path, rows: tuple[tuple[str, str, int, int, int, int, int], ...], found: str
) -> None:
    check = result(statistics_results(tmp_path, staged_stats(*rows)), "totals_balance")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description is not None and found in check.description


@pytest.mark.parametrize(
    ("online_clicks", "passed"),
    # Reconciled 1 + 1 = 2 clicks: online 2 is 0% off, online 3 is 50% off (bound 5%).
    [(2, True), (3, False)],
)
def test_online_layer_drift(tmp_path: Path, online_clicks: int, passed: bool) -> None:
    previous = DayTotals("online", 1, 5, online_clicks, 0, 0, 0)
    check = result(
        statistics_results(tmp_path, staged_stats(*GOOD_ROWS), previous), "online_layer_drift"
    )
    assert check.passed is passed and check.severity == dg.AssetCheckSeverity.WARN


EMPTY_ROWS = (("o1", "top", 5, 0, 0, 0, 0), ("o2", "side", 3, 0, 0, 0, 0))


def empty_day_results(tmp_path: Path, **options: object) -> list[dg.AssetCheckResult]:
    """A day whose clicks are all no_emission, after the online layer counted 7."""
    return recon_checks.statistics_check_results(
        staged_stats(*EMPTY_ROWS),
        DayTotals("online", 1, 5, 7, 0, 0, 0),
        flagged_folder(tmp_path, ("no_emission",)),
        counts_folder(tmp_path),
        THRESHOLDS,
        **options,  # type: ignore[arg-type]
    )


def test_online_clicks_on_a_day_that_reconciles_to_nothing_block_its_publication(
    tmp_path: Path,
) -> None:
    results = empty_day_results(tmp_path)
    assert result(results, "totals_balance").passed
    assert metadata_value(result(results, "online_layer_drift"), "drift") == 1.0
    check = result(results, recon_checks.ONLINE_CLICKS_NOT_ERASED)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description is not None
    assert "online layer counted 7" in check.description
    assert '"publish_empty_day": true' in check.description


def test_the_operator_override_lets_the_empty_day_pass(tmp_path: Path) -> None:
    check = result(
        empty_day_results(tmp_path, publish_empty_day=True),
        recon_checks.ONLINE_CLICKS_NOT_ERASED,
    )
    assert check.passed and "operator override" in (check.description or "")


def test_an_empty_day_without_online_clicks_publishes(tmp_path: Path) -> None:
    staged = staged_stats(*EMPTY_ROWS)
    results = recon_checks.statistics_check_results(
        staged,
        NO_PREVIOUS,
        flagged_folder(tmp_path, ("no_emission",)),
        counts_folder(tmp_path),
        THRESHOLDS,
    )
    assert all(check.passed for check in results)


# anomaly_metrics


@pytest.mark.parametrize(("anomalies", "passed"), [(0, True), (1, False)])
def test_no_placement_anomalies(anomalies: int, passed: bool) -> None:
    anomalous = ["top"] * anomalies
    results = anomaly_check_results(AnomalyReport(3, anomalies, 7), anomalous)
    check = result(results, NO_PLACEMENT_ANOMALIES)
    assert check.passed is passed and check.severity == dg.AssetCheckSeverity.WARN


def anomaly_rows(*rows: tuple[date, str, int]) -> pa.Table:
    return pa.table(
        {
            "date": pa.array([row[0] for row in rows], pa.date32()),
            "placement": [row[1] for row in rows],
            "clicks": pa.array([row[2] for row in rows], pa.int64()),
        }
    )


@pytest.mark.parametrize(
    ("rows", "found"),
    [
        (((DAY, "top", 3), (DAY, "side", 0)), None),
        (((DAY, "top", 2), (DAY, "side", 0)), "top: clicks 2 (recount 3)"),
        (((DAY, "top", 3),), "side: missing from the staged rows"),
        (((DAY, "top", 3), (DAY, "side", 0), (DAY, "side", 0)), "side: 2 staged rows"),
        (((DAY, "top", 3), (DAY, "side", 0), (DAY, "foot", 0)), "foot: not in the statistics"),
        (((DAY, "top", 3), (date(2026, 1, 3), "side", 0)), "rows of another day: 2026-01-03"),
    ],
)
def test_anomaly_rows_are_audited_against_the_written_statistics(
    tmp_path: Path, rows: tuple[tuple[date, str, int], ...], found: str | None
) -> None:
    statistics = tmp_path / "statistics"
    statistics.mkdir()
    # top: 1 + 2 valid clicks over two offers; side: emissions only.
    pl.DataFrame({"placement": ["top", "top", "side"], "clicks": [1, 2, 0]}).write_parquet(
        statistics / "part-0.parquet"
    )
    check = anomaly_rows_audit(anomaly_rows(*rows), DAY, statistics)
    assert check.passed is (found is None)
    if found is not None:
        assert check.description is not None and found in check.description


# end to end: every asset has checks and a clean day passes them with the expected numbers


def test_every_asset_has_checks_and_blocking_is_deliberate() -> None:
    specs = {
        (spec.asset_key.path[-1], spec.name): spec
        for asset in ASSETS
        for spec in asset.check_specs
        if spec.asset_key.path[-1] in CONTRACT_ASSETS
    }
    assert {asset for asset, _ in specs} == CONTRACT_ASSETS
    blocking = {name for (asset, name), spec in specs.items() if spec.blocking}
    assert blocking == {
        staging_checks.NO_QUARANTINED_ROWS,
        staging_checks.STAGED_ROWS_MATCH_CONTRACT,
        staging_checks.TIMESTAMPS_INSIDE_PARTITION_DAY,
        recon_checks.EVERY_CLICK_JOINED_ONCE,
        recon_checks.TOTALS_BALANCE,
        recon_checks.ONLINE_CLICKS_NOT_ERASED,
        ANOMALY_ROWS_MATCH_STATISTICS,
    }
    assert all(spec.description for spec in specs.values())


def test_clean_day_materializes_with_checks_passing(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    write_topic(
        paths.lake, Topic.EMISSIONS, DAY, [emission("e1", "o1", "top", 100, "2026-01-02T00:00:00")]
    )
    clicks = [
        click(f"c{i}", "e1", "o1", f"2026-01-02T0{i}:00:05", user_id=f"u{i}") for i in range(4)
    ]
    write_topic(
        paths.lake, Topic.CLICKS, DAY, [*clicks, click("x", "e9", "o1", "2026-01-02T09:00:00")]
    )
    # Loosen the bounds that four clicks cannot meet (0 fraud, 1 orphan in 5).
    resources = {
        **polars_resources,
        "check_thresholds": CheckThresholds(min_fraud_rate=0.0, max_orphan_click_rate=0.25),
    }
    run = dg.materialize(ASSETS, partition_key=DAY.isoformat(), resources=resources)
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e
        for e in run.get_asset_check_evaluations()
        if e.asset_key.path[-1] in CONTRACT_ASSETS
    }
    assert len(evaluations) == 15 and all(e.passed for e in evaluations.values())
    coverage = evaluations["joined_clicks", recon_checks.EVERY_CLICK_JOINED_ONCE].metadata
    assert coverage["joined_rows"].value == 5
    orphan = evaluations["joined_clicks", recon_checks.ORPHAN_CLICK_RATE].metadata
    assert orphan["rate"].value == pytest.approx(0.2)
