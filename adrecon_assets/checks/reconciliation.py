"""Checks on joined_clicks, fraud_flags and reconciled_statistics.

Rates beyond a configured bound are WARN (the numbers are still right for the data received);
a count that does not balance is a blocking ERROR (the numbers themselves are wrong).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adrecon_assets import rules, serving
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.engines.base import AggregateReport, FlagReport, JoinReport
from adrecon_assets.serving import DayTotals

WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR

DUPLICATE_CLICK_RATE = "duplicate_click_rate"
ORPHAN_CLICK_RATE = "orphan_click_rate"
EVERY_CLICK_JOINED_ONCE = "every_click_joined_once"
FRAUD_RATE_WITHIN_BOUNDS = "fraud_rate_within_bounds"
TOTALS_BALANCE = "totals_balance"
ONLINE_LAYER_DRIFT = "online_layer_drift"


def rate(part: int, whole: int) -> float:
    """part / whole; a nonzero part of nothing counts as 100% so it can still fail a bound."""
    if whole:
        return part / whole
    return 1.0 if part else 0.0


def join_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            DUPLICATE_CLICK_RATE,
            asset="joined_clicks",
            description=(
                "Message duplicates (same click_id) are at most max_duplicate_click_rate of the "
                "day's clicks (WARN: a noisy producer, the dedup rule still applies)."
            ),
        ),
        dg.AssetCheckSpec(
            ORPHAN_CLICK_RATE,
            asset="joined_clicks",
            description=(
                "At most max_orphan_click_rate of deduplicated clicks find no emission of the day "
                "or the day before (WARN: more means emissions were lost upstream)."
            ),
        ),
        dg.AssetCheckSpec(
            EVERY_CLICK_JOINED_ONCE,
            asset="joined_clicks",
            blocking=True,
            description=(
                "Join coverage: the written joined_clicks hold each deduplicated click exactly "
                "once (a join that drops or multiplies clicks would bill wrong totals)."
            ),
        ),
    ]


def recount_joined(joined_folder: Path) -> tuple[int, int]:
    """Rows and distinct click_ids of the written joined_clicks.

    Distinct 64-bit hashes prove distinct ids, so the exact (slower) string count runs only when
    hashes collide or ids repeat: a few seconds on a 20M-click day instead of ~15."""
    clicks = pl.scan_parquet(joined_folder / "*.parquet").select("click_id")
    rows, distinct_hashes = (
        clicks.select(pl.len(), pl.col("click_id").hash().n_unique()).collect().row(0)
    )
    if distinct_hashes == rows:
        return rows, rows
    return rows, clicks.select(pl.col("click_id").n_unique()).collect().item()


def join_check_results(
    report: JoinReport, joined_folder: Path, thresholds: CheckThresholds
) -> list[dg.AssetCheckResult]:
    duplicate_rate = rate(report.duplicate_clicks, report.clicks_in)
    orphan_rate = rate(report.orphan_clicks, report.clicks_deduplicated)
    rows, distinct = recount_joined(joined_folder)
    return [
        dg.AssetCheckResult(
            check_name=DUPLICATE_CLICK_RATE,
            passed=duplicate_rate <= thresholds.max_duplicate_click_rate,
            severity=WARN,
            metadata={
                "clicks_in": report.clicks_in,
                "duplicate_clicks": report.duplicate_clicks,
                "rate": duplicate_rate,
                "max_rate": thresholds.max_duplicate_click_rate,
            },
        ),
        dg.AssetCheckResult(
            check_name=ORPHAN_CLICK_RATE,
            passed=orphan_rate <= thresholds.max_orphan_click_rate,
            severity=WARN,
            metadata={
                "clicks_deduplicated": report.clicks_deduplicated,
                "orphan_clicks": report.orphan_clicks,
                "rate": orphan_rate,
                "max_rate": thresholds.max_orphan_click_rate,
            },
        ),
        dg.AssetCheckResult(
            check_name=EVERY_CLICK_JOINED_ONCE,
            passed=rows == distinct == report.clicks_deduplicated,
            severity=ERROR,
            metadata={
                "clicks_deduplicated": report.clicks_deduplicated,
                "joined_rows": rows,
                "distinct_joined_click_ids": distinct,
                "coverage": rate(distinct, report.clicks_deduplicated),
            },
        ),
    ]


def flag_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            FRAUD_RATE_WITHIN_BOUNDS,
            asset="fraud_flags",
            description=(
                "Between min_fraud_rate and max_fraud_rate of matched clicks are fraud (WARN: "
                "fewer means a broken rule, more an attack or a bug)."
            ),
        )
    ]


def flag_check_results(
    report: FlagReport, thresholds: CheckThresholds
) -> list[dg.AssetCheckResult]:
    matched = report.clicks - report.reasons.get(rules.FraudReason.NO_EMISSION.value, 0)
    fraud = matched - report.valid_clicks
    fraud_rate = rate(fraud, matched)
    return [
        dg.AssetCheckResult(
            check_name=FRAUD_RATE_WITHIN_BOUNDS,
            # A day without matched clicks has no rate to judge.
            passed=matched == 0
            or thresholds.min_fraud_rate <= fraud_rate <= thresholds.max_fraud_rate,
            severity=WARN,
            metadata={
                "matched_clicks": matched,
                "fraud_clicks": fraud,
                "rate": fraud_rate,
                "min_rate": thresholds.min_fraud_rate,
                "max_rate": thresholds.max_fraud_rate,
            },
        )
    ]


def statistics_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            TOTALS_BALANCE,
            asset="reconciled_statistics",
            blocking=True,
            description=(
                "clicks + fraud_clicks equals the matched deduplicated clicks of fraud_flags, "
                "and cost_micros + refund_micros their cost (recounted independently)."
            ),
        ),
        dg.AssetCheckSpec(
            ONLINE_LAYER_DRIFT,
            asset="reconciled_statistics",
            description=(
                "The online layer's clicks of the day were within max_online_click_drift of the "
                "reconciled (valid + fraud) clicks (WARN: the online layer needs attention)."
            ),
        ),
    ]


def recount_matched(flagged_folder: Path) -> tuple[int, int]:
    """Matched clicks and their cost, read straight from the flagged Parquet with Arrow."""
    table = pq.read_table(flagged_folder, columns=["fraud_reason", "click_cost_micros"])
    matched = pc.fill_null(
        pc.not_equal(table["fraud_reason"], rules.FraudReason.NO_EMISSION.value), True
    )
    cost = pc.sum(pc.filter(table["click_cost_micros"], matched)).as_py() or 0
    return int(pc.sum(matched).as_py() or 0), int(cost)


def statistics_check_results(
    report: AggregateReport,
    previous: DayTotals,
    flagged_folder: Path,
    thresholds: CheckThresholds,
) -> list[dg.AssetCheckResult]:
    matched, matched_cost = recount_matched(flagged_folder)
    reconciled_clicks = report.clicks + report.fraud_clicks
    reconciled_cost = report.cost_micros + report.refund_micros
    balanced = reconciled_clicks == matched and reconciled_cost == matched_cost
    online = previous.source == serving.ONLINE_SOURCE
    drift = rate(abs(previous.clicks - reconciled_clicks), reconciled_clicks) if online else 0.0
    return [
        dg.AssetCheckResult(
            check_name=TOTALS_BALANCE,
            passed=balanced,
            severity=ERROR,
            metadata={
                "stats_clicks_plus_fraud": reconciled_clicks,
                "matched_clicks": matched,
                "stats_cost_plus_refund": reconciled_cost,
                "matched_cost_micros": matched_cost,
            },
        ),
        dg.AssetCheckResult(
            check_name=ONLINE_LAYER_DRIFT,
            passed=drift <= thresholds.max_online_click_drift,
            severity=WARN,
            description=(
                None
                if not online
                else f"online counted {previous.clicks} clicks, reconciled {reconciled_clicks}"
            ),
            metadata={
                "online_rows_replaced": online,
                "online_clicks": previous.clicks,
                "reconciled_clicks": reconciled_clicks,
                "online_cost_micros": previous.cost_micros,
                "drift": drift,
                "max_drift": thresholds.max_online_click_drift,
            },
        ),
    ]
