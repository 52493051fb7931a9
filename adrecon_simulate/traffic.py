"""Valid traffic of one day: page views returning sets of ads, and the people who click them.

Everything is drawn as numpy arrays (one draw per column, never a Python loop over rows);
strings are only built by Polars when the frames are assembled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import numpy as np
import polars as pl

from adrecon_assets.rules import MICROS_PER_SECOND
from adrecon_simulate.catalogue import Catalogue, Sampler
from adrecon_simulate.config import MAX_ADS_PER_EMISSION

MICROS_PER_DAY: Final = 86_400 * MICROS_PER_SECOND
MICROS_PER_HOUR: Final = 3_600 * MICROS_PER_SECOND
# Share of page views returning 1..6 ads (mean about 3.3 ads per emission).
ADS_PER_EMISSION_SHARES: Final = np.array([0.15, 0.2, 0.2, 0.2, 0.15, 0.1])
# Traffic by UTC hour: American evenings peak around 01:00 UTC, so midnight is busy and many
# ads shown before it are clicked after it (the cross-midnight join of rule 2).
HOURLY_TRAFFIC: Final = 1.0 + 0.6 * np.sin((np.arange(24) - 19) / 24 * 2 * np.pi)
ADS_SAMPLER: Final = Sampler(ADS_PER_EMISSION_SHARES)
HOUR_SAMPLER: Final = Sampler(HOURLY_TRAFFIC)
# A person clicks seconds to minutes after the page loads; never within 2 s (not "too fast").
MIN_HUMAN_DELAY_MICROS: Final = 2 * MICROS_PER_SECOND
MAX_HUMAN_DELAY_MICROS: Final = MICROS_PER_HOUR
RETURNING_SHARE: Final = 0.2
PAGE_VIEWS_PER_USER: Final = 4
USER_COUNT_FLOOR: Final = 1_000


def day_start_micros(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * MICROS_PER_SECOND


def day_tag(day: date) -> str:
    return day.strftime("%Y%m%d")


def emission_id_expr(tag: pl.Expr, numbers: pl.Expr) -> pl.Expr:
    """`e<YYYYMMDD>-<n>`: the n-th page view of the day tagged `tag`."""
    return pl.concat_str([pl.lit("e"), tag, pl.lit("-"), numbers.cast(pl.String)])


@dataclass(frozen=True)
class EmissionRows:
    """The day's emission rows as arrays, in emitted_at order (row i is the i-th ad shown)."""

    day: date
    emission_number: np.ndarray
    offer: np.ndarray
    placement: np.ndarray
    emitted_micros: np.ndarray
    page_views: int
    users: np.ndarray  # the viewer of each page view (emission number -> user key)

    @property
    def rows(self) -> int:
        return len(self.emission_number)

    def key_frame(self, catalogue: Catalogue) -> pl.DataFrame:
        """The rows as integer keys (`_day` ordinal, `_number`, `_offer`, `_placement`) with
        cost and `_emitted` micros: cheap to copy and reorder; `contract_emissions` builds the
        strings once, at the end."""
        return pl.DataFrame(
            {
                "_day": np.full(self.rows, self.day.toordinal(), dtype=np.int64),
                "_number": self.emission_number,
                "_offer": self.offer,
                "_placement": self.placement,
                "click_cost_micros": catalogue.offer_cost_micros[self.offer],
                "_emitted": self.emitted_micros,
            }
        )


EMISSION_KEY_COLUMNS: Final = ("_day", "_number", "_emitted")


def contract_emissions(keys: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Contract columns from a `key_frame` (of any days), followed by its other columns except
    the consumed `_day`, `_number` and `_emitted` (`_offer`/`_placement` stay for the online
    layer's integer counting)."""
    ordinals = keys["_day"].unique().sort().to_list()
    tags = [day_tag(date.fromordinal(ordinal)) for ordinal in ordinals]
    # Nearly every frame is one day's: a literal tag spares a 20M-row lookup.
    tag = (
        pl.lit(tags[0] if tags else "")
        if len(tags) <= 1
        else pl.col("_day").replace_strict(ordinals, tags, return_dtype=pl.String)
    )
    return keys.select(
        emission_id_expr(tag, pl.col("_number")).alias("emission_id"),
        pl.col("_offer")
        .replace_strict(np.arange(catalogue.offers), catalogue.offer_ids, return_dtype=pl.String)
        .alias("offer_id"),
        pl.col("_placement")
        .replace_strict(
            np.arange(catalogue.placements), catalogue.placement_names, return_dtype=pl.String
        )
        .alias("placement"),
        "click_cost_micros",
        pl.col("_emitted").cast(pl.Datetime("us", "UTC")).alias("emitted_at"),
        pl.exclude("click_cost_micros", *EMISSION_KEY_COLUMNS),
    )


def distinct_offers(rng: np.random.Generator, catalogue: Catalogue, ads: np.ndarray) -> np.ndarray:
    """A slot x page-view matrix of Zipf-drawn offers, distinct within each page view's ads.

    Slot-major, so each slot is one contiguous array; after one full pass per slot, only the
    few clashing page views are redrawn and rechecked."""
    offers = catalogue.offer_sampler.draw(rng, (MAX_ADS_PER_EMISSION, len(ads)))
    for slot in range(1, MAX_ADS_PER_EMISSION):
        clash = np.zeros(len(ads), dtype=bool)
        for earlier in range(slot):
            clash |= offers[slot] == offers[earlier]
        views = np.flatnonzero(clash & (slot < ads))
        for _ in range(20):
            if not len(views):
                break
            offers[slot, views] = catalogue.offer_sampler.draw(rng, len(views))
            views = views[(offers[:slot, views] == offers[slot, views]).any(axis=0)]
        # Pigeonhole fallback: one of 0..slot is always free among `slot` earlier offers.
        for candidate in range(slot + 1):
            free = (offers[:slot, views] != candidate).all(axis=0)
            offers[slot, views[free]] = candidate
            views = views[~free]
    return offers


def generate_emissions(
    rng: np.random.Generator, catalogue: Catalogue, day: date, rows: int
) -> EmissionRows:
    """Exactly `rows` emission rows: page views of 1-6 ads, the last one cut to fit."""
    expected_page_views = rows / float(np.dot(np.arange(1, 7), ADS_PER_EMISSION_SHARES))
    candidates = int(expected_page_views * 1.1) + 16
    ads = ADS_SAMPLER.draw(rng, candidates) + 1
    while int(ads.sum()) < rows:  # only for tiny days where 1.1x is not enough margin
        ads = np.concatenate([ads, ADS_SAMPLER.draw(rng, candidates) + 1])
    ends = np.cumsum(ads)
    page_views = int(np.searchsorted(ends, rows)) + 1
    ads = ads[:page_views]
    ads[-1] -= int(ends[page_views - 1]) - rows

    hours = HOUR_SAMPLER.draw(rng, page_views)
    emitted = np.sort(
        day_start_micros(day)
        + hours * MICROS_PER_HOUR
        + rng.integers(0, MICROS_PER_HOUR, page_views)
    )
    offers = distinct_offers(rng, catalogue, ads)
    shown = np.arange(MAX_ADS_PER_EMISSION)[None, :] < ads[:, None]
    user_count = max(USER_COUNT_FLOOR, page_views // PAGE_VIEWS_PER_USER)
    return EmissionRows(
        day=day,
        emission_number=np.repeat(np.arange(page_views, dtype=np.int64), ads),
        offer=offers.T[shown],
        placement=catalogue.placement_sampler.draw(rng, rows),
        emitted_micros=np.repeat(emitted, ads),
        page_views=page_views,
        users=rng.integers(0, user_count, page_views),
    )


def human_delays(rng: np.random.Generator, size: int) -> np.ndarray:
    """Emission-to-click delays of people: mostly log-normal with a median of about 15 s; a
    fifth come back to the tab later (1-60 minutes). Never under 2 s, never over an hour."""
    quick = rng.lognormal(np.log(15 * MICROS_PER_SECOND), 1.2, size).astype(np.int64)
    returning = rng.integers(60 * MICROS_PER_SECOND, MAX_HUMAN_DELAY_MICROS, size)
    delays = np.where(rng.random(size) < RETURNING_SHARE, returning, quick)
    return np.clip(delays, MIN_HUMAN_DELAY_MICROS, MAX_HUMAN_DELAY_MICROS)


def valid_click_rows(
    rng: np.random.Generator, catalogue: Catalogue, emissions: EmissionRows
) -> np.ndarray:
    """Indices of the emission rows that a person clicks (CTR of the row's placement)."""
    clicked = rng.random(emissions.rows) < catalogue.placement_ctr[emissions.placement]
    return np.flatnonzero(clicked)
