"""Emission message duplicates: rows the persister wrote twice, so that rule 1's emission dedup
(one row per key over D-1 and D, earliest `emitted_at`, then smallest cost, then placement)
meets real work.

Four kinds of copy, each of a random emission row of the day:
- `exact`: the same row again, arriving later in the day (mostly another file, some in the late
  file);
- `later`: same key, a later `emitted_at` inside the same UTC day and other terms: the original
  wins by its earlier time;
- `same_time`: same key and `emitted_at`, another `click_cost_micros` or `placement`: the copy
  wins when it is cheaper, or as cheap with a smaller placement;
- `next_day`: same key, other terms, `emitted_at` in the first hour of D+1, written to D+1's
  folder: D's row wins D+1's join and D+1's emissions do not count it.

No copy is ever emitted before its original, so the winning row's `emitted_at` is the
original's and too-fast labels stay exact; only the billed cost and placement of a click can
move to a copy, and `bill_winning_terms` moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from adrecon_assets.rules import EMISSION_DEDUP_KEY, EMISSION_DEDUP_ORDER, JOIN_KEY
from adrecon_simulate.catalogue import Catalogue
from adrecon_simulate.config import FaultRates
from adrecon_simulate.labels import (
    COPY_EXACT,
    COPY_LATER,
    COPY_NEXT_DAY,
    COPY_SAME_TIME,
    EMISSION_COPY_KINDS,
    ORIGINAL,
)
from adrecon_simulate.traffic import MICROS_PER_HOUR, contract_emissions
from adrecon_simulate.writer import ARRIVAL_COLUMN, RESENT_COLUMN

COPY_KIND_COLUMN: Final = "copy_kind"
# An enum, not a string: a 20M-row string column of "original" would dominate the reordering.
COPY_KIND_TYPE: Final = pl.Enum([ORIGINAL, *EMISSION_COPY_KINDS])
# Conflicting copies: cheaper, dearer, or as dear on another placement, in equal shares.
CHEAPER, DEARER, OTHER_PLACEMENT = 0, 1, 2
# A `later` copy is re-stamped up to 5 minutes after its original (a retry with a new clock).
LATER_MAX_DELAY_MICROS: Final = 300_000_000
# Share of the same-day copies held back into the late file (at least one when any exist).
LATE_COPY_SHARE: Final = 0.1
# Rule 1's emission order, key first: the first row of each key survives.
_WINNER_ORDER: Final = [*EMISSION_DEDUP_KEY, *EMISSION_DEDUP_ORDER]


@dataclass(frozen=True)
class EmissionCopyCounts:
    exact: int
    later: int
    same_time: int
    next_day: int

    @staticmethod
    def for_rows(rows: int, rates: FaultRates) -> EmissionCopyCounts:
        conflicting = round(rates.emission_conflicting_copies * rows)
        next_day = round(rates.emission_next_day_copies * rows)
        if rates.emission_next_day_copies > 0:
            # At least one a day, so every run of two or more days exercises the D-1-wins rule
            # (as `mark_late` always writes a late file).
            next_day = max(1, next_day)
        return EmissionCopyCounts(
            exact=round(rates.emission_exact_copies * rows),
            later=conflicting // 2,
            same_time=conflicting - conflicting // 2,
            next_day=next_day,
        )


def with_arrival(keys: pl.DataFrame) -> pl.DataFrame:
    """The day's original rows (a `key_frame`), arriving when they were emitted and not yet
    late; `_row` lets a copy name its original without a join."""
    return keys.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
        pl.col("_emitted").alias(ARRIVAL_COLUMN),
        pl.lit(False).alias(RESENT_COLUMN),
        pl.lit(ORIGINAL, COPY_KIND_TYPE).alias(COPY_KIND_COLUMN),
        pl.lit(False).alias("late"),
    )


def _other_terms(
    rng: np.random.Generator, catalogue: Catalogue, originals: pl.DataFrame
) -> pl.DataFrame:
    """The rows with a placement or cost that differs from theirs, in one of three ways."""
    cost = originals["click_cost_micros"].to_numpy()
    placement = originals["_placement"].to_numpy()
    variant = rng.integers(0, 3, originals.height)
    if catalogue.placements == 1:  # no other placement exists: change the price instead
        variant = np.where(variant == OTHER_PLACEMENT, DEARER, variant)
    # Costs are whole thousandths of at least 20_000 (catalogue), so a step of up to half the
    # cost keeps a cheaper copy positive and different.
    step = 1_000 * rng.integers(1, cost // 2_000 + 1)
    new_cost = np.where(variant == CHEAPER, cost - step, cost)
    new_cost = np.where(variant == DEARER, cost + step, new_cost)
    shift = rng.integers(1, max(catalogue.placements, 2), originals.height)
    new_placement = np.where(
        variant == OTHER_PLACEMENT, (placement + shift) % catalogue.placements, placement
    )
    return originals.with_columns(
        pl.Series("_placement", new_placement), pl.Series("click_cost_micros", new_cost)
    )


def same_day_copies(
    rng: np.random.Generator,
    catalogue: Catalogue,
    originals: pl.DataFrame,
    counts: EmissionCopyCounts,
    day_end: int,
) -> pl.DataFrame:
    """Exact, later and same-time copies of random rows of `originals` (`with_arrival` rows),
    each arriving at a random time between its `emitted_at` and midnight."""
    kind = np.repeat(
        np.array([COPY_EXACT, COPY_LATER, COPY_SAME_TIME]),
        [counts.exact, counts.later, counts.same_time],
    )
    if not len(kind) or originals.height == 0:
        return originals.clear()
    copies = originals[rng.integers(0, originals.height, len(kind))]
    exact = kind == COPY_EXACT
    conflicting = _other_terms(rng, catalogue, copies)
    emitted = copies["_emitted"].to_numpy()
    delay = np.where(kind == COPY_LATER, rng.integers(1, LATER_MAX_DELAY_MICROS, len(kind)), 0)
    # A copy of 23:59:59.99 cannot move later inside the day: it keeps the time (and still
    # conflicts by its terms).
    emitted = emitted + np.minimum(delay, day_end - 1 - emitted)
    late = np.zeros(len(kind), dtype=bool)
    late_count = max(1, round(LATE_COPY_SHARE * len(kind)))
    late[rng.choice(len(kind), late_count, replace=False)] = True
    return copies.with_columns(
        pl.when(pl.Series(exact))
        .then(pl.col("_placement"))
        .otherwise(conflicting["_placement"])
        .alias("_placement"),
        pl.when(pl.Series(exact))
        .then(pl.col("click_cost_micros"))
        .otherwise(conflicting["click_cost_micros"])
        .alias("click_cost_micros"),
        pl.Series("_emitted", emitted),
        pl.Series(ARRIVAL_COLUMN, emitted + rng.integers(0, day_end - emitted)),
        pl.lit(True).alias(RESENT_COLUMN),
        pl.Series(COPY_KIND_COLUMN, kind, COPY_KIND_TYPE),
        pl.Series("late", late),
    )


def next_day_copies(
    rng: np.random.Generator,
    catalogue: Catalogue,
    originals: pl.DataFrame,
    clicked_after_midnight: pl.DataFrame,
    count: int,
    day_end: int,
) -> pl.DataFrame:
    """`count` conflicting copies re-stamped in the first hour of the next day, for its folder.

    Rows clicked after midnight (`clicked_after_midnight` holds their JOIN_KEY) come first, so
    that the next day's join meets both rows of a key; then random rows of the last hour."""
    # Originals are in emitted_at order: the last hour is a slice, not a 20M-row filter.
    last_hour = originals.slice(
        int(np.searchsorted(originals["_emitted"].to_numpy(), day_end - MICROS_PER_HOUR))
    )
    if count == 0 or last_hour.height == 0:
        return originals.clear()
    clicked = (
        contract_emissions(last_hour, catalogue)
        .join(clicked_after_midnight, on=list(JOIN_KEY), how="semi")["_row"]
        .to_numpy()
    )
    chosen = np.concatenate(
        [
            rng.permutation(clicked)[:count],
            last_hour["_row"].to_numpy()[
                rng.integers(0, last_hour.height, max(0, count - len(clicked)))
            ],
        ]
    )
    copies = _other_terms(rng, catalogue, originals[chosen])
    emitted = day_end + rng.integers(0, MICROS_PER_HOUR, copies.height)
    return copies.with_columns(
        pl.Series("_emitted", emitted),
        pl.Series(ARRIVAL_COLUMN, emitted),
        pl.lit(True).alias(RESENT_COLUMN),
        pl.lit(COPY_NEXT_DAY, COPY_KIND_TYPE).alias(COPY_KIND_COLUMN),
        pl.lit(False).alias("late"),
    )


def day_rows(
    originals: pl.DataFrame, copies: list[pl.DataFrame], catalogue: Catalogue
) -> pl.DataFrame:
    """The contract frame of a day's emission rows: originals, then copies, each part turned
    into strings on its own (a part holds one day's ids). Not reordered: the writer puts each
    resent row into the file of its ARRIVAL_COLUMN."""
    return pl.concat(
        [contract_emissions(part.drop("_row"), catalogue) for part in [originals, *copies]]
    )


def winning_terms(
    catalogue: Catalogue, originals: pl.DataFrame, copies: pl.DataFrame
) -> pl.DataFrame:
    """Rule 1's surviving `placement` and `click_cost_micros` of every key with a same-day copy,
    by JOIN_KEY (next-day copies never win: they are emitted later)."""
    contenders = pl.concat([originals[np.unique(copies["_row"].to_numpy())], copies])
    return (
        contract_emissions(contenders, catalogue)
        .sort(_WINNER_ORDER)
        .unique(list(EMISSION_DEDUP_KEY), keep="first", maintain_order=True)
        .select(*JOIN_KEY, "placement", "click_cost_micros")
    )


def bill_winning_terms(clicks: pl.DataFrame, winners: pl.DataFrame) -> pl.DataFrame:
    """Clicks whose emission key has a copy take the winning row's placement and cost as their
    truth (what the pipeline must join and bill them at)."""
    won = winners.rename({"placement": "_won_placement", "click_cost_micros": "_won_cost"})
    return (
        clicks.join(won, on=list(JOIN_KEY), how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("_won_placement", "placement").alias("placement"),
            pl.coalesce("_won_cost", "click_cost_micros").alias("click_cost_micros"),
        )
        .drop("_won_placement", "_won_cost")
    )
