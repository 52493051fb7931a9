"""Metadata that explains a reconciled day in the UI: what the previous (online) rows got wrong.

Pure functions over Arrow tables (or hand-written mappings in tests), vectorised with Polars:
a day has ~100k (offer_id, placement) rows, too many for a Python loop per materialization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from adrecon_assets.lake import Lake
from adrecon_assets.partitions import previous_day
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Warehouse

Key = tuple[str, str]
PREVIEW_ROWS = 10
KEY_COLUMNS = ("offer_id", "placement")
MEASURES = ("clicks", "cost_micros", "fraud_clicks", "refund_micros")
PREVIOUS, RECONCILED = "_previous", "_reconciled"


@dataclass(frozen=True)
class KeyTotals:
    """One (offer_id, placement) row of offer_placement_stats, measures only."""

    clicks: int = 0
    cost_micros: int = 0
    fraud_clicks: int = 0
    refund_micros: int = 0

    @property
    def billed_clicks(self) -> int:
        """Clicks the online layer should have billed: valid plus (refundable) fraud."""
        return self.clicks + self.fraud_clicks

    @property
    def billed_micros(self) -> int:
        return self.cost_micros + self.refund_micros


# Measures per (offer_id, placement): serving rows as an Arrow table (other columns ignored) or,
# in hand-computed tests, a mapping. Both go through the same vectorised comparison.
Totals: TypeAlias = "pa.Table | Mapping[Key, KeyTotals]"


def totals_frame(totals: Totals) -> pl.DataFrame:
    """The key and measure columns of `totals`, typed alike whichever side they come from."""
    if isinstance(totals, pa.Table):
        frame = pl.DataFrame(pl.from_arrow(totals.select([*KEY_COLUMNS, *MEASURES])))
    else:
        frame = pl.DataFrame(
            [(*key, *(getattr(row, m) for m in MEASURES)) for key, row in totals.items()],
            schema=[*KEY_COLUMNS, *MEASURES],
            orient="row",
        )
    return frame.select(pl.col(KEY_COLUMNS).cast(pl.String), pl.col(MEASURES).cast(pl.Int64))


def compare_keys(previous: Totals, reconciled: Totals) -> pl.DataFrame:
    """One row per key of either side with `<measure>_previous` and `<measure>_reconciled`;
    a key missing on one side has zeros there (as if its row held nothing)."""
    old = totals_frame(previous).rename({m: m + PREVIOUS for m in MEASURES})
    new = totals_frame(reconciled).rename({m: m + RECONCILED for m in MEASURES})
    return old.join(new, on=KEY_COLUMNS, how="full", coalesce=True).fill_null(0)


def _billed(side: str) -> tuple[pl.Expr, pl.Expr]:
    """Clicks and micros the online layer should have billed: valid plus (refundable) fraud."""
    return (
        pl.col("clicks" + side) + pl.col("fraud_clicks" + side),
        pl.col("cost_micros" + side) + pl.col("refund_micros" + side),
    )


def _positive_sum(difference: pl.Expr, name: str) -> pl.Expr:
    return difference.clip(lower_bound=0).sum().alias(name)


@dataclass(frozen=True)
class Drift:
    """How far the previous rows of a day were from the reconciled ones.

    previous.clicks + lost - double_counted - billed_fraud == reconciled.clicks (same for micros).
    """

    previous: KeyTotals
    reconciled: KeyTotals
    lost_clicks: int
    lost_micros: int
    double_counted_clicks: int
    double_counted_micros: int
    billed_fraud_clicks: int
    billed_fraud_micros: int


def drift(previous: Totals, reconciled: Totals) -> Drift:
    """Per key, an online count below the reconciled billable clicks means lost clicks, above
    it double counting (message duplicates); fraud the previous rows did not refund was billed."""
    (old_clicks, old_micros), (new_clicks, new_micros) = _billed(PREVIOUS), _billed(RECONCILED)
    sums = (
        compare_keys(previous, reconciled)
        .select(
            *(pl.col(m + side).sum() for side in (PREVIOUS, RECONCILED) for m in MEASURES),
            _positive_sum(new_clicks - old_clicks, "lost_clicks"),
            _positive_sum(new_micros - old_micros, "lost_micros"),
            _positive_sum(old_clicks - new_clicks, "double_counted_clicks"),
            _positive_sum(old_micros - new_micros, "double_counted_micros"),
        )
        .row(0, named=True)
    )
    old, new = (KeyTotals(*(sums[m + side] for m in MEASURES)) for side in (PREVIOUS, RECONCILED))
    return Drift(
        previous=old,
        reconciled=new,
        lost_clicks=sums["lost_clicks"],
        lost_micros=sums["lost_micros"],
        double_counted_clicks=sums["double_counted_clicks"],
        double_counted_micros=sums["double_counted_micros"],
        billed_fraud_clicks=new.fraud_clicks - old.fraud_clicks,
        billed_fraud_micros=new.refund_micros - old.refund_micros,
    )


def money(micros: int) -> str:
    """Micros as currency units with two decimals and a sign for corrections."""
    return f"{micros / 1_000_000:,.2f}"


def drift_markdown(result: Drift, previous_source: str | None) -> str:
    """The online-drift table of reconciled_statistics: counts and money, adding up."""
    if previous_source is None:
        return "No rows of this day were in the serving table before: nothing was corrected."
    label = f"previous rows (`{previous_source}`)"
    lines = [
        f"How far the {label} were from the reconciliation:",
        "",
        "| | valid clicks | money |",
        "| --- | ---: | ---: |",
        f"| {label} | {result.previous.clicks:,} | {money(result.previous.cost_micros)} |",
        f"| + lost clicks | {result.lost_clicks:,} | {money(result.lost_micros)} |",
        f"| - double-counted clicks | {result.double_counted_clicks:,} "
        f"| {money(result.double_counted_micros)} |",
        f"| - billed fraud (refunded) | {result.billed_fraud_clicks:,} "
        f"| {money(result.billed_fraud_micros)} |",
        f"| **= reconciled** | **{result.reconciled.clicks:,}** "
        f"| **{money(result.reconciled.cost_micros)}** |",
    ]
    return "\n".join(lines)


def largest_corrections_markdown(
    previous: Totals, reconciled: Totals, limit: int = PREVIEW_ROWS
) -> str:
    """The keys whose billed money changed most (by absolute correction), largest first."""
    changed = (
        compare_keys(previous, reconciled)
        .filter(pl.any_horizontal(pl.col(m + PREVIOUS) != pl.col(m + RECONCILED) for m in MEASURES))
        .with_columns(
            correction=pl.col("cost_micros" + RECONCILED) - pl.col("cost_micros" + PREVIOUS)
        )
    )
    if changed.is_empty():
        return "No (offer_id, placement) changed."
    largest = changed.sort(
        pl.col("correction").abs(), *KEY_COLUMNS, descending=[True, False, False]
    ).head(limit)
    lines = [
        "| offer_id | placement | previous clicks | reconciled clicks | fraud clicks "
        "| previous cost | reconciled cost | correction |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in largest.iter_rows(named=True):
        lines.append(
            f"| {row['offer_id']} | {row['placement']} | {row['clicks' + PREVIOUS]:,} "
            f"| {row['clicks' + RECONCILED]:,} | {row['fraud_clicks' + RECONCILED]:,} "
            f"| {money(row['cost_micros' + PREVIOUS])} | {money(row['cost_micros' + RECONCILED])} "
            f"| {money(row['correction'])} |"
        )
    if changed.height > limit:
        lines.append(f"\n{changed.height - limit} more keys changed.")
    return "\n".join(lines)


def drift_metadata(result: Drift) -> dict[str, int]:
    """The drift numbers under stable keys, so the UI plots them across partitions."""
    return {
        "lost_clicks": result.lost_clicks,
        "lost_micros": result.lost_micros,
        "double_counted_clicks": result.double_counted_clicks,
        "double_counted_micros": result.double_counted_micros,
        "billed_fraud_clicks": result.billed_fraud_clicks,
        "billed_fraud_micros": result.billed_fraud_micros,
    }


def lake_input_fingerprint(lake: Lake, day: date) -> str:
    """One fingerprint of every lake partition day D's numbers come from (clicks of D,
    emissions of D-1 and D): equal fingerprints mean an identical lake input."""
    partitions = [lake.partition(Topic.CLICKS, day), lake.partition(Topic.EMISSIONS, day)]
    before = previous_day(day)
    if before is not None:
        partitions.append(lake.partition(Topic.EMISSIONS, before))
    digest = hashlib.sha256()
    for partition in partitions:
        digest.update(f"{partition.topic}|{partition.day}|{partition.fingerprint}\n".encode())
    return digest.hexdigest()[:16]


def corrections_metadata(
    previous_rows: pa.Table, reconciled_rows: pa.Table, previous_source: str | None
) -> dict[str, Any]:
    """reconciled_statistics' metadata on what replacing the day's previous rows corrected."""
    result = drift(previous_rows, reconciled_rows)
    return {
        "online_drift": dg.MetadataValue.md(drift_markdown(result, previous_source)),
        **drift_metadata(result),
        "largest_corrections": dg.MetadataValue.md(
            largest_corrections_markdown(previous_rows, reconciled_rows)
        ),
    }


def parquet_rows(folder: Path) -> int:
    """Rows of a written warehouse folder, from the Parquet footers (no data read)."""
    return sum(pq.read_metadata(path).num_rows for path in Warehouse.files(folder))
