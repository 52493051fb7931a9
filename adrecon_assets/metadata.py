"""Metadata that explains a reconciled day in the UI: what the previous (online) rows got wrong.

Pure functions over plain rows, so the numbers are testable by hand without Dagster or DuckDB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from adrecon_assets.lake import Lake
from adrecon_assets.partitions import previous_day
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Warehouse

Key = tuple[str, str]
PREVIEW_ROWS = 10


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


def totals_by_key(rows: Iterable[Mapping[str, Any]]) -> dict[Key, KeyTotals]:
    return {
        (row["offer_id"], row["placement"]): KeyTotals(
            int(row["clicks"]),
            int(row["cost_micros"]),
            int(row["fraud_clicks"]),
            int(row["refund_micros"]),
        )
        for row in rows
    }


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


def _sum(totals: Iterable[KeyTotals]) -> KeyTotals:
    clicks = cost = fraud = refund = 0
    for row in totals:
        clicks += row.clicks
        cost += row.cost_micros
        fraud += row.fraud_clicks
        refund += row.refund_micros
    return KeyTotals(clicks, cost, fraud, refund)


def drift(previous: dict[Key, KeyTotals], reconciled: dict[Key, KeyTotals]) -> Drift:
    """Per key, an online count below the reconciled billable clicks means lost clicks, above
    it double counting (message duplicates); fraud the previous rows did not refund was billed."""
    lost_clicks = lost_micros = double_clicks = double_micros = fraud_clicks = fraud_micros = 0
    for key in previous.keys() | reconciled.keys():
        old = previous.get(key, KeyTotals())
        new = reconciled.get(key, KeyTotals())
        lost_clicks += max(0, new.billed_clicks - old.billed_clicks)
        double_clicks += max(0, old.billed_clicks - new.billed_clicks)
        lost_micros += max(0, new.billed_micros - old.billed_micros)
        double_micros += max(0, old.billed_micros - new.billed_micros)
        fraud_clicks += new.fraud_clicks - old.fraud_clicks
        fraud_micros += new.refund_micros - old.refund_micros
    return Drift(
        previous=_sum(previous.values()),
        reconciled=_sum(reconciled.values()),
        lost_clicks=lost_clicks,
        lost_micros=lost_micros,
        double_counted_clicks=double_clicks,
        double_counted_micros=double_micros,
        billed_fraud_clicks=fraud_clicks,
        billed_fraud_micros=fraud_micros,
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
    previous: dict[Key, KeyTotals], reconciled: dict[Key, KeyTotals], limit: int = PREVIEW_ROWS
) -> str:
    """The keys whose billed money changed most (by absolute correction), largest first."""
    corrections = []
    for key in previous.keys() | reconciled.keys():
        old = previous.get(key, KeyTotals())
        new = reconciled.get(key, KeyTotals())
        if old != new:
            corrections.append((key, old, new, new.cost_micros - old.cost_micros))
    if not corrections:
        return "No (offer_id, placement) changed."
    corrections.sort(key=lambda item: (-abs(item[3]), item[0]))
    lines = [
        "| offer_id | placement | previous clicks | reconciled clicks | fraud clicks "
        "| previous cost | reconciled cost | correction |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (offer_id, placement), old, new, correction in corrections[:limit]:
        lines.append(
            f"| {offer_id} | {placement} | {old.clicks:,} | {new.clicks:,} | {new.fraud_clicks:,} "
            f"| {money(old.cost_micros)} | {money(new.cost_micros)} | {money(correction)} |"
        )
    if len(corrections) > limit:
        lines.append(f"\n{len(corrections) - limit} more keys changed.")
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
    previous = totals_by_key(previous_rows.to_pylist())
    reconciled = totals_by_key(reconciled_rows.to_pylist())
    result = drift(previous, reconciled)
    return {
        "online_drift": dg.MetadataValue.md(drift_markdown(result, previous_source)),
        **drift_metadata(result),
        "largest_corrections": dg.MetadataValue.md(
            largest_corrections_markdown(previous, reconciled)
        ),
    }


def parquet_rows(folder: Path) -> int:
    """Rows of a written warehouse folder, from the Parquet footers (no data read)."""
    return sum(pq.read_metadata(path).num_rows for path in Warehouse.files(folder))
