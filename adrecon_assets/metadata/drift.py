"""What the previous (online) rows of a day got wrong against the reconciled ones.

Pure functions over Arrow tables (or hand-written mappings in tests), vectorised with Polars:
a day has ~100k (offer_id, placement) rows, too many for a Python loop per materialization.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

import polars as pl
import pyarrow as pa

from adrecon_assets import rules

Key = tuple[str, str]
KEY_COLUMNS = rules.STATS_KEY
MEASURES = rules.DRIFT_MEASURES
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
