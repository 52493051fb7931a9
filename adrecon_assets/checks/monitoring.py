"""Checks on anomaly_metrics."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.engines.base import AnomalyReport

NO_PLACEMENT_ANOMALIES = "no_placement_anomalies"


def anomaly_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            NO_PLACEMENT_ANOMALIES,
            asset="anomaly_metrics",
            description=(
                "No placement's valid clicks fell to a tenth of, or rose tenfold over, its "
                "trailing baseline (WARN: a business signal, not a pipeline fault)."
            ),
        )
    ]


def anomaly_check_results(report: AnomalyReport, anomalous: list[str]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=NO_PLACEMENT_ANOMALIES,
            passed=report.anomalies == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=None
            if not anomalous
            else f"anomalous placements: {', '.join(anomalous[:20])}",
            metadata={
                "anomalies": report.anomalies,
                "placements": report.placements,
                "history_days": report.history_days,
                "anomalous_placements": ", ".join(anomalous) or "none",
            },
        )
    ]
