"""The online layer's best-effort statistics, as the serving table held them before any
reconciliation: it lost some clicks, counted resent duplicates twice, billed every matched
click (fraud included, so nothing is refunded) and never saw the late files."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from adrecon_assets import rules
from adrecon_assets.serving import ServingStore, add_online_increments
from adrecon_simulate.catalogue import Catalogue


def online_statistics(
    rng: np.random.Generator,
    catalogue: Catalogue,
    day: date,
    emissions: pl.DataFrame,
    clicks: pl.DataFrame,
    lost_share: float,
) -> pa.Table:
    """Rows of `offer_placement_stats` for `day` (without source/updated_at)."""
    # Only the integer keys: filtering the string columns of a 20M-row day would cost more.
    on_time = emissions.select("_offer", "_placement", "late").filter(~pl.col("late"))
    # Counting by integer key keeps a 20M-row day to one bincount instead of a string group-by.
    keys = on_time["_offer"].to_numpy() * catalogue.placements + on_time["_placement"].to_numpy()
    counts = np.bincount(keys, minlength=catalogue.offers * catalogue.placements)
    present = np.flatnonzero(counts)
    emission_counts = pl.DataFrame(
        {
            "offer_id": catalogue.offer_ids.gather(present // catalogue.placements),
            "placement": catalogue.placement_names.gather(present % catalogue.placements),
            "emissions": counts[present].astype(np.int64),
        }
    )
    lost = rng.random(clicks.height) < lost_share
    billed = (
        clicks.filter(~pl.col("late") & ~pl.Series(lost) & pl.col("placement").is_not_null())
        .group_by(rules.STATS_KEY)
        .agg(
            pl.len().cast(pl.Int64).alias("clicks"),
            pl.col("click_cost_micros").sum().cast(pl.Int64).alias("cost_micros"),
        )
    )
    statistics = (
        emission_counts.join(billed, on=list(rules.STATS_KEY), how="full", coalesce=True)
        .with_columns(
            pl.col("emissions", "clicks", "cost_micros").fill_null(0).cast(pl.Int64),
            pl.lit(0, pl.Int64).alias("fraud_clicks"),
            pl.lit(0, pl.Int64).alias("refund_micros"),
            pl.lit(day).alias("date"),
        )
        .select(rules.STATS_COLUMNS)
        .sort(rules.STATS_KEY)
    )
    return statistics.to_arrow()


def publish_online_statistics(store: ServingStore, rows: pa.Table) -> int:
    """What the online aggregator committed for a day, through the product's online write
    (contract 4.2, either store): increments to the online rows, dropped once reconciled."""
    return add_online_increments(
        store, rows.select(["date", "offer_id", "placement", "emissions", "clicks", "cost_micros"])
    )
