"""Checks of the report assets, built inside the assets from what they computed."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from adrecon_assets.metadata.display import display_text
from adrecon_assets.reports.queries import NO_BUYERS_TRAILING_DAYS
from adrecon_assets.serving import DayTotals

MATCHES_SERVING_STATS = "matches_serving_statistics"
NO_BUYERLESS_PLACEMENTS = "no_buyerless_placements"
LEDGER_MATCHES_STATISTICS = "ledger_matches_statistics"
MAX_LISTED = 20


def placement_performance_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            MATCHES_SERVING_STATS,
            asset="placement_performance",
            blocking=True,
            description=(
                "The report's emissions, clicks and cost add up to the day's rows of "
                "offer_placement_stats in the serving DB (warehouse and serving agree); "
                "audited before the report is published."
            ),
        ),
        dg.AssetCheckSpec(
            NO_BUYERLESS_PLACEMENTS,
            asset="placement_performance",
            description=(
                f"Every placement shown in the last {NO_BUYERS_TRAILING_DAYS} days got a valid "
                "click (WARN: placements that don't attract buyers are a business signal)."
            ),
        ),
    ]


def _total(rows: pa.Table, column: str) -> int:
    return int(pc.sum(rows[column]).as_py() or 0)


def placement_performance_check_results(
    rows: pa.Table, serving_totals: DayTotals
) -> list[dg.AssetCheckResult]:
    report = {
        name: _total(rows, name) for name in ("emissions", "clicks", "cost_micros", "fraud_clicks")
    }
    serving = {
        "emissions": serving_totals.emissions,
        "clicks": serving_totals.clicks,
        "cost_micros": serving_totals.cost_micros,
        "fraud_clicks": serving_totals.fraud_clicks,
    }
    mismatched = [name for name in report if report[name] != serving[name]]
    buyerless = rows.filter(pc.field("attracts_no_buyers"))["placement"].to_pylist()
    return [
        dg.AssetCheckResult(
            check_name=MATCHES_SERVING_STATS,
            passed=not mismatched,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None
            if not mismatched
            else "differs from offer_placement_stats in "
            + ", ".join(f"{n}: report {report[n]}, serving {serving[n]}" for n in mismatched),
            metadata={
                **{f"report_{name}": value for name, value in report.items()},
                **{f"serving_{name}": value for name, value in serving.items()},
            },
        ),
        dg.AssetCheckResult(
            check_name=NO_BUYERLESS_PLACEMENTS,
            passed=not buyerless,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                None
                if not buyerless
                else "placements that don't attract buyers: "
                + ", ".join(display_text(placement) for placement in buyerless[:MAX_LISTED])
            ),
            metadata={"buyerless_placements": len(buyerless)},
        ),
    ]


def refund_ledger_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            LEDGER_MATCHES_STATISTICS,
            asset="refund_ledger",
            blocking=True,
            description=(
                "Per offer, the ledger's refunded clicks and money (SQL over fraud_flags) equal "
                "fraud_clicks and refund_micros of the written reconciled_statistics; audited "
                "before the ledger is published."
            ),
        )
    ]


def ledger_by_offer(rows: pa.Table) -> dict[str, tuple[int, int]]:
    totals: dict[str, tuple[int, int]] = {}
    for offer_id, clicks, micros in zip(
        rows["offer_id"].to_pylist(),
        rows["clicks"].to_pylist(),
        rows["refund_micros"].to_pylist(),
        strict=True,
    ):
        before = totals.get(offer_id, (0, 0))
        totals[offer_id] = (before[0] + clicks, before[1] + micros)
    return totals


def refund_ledger_check_results(
    rows: pa.Table, statistics_by_offer: dict[str, tuple[int, int]]
) -> list[dg.AssetCheckResult]:
    ledger = ledger_by_offer(rows)
    mismatched = sorted(
        offer
        for offer in ledger.keys() | statistics_by_offer.keys()
        if ledger.get(offer, (0, 0)) != statistics_by_offer.get(offer, (0, 0))
    )
    return [
        dg.AssetCheckResult(
            check_name=LEDGER_MATCHES_STATISTICS,
            passed=not mismatched,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                None
                if not mismatched
                else f"{len(mismatched)} offers differ (refunded clicks, micros): "
                + "; ".join(
                    f"{display_text(offer)}: ledger {ledger.get(offer, (0, 0))}, "
                    f"statistics {statistics_by_offer.get(offer, (0, 0))}"
                    for offer in mismatched[:MAX_LISTED]
                )
            ),
            metadata={
                "offers_mismatched": len(mismatched),
                "ledger_refund_micros": sum(micros for _, micros in ledger.values()),
                "statistics_refund_micros": sum(
                    micros for _, micros in statistics_by_offer.values()
                ),
            },
        )
    ]
