"""The Markdown the UI shows for a reconciled day: the online-drift table and the largest
corrections, and the metadata entries that carry them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from adrecon_assets.metadata.display import markdown_text
from adrecon_assets.metadata.drift import (
    CHANGED_SQL,
    KEY_COLUMNS,
    PREVIOUS,
    RECONCILED,
    Drift,
    Totals,
    compared_drift,
    compared_keys,
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
    with compared_keys(previous, reconciled) as connection:
        return compared_corrections_markdown(connection, limit)


def compared_corrections_markdown(
    connection: duckdb.DuckDBPyConnection, limit: int, changed_keys: int | None = None
) -> str:
    """`largest_corrections_markdown` of the view `compared` (see `compared_keys`): a top-N
    query, so only `limit` keys become Python rows. `changed_keys`, if the caller counted them
    already (`Drift.changed_keys`), saves a pass over the view (a join of two days)."""
    correction = f"cost_micros{RECONCILED} - cost_micros{PREVIOUS}"
    if changed_keys is None:
        count = connection.execute(f"SELECT count(*) FROM compared WHERE {CHANGED_SQL}").fetchone()
        assert count is not None
        changed_keys = int(count[0])
    if changed_keys == 0:
        return "No (offer_id, placement) changed."
    largest = connection.execute(
        f"SELECT *, {correction} AS correction FROM compared WHERE {CHANGED_SQL} "
        f"ORDER BY abs({correction}) DESC, {', '.join(KEY_COLUMNS)} LIMIT ?",
        [limit],
    )
    names = [column[0] for column in largest.description]
    lines = [
        "| offer_id | placement | previous clicks | reconciled clicks | fraud clicks "
        "| previous cost | reconciled cost | correction |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for values in largest.fetchall():
        row = dict(zip(names, values, strict=True))
        lines.append(
            f"| {markdown_text(row['offer_id'])} | {markdown_text(row['placement'])} "
            f"| {row['clicks' + PREVIOUS]:,} "
            f"| {row['clicks' + RECONCILED]:,} | {row['fraud_clicks' + RECONCILED]:,} "
            f"| {money(row['cost_micros' + PREVIOUS])} | {money(row['cost_micros' + RECONCILED])} "
            f"| {money(row['correction'])} |"
        )
    if changed_keys > limit:
        lines.append(f"\n{changed_keys - limit} more keys changed.")
    return "\n".join(lines)


def corrections_metadata(
    previous_rows: Totals,
    reconciled_rows: Totals,
    previous_source: str | None,
    spill_folder: Path | None = None,
) -> dict[str, Any]:
    """reconciled_statistics' metadata on what replacing the day's previous rows corrected
    (one bounded DuckDB comparison of the two days, spilling under `spill_folder`)."""
    with compared_keys(previous_rows, reconciled_rows, spill_folder) as connection:
        result = compared_drift(connection)
        largest = compared_corrections_markdown(connection, PREVIEW_ROWS, result.changed_keys)
    return {
        "online_drift": dg.MetadataValue.md(drift_markdown(result, previous_source)),
        **drift_metadata(result),
        "largest_corrections": dg.MetadataValue.md(largest),
    }
