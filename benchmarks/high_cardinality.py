"""Issue 24's high-cardinality day: a real catalogue's millions of (offer_id, placement) keys.

The simulator's lake has a small catalogue, which hides what a day with millions of serving
rows costs. This generator writes D-1 and D straight to the lake's layout, file by file (memory
of one file, whatever the day): offers drawn Zipf-skewed from a large catalogue, each offer shown
on a few of 40 placements (the popular ones on more), so a 100M-row day has about 2.3M offers
and 6.6M keys, as the production day the issue measured. Files of FILE_ROWS emission rows
(10 a day at 100M), the day's clicks in one file (4 % of the emission rows). The day carries
the contract's edges the reconciliation must get right: duplicate emission rows (the same key
again, later or on D-1), clicks of D-1's emissions after midnight, orphan clicks, duplicate
click messages, too-fast clicks, click floods and denylisted addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

PLACEMENTS: Final = 40
CATALOGUE_OFFERS: Final = 2_300_000
ZIPF_EXPONENT: Final = 0.8
# An offer's placements: its home placement, then each next one with this probability.
NEXT_PLACEMENT_PROBABILITY: Final = 0.27
FILE_ROWS: Final = 10_000_000
ADS_PER_EMISSION: Final = 4
CLICK_RATE: Final = 0.04
DUPLICATE_EMISSION_RATE: Final = 0.01
DUPLICATE_CLICK_RATE: Final = 0.01
ORPHAN_CLICK_RATE: Final = 0.005
USERS: Final = 2_000_000
# A tenth of the clicks come from a hundred heavy users: floods of one user on one offer.
HEAVY_USERS: Final = 100
HEAVY_USER_CLICK_SHARE: Final = 0.1
# Click floods: this share of the clicks is followed by FLOOD_REPEATS more clicks of the same
# user on the same ad, FLOOD_SPACING_SECONDS apart (the 4th and later are floods).
FLOOD_SHARE: Final = 0.002
FLOOD_REPEATS: Final = 4
FLOOD_SPACING_SECONDS: Final = 30
DENYLIST: Final = ("10.66.0.0/16",)
MICROS_PER_DAY: Final = 86_400_000_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP: Final = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class HighCardinalityDay:
    emission_rows: int
    """Over both days."""
    click_rows: int


def day_start_micros(day: date) -> int:
    return (datetime(day.year, day.month, day.day, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def offer_cdf(catalogue: int = CATALOGUE_OFFERS, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    """The cumulative Zipf distribution of offer ranks 0..catalogue-1 (rank 0 most popular)."""
    weights = np.arange(1, catalogue + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def draw_offers(rng: np.random.Generator, cdf: np.ndarray, rows: int) -> np.ndarray:
    return np.searchsorted(cdf, rng.random(rows), side="right").astype(np.int64)


def draw_placements(rng: np.random.Generator, offers: np.ndarray) -> np.ndarray:
    """Each offer's home placement (a fixed scramble of its rank) plus a geometric offset: a
    rare offer is seen on one or two placements, a popular one on many."""
    home = (offers * 2_654_435_761) % PLACEMENTS
    offset = rng.geometric(1 - NEXT_PLACEMENT_PROBABILITY, len(offers)) - 1
    return (home + offset) % PLACEMENTS


def emission_file(
    rng: np.random.Generator, cdf: np.ndarray, day: date, file_number: int, rows: int
) -> pl.DataFrame:
    """One lake file of `rows` emission rows of `day`, sorted by time (as a persister writes)."""
    offers = draw_offers(rng, cdf, rows)
    start = day_start_micros(day)
    frame = pl.DataFrame(
        {
            "_row": np.arange(rows, dtype=np.int64),
            "_offer": offers,
            "_placement": draw_placements(rng, offers),
            "click_cost_micros": rng.integers(10_000, 2_000_000, rows, dtype=np.int64),
            "_at": start + rng.integers(0, MICROS_PER_DAY, rows, dtype=np.int64),
        }
    )
    prefix = f"h{day:%Y%m%d}-{file_number}-"
    frame = frame.select(
        (pl.lit(prefix) + (pl.col("_row") // ADS_PER_EMISSION).cast(pl.String)).alias(
            "emission_id"
        ),
        (pl.lit("o") + pl.col("_offer").cast(pl.String)).alias("offer_id"),
        (pl.lit("p") + pl.col("_placement").cast(pl.String).str.zfill(2)).alias("placement"),
        "click_cost_micros",
        pl.col("_at").cast(TIMESTAMP).alias("emitted_at"),
    )
    # Duplicates: the same key again (a retried message), at the same time or a little later.
    duplicates = frame.sample(fraction=DUPLICATE_EMISSION_RATE, seed=int(rng.integers(2**31)))
    later = pl.Series(rng.integers(0, 2, len(duplicates)) * 1_000_000, dtype=pl.Int64)
    end = pl.lit(start + MICROS_PER_DAY - 1).cast(TIMESTAMP)
    duplicates = duplicates.with_columns(
        pl.min_horizontal(pl.col("emitted_at") + pl.duration(microseconds=later), end)
    )
    return pl.concat([frame, duplicates]).sort("emitted_at")


def clicks_of(rng: np.random.Generator, emissions: pl.DataFrame, day: date) -> pl.DataFrame:
    """Clicks on a sample of `emissions` that fall on `day` (from 0.2 s to ~1 h after the
    emission, so some too fast, some after midnight), with some users clicking in floods."""
    sample = emissions.sample(fraction=CLICK_RATE, seed=int(rng.integers(2**31)))
    gaps = (rng.exponential(600.0, len(sample)) * 1_000_000 + 200_000).astype(np.int64)
    users = rng.integers(0, USERS, len(sample))
    heavy = rng.random(len(sample)) < HEAVY_USER_CLICK_SHARE
    users[heavy] = rng.integers(0, HEAVY_USERS, int(heavy.sum()))
    start = day_start_micros(day)
    ips = rng.integers(0, 2**32, len(sample), dtype=np.int64)
    denylisted = rng.random(len(sample)) < 0.002
    ips[denylisted] = (10 << 24) + (66 << 16) + rng.integers(0, 2**16, int(denylisted.sum()))
    return (
        sample.select("emission_id", "offer_id", "emitted_at")
        .with_columns(
            (pl.col("emitted_at") + pl.duration(microseconds=pl.Series(gaps))).alias("clicked_at"),
            (pl.lit("u") + pl.Series(users).cast(pl.String)).alias("user_id"),
            ip_text(pl.Series(ips)).alias("ip"),
        )
        .filter(
            (pl.col("clicked_at") >= pl.lit(start).cast(TIMESTAMP))
            & (pl.col("clicked_at") < pl.lit(start + MICROS_PER_DAY).cast(TIMESTAMP))
        )
        .drop("emitted_at")
    )


def ip_text(numbers: pl.Series) -> pl.Expr:
    octets = [(pl.lit(numbers) // (256**shift) % 256).cast(pl.String) for shift in (3, 2, 1, 0)]
    return pl.concat_str(octets, separator=".")


def write_high_cardinality_lake(
    lake: Path, first_day: date, emissions_per_day: int, seed: int
) -> HighCardinalityDay:
    """D-1 (`first_day`) and D of `emissions_per_day` rows each (before duplicates), file by
    file, with D's clicks (on D-1's and D's emissions) in one file and the denylist."""
    rng = np.random.default_rng(seed)
    cdf = offer_cdf()
    emission_rows = 0
    click_parts: list[pl.DataFrame] = []
    day = first_day + timedelta(days=1)
    for current in (first_day, day):
        folder = lake / "emissions" / f"date_partition={current.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for file_number in range(-(-emissions_per_day // FILE_ROWS)):
            rows = min(FILE_ROWS, emissions_per_day - file_number * FILE_ROWS)
            emissions = emission_file(rng, cdf, current, file_number, rows)
            emissions.write_parquet(folder / f"part-{file_number:05d}.parquet")
            emission_rows += emissions.height
            click_parts.append(clicks_of(rng, emissions, day))
            del emissions
        (folder / "_SUCCESS").touch()
    clicks = pl.concat(click_parts)
    del click_parts
    numbers = np.arange(clicks.height, dtype=np.int64)
    clicks = clicks.with_columns(
        (pl.lit("k") + pl.Series(numbers).cast(pl.String)).alias("click_id")
    )
    orphans = clicks.sample(fraction=ORPHAN_CLICK_RATE, seed=seed).with_columns(
        (pl.lit("gone-") + pl.col("emission_id")).alias("emission_id"),
        (pl.lit("orphan-") + pl.col("click_id")).alias("click_id"),
    )
    duplicates = clicks.sample(fraction=DUPLICATE_CLICK_RATE, seed=seed + 1)
    flooded = clicks.sample(fraction=FLOOD_SHARE, seed=seed + 2)
    floods = [
        flooded.with_columns(
            pl.col("clicked_at") + pl.duration(seconds=repeat * FLOOD_SPACING_SECONDS),
            (pl.col("click_id") + f"-flood{repeat}").alias("click_id"),
        )
        for repeat in range(1, FLOOD_REPEATS + 1)
    ]
    day_end = pl.lit(day_start_micros(day) + MICROS_PER_DAY).cast(TIMESTAMP)
    clicks = (
        pl.concat([clicks, orphans, duplicates, *floods])
        .filter(pl.col("clicked_at") < day_end)
        .select("click_id", "emission_id", "offer_id", "clicked_at", "user_id", "ip")
        .sort("clicked_at")
    )
    folder = lake / "clicks" / f"date_partition={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    clicks.write_parquet(folder / "part-00000.parquet")
    (folder / "_SUCCESS").touch()
    (lake / "reference").mkdir(parents=True, exist_ok=True)
    (lake / "reference" / "ip_denylist.csv").write_text("cidr\n" + "\n".join(DENYLIST) + "\n")
    return HighCardinalityDay(emission_rows=emission_rows, click_rows=clicks.height)
