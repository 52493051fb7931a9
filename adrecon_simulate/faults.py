"""Invalid traffic, injected at known rows so the labels are exact.

Each injector builds only clicks that the contract's rules classify one way: too-fast clicks
come from people (residential addresses, one click), data-centre clicks wait like people, and a
bot burst's clicks come from a fresh residential address and cookie, seconds apart, so only the
burst's fourth click on is a flood and nothing else applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from adrecon_assets.rules import FLOOD_MIN_EARLIER_CLICKS, MICROS_PER_SECOND, MIN_CLICK_GAP_MICROS
from adrecon_simulate.catalogue import (
    Catalogue,
    Sampler,
    data_centre_ips,
    residential_ips,
)
from adrecon_simulate.clicks import ClickDraft
from adrecon_simulate.config import FaultRates
from adrecon_simulate.labels import (
    DENYLISTED_CODE,
    FLOOD_CODE,
    NO_EMISSION_CODE,
    NONE_CODE,
    TOO_FAST_CODE,
)
from adrecon_simulate.traffic import (
    MAX_HUMAN_DELAY_MICROS,
    MICROS_PER_DAY,
    EmissionRows,
    human_delays,
)

# Bots get cookie ids far above any person's, one per burst or data-centre click.
BOT_USER_BASE: Final = 10**12
BOT_USERS_PER_DAY: Final = 10**7
# Too-fast clicks: from 0.3 s before the page loaded (client clock skew) up to just under 1 s.
TOO_FAST_EARLIEST_MICROS: Final = -300_000
# Bursts of 4-10 clicks, 3-30 s apart: at most 270 s, well inside the 600 s flood window.
BURST_SIZES: Final = (4, 11)
BURST_GAP_MICROS: Final = (3 * MICROS_PER_SECOND, 30 * MICROS_PER_SECOND)
BURST_START_DELAY_MICROS: Final = 2 * MICROS_PER_SECOND
# Duplicate copies: exact resend, resend a few ms later, or same time with a retry cookie suffix.
COPY_EXACT, COPY_LATER, COPY_RETRY_COOKIE = 0, 1, 2
COPY_KIND_SHARES: Final = np.array([0.6, 0.3, 0.1])
COPY_KIND_SAMPLER: Final = Sampler(COPY_KIND_SHARES)
COPY_MAX_DELAY_MICROS: Final = 50_000


@dataclass(frozen=True)
class FaultCounts:
    """How many click rows of each kind to inject, for `valid` clicks of people."""

    too_fast: int
    denylisted_ip: int
    click_flood: int
    orphans: int
    duplicates: int

    @staticmethod
    def for_valid_clicks(valid: int, rates: FaultRates) -> FaultCounts:
        # Rates are shares of all click rows: valid clicks are the remaining share.
        total = valid / (1.0 - rates.invalid_total)
        return FaultCounts(
            too_fast=round(rates.too_fast * total),
            denylisted_ip=round(rates.denylisted_ip * total),
            click_flood=round(rates.click_flood * total),
            orphans=round(rates.orphans * total),
            duplicates=round(rates.duplicates * total),
        )


def _on_rows(
    emissions: EmissionRows, rows: np.ndarray, clicked: np.ndarray, user: np.ndarray, ip: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "emission_day": np.full(len(rows), emissions.day.toordinal(), dtype=np.int64),
        "emission_number": emissions.emission_number[rows],
        "offer": emissions.offer[rows],
        "placement": emissions.placement[rows],
        "clicked_micros": clicked,
        "user": user,
        "ip": ip,
    }


def _codes(size: int, code: int) -> np.ndarray:
    return np.full(size, code, dtype=np.int64)


def valid_clicks(rng: np.random.Generator, emissions: EmissionRows, rows: np.ndarray) -> ClickDraft:
    users = emissions.users[emissions.emission_number[rows]]
    clicked = emissions.emitted_micros[rows] + human_delays(rng, len(rows))
    columns = _on_rows(emissions, rows, clicked, users, residential_ips(users))
    return ClickDraft(
        **columns, fault=_codes(len(rows), NONE_CODE), expected=_codes(len(rows), NONE_CODE)
    )


def too_fast_clicks(
    rng: np.random.Generator, emissions: EmissionRows, count: int, day_start: int
) -> ClickDraft:
    rows = rng.integers(0, emissions.rows, count)
    gaps = rng.integers(TOO_FAST_EARLIEST_MICROS, MIN_CLICK_GAP_MICROS, count)
    # A negative gap must not move the click into the previous day's folder.
    clicked = np.maximum(emissions.emitted_micros[rows] + gaps, day_start)
    users = emissions.users[emissions.emission_number[rows]]
    columns = _on_rows(emissions, rows, clicked, users, residential_ips(users))
    return ClickDraft(
        **columns, fault=_codes(count, TOO_FAST_CODE), expected=_codes(count, TOO_FAST_CODE)
    )


def bot_users(emissions: EmissionRows, first: int, count: int) -> np.ndarray:
    base = BOT_USER_BASE + (emissions.day.toordinal() % 100_000) * BOT_USERS_PER_DAY
    return base + first + np.arange(count, dtype=np.int64)


def data_centre_clicks(
    rng: np.random.Generator, catalogue: Catalogue, emissions: EmissionRows, count: int
) -> ClickDraft:
    rows = rng.integers(0, emissions.rows, count)
    clicked = emissions.emitted_micros[rows] + human_delays(rng, count)
    users = bot_users(emissions, 0, count)
    ips = data_centre_ips(rng, catalogue.denylist, count)
    columns = _on_rows(emissions, rows, clicked, users, ips)
    return ClickDraft(
        **columns, fault=_codes(count, DENYLISTED_CODE), expected=_codes(count, DENYLISTED_CODE)
    )


def bot_bursts(
    rng: np.random.Generator, emissions: EmissionRows, count: int, day_start: int
) -> ClickDraft:
    """`count` clicks in bursts of 4-10 by one bot on one ad (the last burst may be shorter)."""
    sizes = rng.integers(*BURST_SIZES, count // BURST_SIZES[0] + 1)
    ends = np.cumsum(sizes)
    bursts = int(np.searchsorted(ends, count)) + 1 if count else 0
    sizes = sizes[:bursts]
    if bursts:
        sizes[-1] -= int(ends[bursts - 1]) - count
    # Bursts start an hour before midnight at the latest, so they stay inside the day.
    latest = int(
        np.searchsorted(
            emissions.emitted_micros, day_start + MICROS_PER_DAY - MAX_HUMAN_DELAY_MICROS
        )
    )
    anchors = rng.integers(0, max(latest, 1), bursts)
    burst = np.repeat(np.arange(bursts), sizes)
    starts = np.cumsum(sizes) - sizes
    position = np.arange(count) - starts[burst]
    gaps = rng.integers(*BURST_GAP_MICROS, count)
    gaps[position == 0] = BURST_START_DELAY_MICROS
    offsets = np.cumsum(gaps)
    offsets -= (offsets - gaps)[starts][burst]
    rows = anchors[burst]
    clicked = emissions.emitted_micros[rows] + offsets
    users = bot_users(emissions, BOT_USERS_PER_DAY // 2, bursts)[burst]
    columns = _on_rows(emissions, rows, clicked, users, residential_ips(users))
    expected = np.where(position >= FLOOD_MIN_EARLIER_CLICKS, FLOOD_CODE, NONE_CODE)
    return ClickDraft(**columns, fault=_codes(count, FLOOD_CODE), expected=expected)


def orphan_clicks(
    rng: np.random.Generator,
    catalogue: Catalogue,
    emissions: EmissionRows,
    count: int,
    day_start: int,
) -> ClickDraft:
    """Clicks on emission ids the persister never wrote (numbers past the day's last page view)."""
    users = rng.integers(0, max(1, emissions.users.max(initial=0)) + 1, count)
    return ClickDraft(
        emission_day=np.full(count, emissions.day.toordinal(), dtype=np.int64),
        emission_number=emissions.page_views
        + rng.integers(0, 10 * emissions.page_views + 10, count),
        offer=catalogue.offer_sampler.draw(rng, count),
        placement=np.full(count, -1, dtype=np.int64),
        clicked_micros=day_start + rng.integers(0, MICROS_PER_DAY, count),
        user=users,
        ip=residential_ips(users),
        fault=_codes(count, NO_EMISSION_CODE),
        expected=_codes(count, NO_EMISSION_CODE),
    )


def duplicate_copies(
    rng: np.random.Generator, clicks: pl.DataFrame, count: int, day_end: int
) -> pl.DataFrame:
    """`count` resent rows of random clicks; each sorts after its original under rule 1, so the
    original survives deduplication and the labels stay exact."""
    if count == 0 or clicks.height == 0:
        return clicks.clear()
    originals = clicks[rng.integers(0, clicks.height, count)]
    kind = COPY_KIND_SAMPLER.draw(rng, count)
    delay = np.where(kind == COPY_LATER, rng.integers(1_000, COPY_MAX_DELAY_MICROS, count), 0)
    clicked_micros = originals["clicked_at"].dt.epoch("us").to_numpy()
    # A resend a few ms after 23:59:59.99 would belong to the next day: resend it exactly.
    delay = np.where(clicked_micros + delay >= day_end, 0, delay)
    return originals.with_columns(
        (pl.col("clicked_at") + pl.duration(microseconds=pl.lit(pl.Series(delay)))).alias(
            "clicked_at"
        ),
        pl.when(pl.Series(kind == COPY_RETRY_COOKIE))
        .then(pl.concat_str([pl.col("user_id"), pl.lit("-retry")]))
        .otherwise(pl.col("user_id"))
        .alias("user_id"),
        pl.lit(True).alias("is_copy"),
    )


def mark_late(rng: np.random.Generator, frame: pl.DataFrame, share: float) -> pl.DataFrame:
    """Hold a share of rows back for the late file written after _SUCCESS (at least one row
    when `share` > 0, so every day of a run exercises the late-data path). Rows already marked
    late in a `late` column stay late."""
    count = min(frame.height, max(1, round(share * frame.height))) if share > 0 else 0
    late = np.zeros(frame.height, dtype=bool)
    late[rng.choice(frame.height, count, replace=False)] = True
    held = pl.Series("late", late)
    return frame.with_columns(pl.col("late") | held if "late" in frame.columns else held)
