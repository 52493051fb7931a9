"""Checks on the staged lake partitions (raw_clicks, raw_emissions).

All three are blocking ERRORs: a day whose input breaks the contract must not be reconciled.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from adrecon_assets import rules
from adrecon_assets.checks.schemas import (
    ContractValidation,
    day_window_contract,
    row_contract,
    validate_folder,
)
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.engines.base import StageReport
from adrecon_assets.rules import Topic

NO_QUARANTINED_ROWS = "no_quarantined_rows"
STAGED_ROWS_MATCH_CONTRACT = "staged_rows_match_contract"
TIMESTAMPS_INSIDE_PARTITION_DAY = "timestamps_inside_partition_day"


def lake_check_specs(asset_name: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            NO_QUARANTINED_ROWS,
            asset=asset_name,
            blocking=True,
            description=(
                "Every lake row meets the contract: no nulls in required columns, no negative "
                "cost, timestamps inside the folder's day, valid IPv4. Bad rows are quarantined "
                "in <warehouse>/_quarantine/<topic>/date_partition=D/ and block the day's "
                "reconciliation."
            ),
        ),
        dg.AssetCheckSpec(
            STAGED_ROWS_MATCH_CONTRACT,
            asset=asset_name,
            blocking=True,
            description=(
                "Pandera re-validates the staged output against the contract (every column, its "
                "type, not null, cost >= 0, IPv4): defence in depth against an engine bug. "
                "Types on the whole day, values on a sample of its first rows."
            ),
        ),
        dg.AssetCheckSpec(
            TIMESTAMPS_INSIDE_PARTITION_DAY,
            asset=asset_name,
            blocking=True,
            description=(
                "Every staged event timestamp lies inside the partition's UTC day (pandera, "
                "on the sampled rows)."
            ),
        ),
    ]


def quarantine_summary(report: StageReport) -> str:
    """Counts per reason, each naming its column, most frequent first:
    `negative_click_cost_micros: 2, emitted_at_outside_partition_day: 1`."""
    counts = sorted(report.quarantined.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason}: {count}" for reason, count in counts if count)


def _pandera_result(check_name: str, validation: ContractValidation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=validation.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if validation.passed else "; ".join(validation.examples),
        metadata={
            "rows_checked": validation.rows_checked,
            "failure_cases": validation.failures,
            **{f"failed {name}": count for name, count in validation.failed_checks.items()},
        },
    )


def lake_check_results(
    report: StageReport,
    quarantine_path: Path,
    staged_folder: Path,
    topic: Topic,
    day: date,
    thresholds: CheckThresholds,
) -> list[dg.AssetCheckResult]:
    schema = rules.SCHEMAS[topic]
    sample_rows = thresholds.contract_sample_rows
    return [
        dg.AssetCheckResult(
            check_name=NO_QUARANTINED_ROWS,
            passed=report.quarantined_rows == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                None
                if report.quarantined_rows == 0
                else f"{report.quarantined_rows} bad rows quarantined "
                f"({quarantine_summary(report)}) in {quarantine_path}"
            ),
            metadata={
                "rows_in": report.rows_in,
                "quarantined_rows": report.quarantined_rows,
                **{f"quarantined_{reason}": count for reason, count in report.quarantined.items()},
                "quarantine_path": dg.MetadataValue.path(str(quarantine_path)),
            },
        ),
        _pandera_result(
            STAGED_ROWS_MATCH_CONTRACT,
            validate_folder(staged_folder, row_contract(schema), sample_rows),
        ),
        _pandera_result(
            TIMESTAMPS_INSIDE_PARTITION_DAY,
            validate_folder(staged_folder, day_window_contract(schema, day), sample_rows),
        ),
    ]
