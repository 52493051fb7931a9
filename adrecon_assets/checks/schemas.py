"""Pandera (polars backend) contracts of a staged lake topic, generated from `rules.SCHEMAS`.

Staging already quarantines bad rows; these schemas re-check the written output as a second,
independent line of defence (an engine bug must not turn into silently wrong statistics) and
give operators pandera's failure cases in the check metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import polars as pl

from adrecon_assets import rules
from adrecon_assets.engines.polars_engine import POLARS_TYPES
from adrecon_assets.metadata.display import display_text
from adrecon_assets.rules import ColumnSpec, TopicSchema, day_bounds

if TYPE_CHECKING:
    import pandera.polars as pa

MAX_FAILURE_EXAMPLES = 10


def _column_checks(column: ColumnSpec) -> list[pa.Check]:
    import pandera.polars as pa  # deferred: see row_contract

    checks = []
    if column.non_negative:
        checks.append(pa.Check.ge(0))
    if column.name == "ip":
        checks.append(pa.Check.str_matches(rules.IPV4_PATTERN))
    return checks


def row_contract(schema: TopicSchema) -> pa.DataFrameSchema:
    """Section 2: every column present with its type, not null, costs >= 0, IPv4 addresses.

    Extra columns are allowed (`strict=False`) as the contract ignores them."""
    # Imported when a check runs, not when the definitions load: pandera costs ~0.3-0.6 s of
    # import that the CLI, the webserver and the daemon would otherwise pay on every start.
    import pandera.polars as pa

    return pa.DataFrameSchema(
        {
            column.name: pa.Column(
                POLARS_TYPES[column.kind], nullable=False, checks=_column_checks(column)
            )
            for column in schema.columns
        },
        name=f"{schema.topic.value}_contract",
        strict=False,
    )


def day_window_contract(schema: TopicSchema, day: date) -> pa.DataFrameSchema:
    """Section 2: a row's event timestamp lies inside the UTC day of its folder."""
    import pandera.polars as pa  # deferred: see row_contract

    start, end = day_bounds(day)
    timestamp = next(c for c in schema.columns if c.name == schema.timestamp_column)
    return pa.DataFrameSchema(
        {
            timestamp.name: pa.Column(
                POLARS_TYPES[timestamp.kind],
                checks=[pa.Check.in_range(start, end, include_max=False)],
            )
        },
        name=f"{schema.topic.value}_{day.isoformat()}_window",
        strict=False,
    )


@dataclass(frozen=True)
class ContractValidation:
    """Outcome of one pandera schema on a staged folder."""

    rows_checked: int
    failures: int = 0
    failed_checks: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failures == 0


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def _failure_cases(contract: pa.DataFrameSchema, frame: Frame) -> pl.DataFrame | None:
    """Pandera validates a LazyFrame's schema only (dtypes, columns), a DataFrame's values too."""
    import pandera.polars as pa  # deferred: see row_contract

    try:
        contract.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return errors.failure_cases
    return None


def validate_folder(
    folder: Path, contract: pa.DataFrameSchema, sample_rows: int
) -> ContractValidation:
    """Validate column presence and dtypes on the whole lazy scan (footers only), then the
    data-level checks on the first `sample_rows` rows (bounded cost on a 20M-row day)."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return ContractValidation(rows_checked=0)
    lazy = pl.scan_parquet(files)
    cases = _failure_cases(contract, lazy)
    rows_checked = 0
    if cases is None:
        sample = lazy.head(sample_rows).collect()
        rows_checked = sample.height
        cases = _failure_cases(contract, sample)
    if cases is None:
        return ContractValidation(rows_checked=rows_checked)
    per_check = cases.group_by("column", "check").len().sort("column", "check")
    return ContractValidation(
        rows_checked=rows_checked,
        failures=cases.height,
        failed_checks={
            f"{column}: {check}": count for column, check, count in per_check.iter_rows()
        },
        examples=[
            f"{row['column']} {row['check']}: {display_text(row['failure_case'])}"
            for row in cases.head(MAX_FAILURE_EXAMPLES).iter_rows(named=True)
        ],
    )
