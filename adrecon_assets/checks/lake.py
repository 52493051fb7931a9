"""Checks on the staged lake partitions (raw_clicks, raw_emissions)."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.engines.base import StageReport

NO_QUARANTINED_ROWS = "no_quarantined_rows"


def lake_check_specs(asset_name: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            NO_QUARANTINED_ROWS,
            asset=asset_name,
            blocking=True,
            description=(
                "Every lake row meets the contract: no nulls in required columns, no negative "
                "cost, timestamps inside the folder's day, valid IPv4. Bad rows are quarantined "
                "beside the warehouse output and block the day's reconciliation."
            ),
        )
    ]


def lake_check_results(report: StageReport, quarantine_path: str) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=NO_QUARANTINED_ROWS,
            passed=report.quarantined_rows == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                None
                if report.quarantined_rows == 0
                else f"{report.quarantined_rows} bad rows quarantined in {quarantine_path}"
            ),
            metadata={
                "quarantined_rows": report.quarantined_rows,
                **{f"quarantined_{reason}": count for reason, count in report.quarantined.items()},
                "quarantine_path": quarantine_path,
            },
        )
    ]
