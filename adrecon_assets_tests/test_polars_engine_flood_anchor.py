"""The Polars engine's flood anchor (rule 3.4) is a shift over clicks sorted by user and offer:
it must never reach into the neighbouring group, whichever of its two columns differs."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from adrecon_assets.engines.polars_engine import flood_anchor


def at(minute: int) -> datetime:
    return datetime(2026, 1, 2, 10, minute)


def test_anchor_is_the_click_three_rows_earlier_of_the_same_user_and_offer_only() -> None:
    sorted_clicks = pl.DataFrame(
        {
            # u1/o1 has 5 clicks, u1/o2 (same user, next offer) 3, u2/o2 (next user) 4.
            "user_id": ["u1"] * 5 + ["u1"] * 3 + ["u2"] * 4,
            "offer_id": ["o1"] * 5 + ["o2"] * 3 + ["o2"] * 4,
            "clicked_at": [at(minute) for minute in [0, 1, 2, 3, 4, 10, 11, 12, 20, 21, 22, 23]],
        }
    )

    anchors = sorted_clicks.select(flood_anchor()).to_series().to_list()

    assert anchors == [
        *[None, None, None, at(0), at(1)],  # u1/o1: the 4th and 5th clicks have 3 earlier
        *[None, None, None],  # u1/o2: 3 rows back is u1/o1 (other offer)
        *[None, None, None, at(20)],  # u2/o2: 3 rows back is u1/o2 (other user) until the 4th
    ]
