"""The Markdown the UI shows for a reconciled day: the online-drift table and the largest
corrections, and the metadata entries that carry them."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl
import pyarrow as pa

from adrecon_assets.metadata.display import markdown_text
from adrecon_assets.metadata.drift import (
    KEY_COLUMNS,
    MEASURES,
    PREVIOUS,
    RECONCILED,
    Drift,
    Totals,
    compare_keys,
    drift,
    drift_metadata,
)

PREVIEW_ROWS = 10


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
            f"| {markdown_text(row['offer_id'])} | {markdown_text(row['placement'])} "
            f"| {row['clicks' + PREVIOUS]:,} "
            f"| {row['clicks' + RECONCILED]:,} | {row['fraud_clicks' + RECONCILED]:,} "
            f"| {money(row['cost_micros' + PREVIOUS])} | {money(row['cost_micros' + RECONCILED])} "
            f"| {money(row['correction'])} |"
        )
    if changed.height > limit:
        lines.append(f"\n{changed.height - limit} more keys changed.")
    return "\n".join(lines)


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
