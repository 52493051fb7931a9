"""Checks on joined_clicks, fraud_flags and reconciled_statistics."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adrecon_assets import rules
from adrecon_assets.checks import thresholds
from adrecon_assets.engines.base import AggregateReport, FlagReport, JoinReport
from adrecon_assets.serving import DayTotals

WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR


def rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def join_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "duplicate_click_rate",
            asset="joined_clicks",
            description=f"Message duplicates are at most {thresholds.MAX_DUPLICATE_CLICK_RATE:.0%} of clicks.",
        ),
        dg.AssetCheckSpec(
            "orphan_click_rate",
            asset="joined_clicks",
            description=(
                f"At most {thresholds.MAX_ORPHAN_CLICK_RATE:.0%} of deduplicated clicks find no "
                "emission of the day or the day before (more means lost emissions)."
            ),
        ),
    ]


def join_check_results(report: JoinReport) -> list[dg.AssetCheckResult]:
    duplicate_rate = rate(report.duplicate_clicks, report.clicks_in)
    orphan_rate = rate(report.orphan_clicks, report.clicks_deduplicated)
    return [
        dg.AssetCheckResult(
            check_name="duplicate_click_rate",
            passed=duplicate_rate <= thresholds.MAX_DUPLICATE_CLICK_RATE,
            severity=WARN,
            metadata={"duplicate_clicks": report.duplicate_clicks, "rate": duplicate_rate},
        ),
        dg.AssetCheckResult(
            check_name="orphan_click_rate",
            passed=orphan_rate <= thresholds.MAX_ORPHAN_CLICK_RATE,
            severity=WARN,
            metadata={"orphan_clicks": report.orphan_clicks, "rate": orphan_rate},
        ),
    ]


def flag_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "fraud_rate_within_bounds",
            asset="fraud_flags",
            description=(
                f"Between {thresholds.MIN_FRAUD_RATE:.2%} and {thresholds.MAX_FRAUD_RATE:.0%} of "
                "matched clicks are fraud: fewer means a broken rule, more an attack or a bug."
            ),
        )
    ]


def flag_check_results(report: FlagReport) -> list[dg.AssetCheckResult]:
    matched = report.clicks - report.reasons.get(rules.FraudReason.NO_EMISSION.value, 0)
    fraud = matched - report.valid_clicks
    fraud_rate = rate(fraud, matched)
    return [
        dg.AssetCheckResult(
            check_name="fraud_rate_within_bounds",
            passed=matched == 0
            or thresholds.MIN_FRAUD_RATE <= fraud_rate <= thresholds.MAX_FRAUD_RATE,
            severity=WARN,
            metadata={"matched_clicks": matched, "fraud_clicks": fraud, "rate": fraud_rate},
        )
    ]


def statistics_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "totals_balance",
            asset="reconciled_statistics",
            blocking=True,
            description=(
                "clicks + fraud_clicks equals the matched deduplicated clicks of fraud_flags, "
                "and cost_micros + refund_micros their cost (recounted independently)."
            ),
        ),
        dg.AssetCheckSpec(
            "online_layer_drift",
            asset="reconciled_statistics",
            description=(
                f"The online layer's clicks were within {thresholds.MAX_ONLINE_CLICK_DRIFT:.0%} "
                "of the reconciled (valid + fraud) clicks."
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
    report: AggregateReport, previous: DayTotals, flagged_folder: Path
) -> list[dg.AssetCheckResult]:
    matched, matched_cost = recount_matched(flagged_folder)
    balanced = (
        report.clicks + report.fraud_clicks == matched
        and report.cost_micros + report.refund_micros == matched_cost
    )
    reconciled_clicks = report.clicks + report.fraud_clicks
    online = previous.source == "online"
    drift = rate(abs(previous.clicks - reconciled_clicks), reconciled_clicks) if online else 0.0
    return [
        dg.AssetCheckResult(
            check_name="totals_balance",
            passed=balanced,
            severity=ERROR,
            metadata={
                "stats_clicks_plus_fraud": reconciled_clicks,
                "matched_clicks": matched,
                "stats_cost_plus_refund": report.cost_micros + report.refund_micros,
                "matched_cost_micros": matched_cost,
            },
        ),
        dg.AssetCheckResult(
            check_name="online_layer_drift",
            passed=drift <= thresholds.MAX_ONLINE_CLICK_DRIFT,
            severity=WARN,
            metadata={
                "online_rows_replaced": online,
                "online_clicks": previous.clicks,
                "reconciled_clicks": reconciled_clicks,
                "drift": drift,
            },
        ),
    ]
