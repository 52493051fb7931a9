"""Checks on anomaly_metrics."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa

from adrecon_assets.engines.base import AnomalyReport
from adrecon_assets.metadata.display import display_text

NO_PLACEMENT_ANOMALIES = "no_placement_anomalies"
ANOMALY_ROWS_MATCH_STATISTICS = "anomaly_rows_match_statistics"
MAX_LISTED = 20


def anomaly_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            NO_PLACEMENT_ANOMALIES,
            asset="anomaly_metrics",
            description=(
                "No placement's valid clicks fell to a tenth of, or rose tenfold over, its "
                "trailing baseline (WARN: a business signal, not a pipeline fault)."
            ),
        ),
        dg.AssetCheckSpec(
            ANOMALY_ROWS_MATCH_STATISTICS,
            asset="anomaly_metrics",
            blocking=True,
            description=(
                "The staged placement_anomalies rows hold one row per placement of the day's "
                "written reconciled_statistics, of that day, with its valid clicks recounted "
                "from them (audited before the rows are published)."
            ),
        ),
    ]


def recount_placement_clicks(statistics_folder: Path) -> dict[str, int]:
    """Valid clicks per placement, summed from the day's written reconciled_statistics."""
    totals = (
        pl.scan_parquet(statistics_folder / "*.parquet")
        .group_by("placement")
        .agg(pl.col("clicks").sum().cast(pl.Int64))
        .collect()
    )
    return dict(totals.iter_rows())


def anomaly_rows_audit(staged: pa.Table, day: date, statistics_folder: Path) -> dg.AssetCheckResult:
    """Audit the staged anomaly rows against the written statistics of their day."""
    recount = recount_placement_clicks(statistics_folder)
    placements = staged["placement"].to_pylist()
    staged_clicks = dict(zip(placements, staged["clicks"].to_pylist(), strict=True))
    repeated = Counter(placements)
    found = [f"{p}: {n} staged rows" for p, n in sorted(repeated.items()) if n > 1]
    found += [f"{p}: missing from the staged rows" for p in sorted(recount.keys() - staged_clicks)]
    found += [f"{p}: not in the statistics" for p in sorted(staged_clicks.keys() - recount)]
    found += [
        f"{p}: clicks {staged_clicks[p]} (recount {recount[p]})"
        for p in sorted(staged_clicks.keys() & recount.keys())
        if staged_clicks[p] != recount[p]
    ]
    other_days = sorted({str(d) for d in staged["date"].to_pylist() if d != day})
    found += [f"rows of another day: {d}" for d in other_days]
    return dg.AssetCheckResult(
        check_name=ANOMALY_ROWS_MATCH_STATISTICS,
        passed=not found,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if not found
        else f"{len(found)} differences from reconciled_statistics: "
        + "; ".join(found[:MAX_LISTED]),
        metadata={
            "staged_rows": staged.num_rows,
            "statistics_placements": len(recount),
            "differences": len(found),
        },
    )


def anomaly_check_results(report: AnomalyReport, anomalous: list[str]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=NO_PLACEMENT_ANOMALIES,
            passed=report.anomalies == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=None
            if not anomalous
            else "anomalous placements: "
            + ", ".join(display_text(placement) for placement in anomalous[:20]),
            metadata={
                "anomalies": report.anomalies,
                "placements": report.placements,
                "history_days": report.history_days,
                "anomalous_placements": ", ".join(map(display_text, anomalous)) or "none",
            },
        )
    ]
