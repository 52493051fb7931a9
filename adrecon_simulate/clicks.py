"""Click drafts: the columns of a batch of clicks as integer arrays, turned into contract rows
(plus the truth columns the labels and the online layer need) in one Polars pass."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import polars as pl

from adrecon_simulate.catalogue import Catalogue, dotted_quads
from adrecon_simulate.labels import FAULT_KINDS
from adrecon_simulate.traffic import day_tag, emission_id_expr


@dataclass(frozen=True)
class ClickDraft:
    """Clicks as arrays. `placement` is -1 for a click whose emission does not exist."""

    emission_day: np.ndarray  # ordinal of the day whose emission ids the click references
    emission_number: np.ndarray
    offer: np.ndarray
    placement: np.ndarray
    clicked_micros: np.ndarray
    user: np.ndarray
    ip: np.ndarray
    fault: np.ndarray
    expected: np.ndarray

    def __len__(self) -> int:
        return len(self.clicked_micros)

    @staticmethod
    def concat(drafts: list[ClickDraft]) -> ClickDraft:
        return ClickDraft(
            **{
                item.name: np.concatenate([getattr(draft, item.name) for draft in drafts])
                for item in fields(ClickDraft)
            }
        )

    def take(self, index: np.ndarray) -> ClickDraft:
        return ClickDraft(**{item.name: getattr(self, item.name)[index] for item in fields(self)})

    def frame(self, catalogue: Catalogue, day: date, first_number: int) -> pl.DataFrame:
        """Contract click rows with ids `c<day>-<n>` from `first_number`, and truth columns
        (the clicked ad's placement and cost, null for a click without emission)."""
        orphan = self.placement < 0
        ordinals = np.unique(self.emission_day)
        kinds = np.array(FAULT_KINDS)
        raw = pl.DataFrame(
            {
                "_number": np.arange(first_number, first_number + len(self), dtype=np.int64),
                "_emission_day": self.emission_day,
                "_emission_number": self.emission_number,
                "offer_id": catalogue.offer_ids.gather(self.offer),
                "_clicked": self.clicked_micros,
                "_user": self.user,
                "ip": dotted_quads(self.ip),
                "_placement": catalogue.placement_names.gather(np.where(orphan, 0, self.placement)),
                "_cost": catalogue.offer_cost_micros[self.offer],
                "_orphan": orphan,
                "fault": kinds[self.fault],
                "expected_reason": kinds[self.expected],
            }
        )
        day_tags = pl.col("_emission_day").replace_strict(
            ordinals, [day_tag(date.fromordinal(int(ordinal))) for ordinal in ordinals]
        )
        return raw.select(
            pl.concat_str([pl.lit(f"c{day_tag(day)}-"), pl.col("_number").cast(pl.String)]).alias(
                "click_id"
            ),
            emission_id_expr(day_tags, pl.col("_emission_number")).alias("emission_id"),
            "offer_id",
            pl.col("_clicked").cast(pl.Datetime("us", "UTC")).alias("clicked_at"),
            pl.concat_str([pl.lit("u"), pl.col("_user").cast(pl.String)]).alias("user_id"),
            "ip",
            pl.when(~pl.col("_orphan")).then(pl.col("_placement")).alias("placement"),
            pl.when(~pl.col("_orphan")).then(pl.col("_cost")).alias("click_cost_micros"),
            "fault",
            "expected_reason",
            pl.lit(False).alias("is_copy"),
            pl.lit(False).alias("late"),
        )
