"""The fixed world of a simulation: offers, placements and the IP address space.

Drawn once per seed, so every day of a run shares the same offers and placements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from adrecon_assets.rules import IpRange, parse_denylist
from adrecon_simulate.config import MAX_CTR, MIN_CTR, SimulationConfig

# Published cloud/hosting ranges (AWS, Azure, Google Cloud, Cloudflare, OVH, Hetzner):
# clicks from data centres are bots, not people.
DATA_CENTRE_CIDRS: Final = (
    "3.0.0.0/9",
    "13.64.0.0/11",
    "34.64.0.0/10",
    "35.184.0.0/13",
    "104.16.0.0/13",
    "51.68.0.0/16",
    "88.198.0.0/16",
)
# First octets of consumer ISP space that none of the data-centre blocks touch.
RESIDENTIAL_FIRST_OCTETS: Final = (24, 31, 46, 62, 77, 79, 81, 82, 84, 86, 90, 92, 109, 151, 176)

PAGES: Final = ("home", "search", "article", "product", "category", "video", "feed", "mail")
PAGES_EXTRA: Final = ("news", "checkout")
SLOTS: Final = (
    "top_banner",
    "sidebar_1",
    "sidebar_2",
    "inline_1",
    "inline_2",
    "native_1",
    "native_2",
    "sticky_footer",
    "interstitial",
    "end_of_page",
)


class Sampler:
    """Draws indices from a discrete distribution through a lookup table: one gather per draw
    instead of a binary search, which is what makes 20M-row days fast. Each probability is
    rounded to a multiple of 1/2^20, far below the rarest offer's share."""

    RESOLUTION: Final = 1 << 20

    def __init__(self, probabilities: np.ndarray) -> None:
        cumulative = np.cumsum(probabilities / probabilities.sum())
        grid = (np.arange(self.RESOLUTION) + 0.5) / self.RESOLUTION
        self.table = np.minimum(
            np.searchsorted(cumulative, grid, side="right"), len(probabilities) - 1
        ).astype(np.int32)

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        return self.table[rng.integers(0, self.RESOLUTION, size)].astype(np.int64)


@dataclass(frozen=True)
class Catalogue:
    offer_ids: pl.Series
    offer_probabilities: np.ndarray
    offer_sampler: Sampler
    offer_cost_micros: np.ndarray
    placement_names: pl.Series
    placement_probabilities: np.ndarray
    placement_sampler: Sampler
    placement_ctr: np.ndarray
    denylist: list[IpRange]

    @property
    def offers(self) -> int:
        return len(self.offer_ids)

    @property
    def placements(self) -> int:
        return len(self.placement_names)


def build_catalogue(config: SimulationConfig) -> Catalogue:
    rng = np.random.default_rng([config.seed, 0])
    ranks = np.arange(1, config.offers + 1, dtype=np.float64)
    offer_probabilities = ranks**-config.zipf_exponent
    offer_probabilities /= offer_probabilities.sum()
    # Cost per click: log-normal around 0.40 with a long tail (roughly 0.05-5.00 per click),
    # rounded to whole thousandths because bids are.
    offer_cost = np.clip(rng.lognormal(np.log(400_000), 0.8, config.offers), 20_000, 8_000_000)
    offer_cost_micros = (offer_cost // 1_000 * 1_000).astype(np.int64)

    names = [f"{page}.{slot}" for page in (*PAGES, *PAGES_EXTRA) for slot in SLOTS]
    chosen = rng.permutation(len(names))[: config.placements]
    placement_names = pl.Series("placement", [names[index] for index in chosen], pl.String)
    # Page traffic is skewed too: a few placements show most of the ads.
    placement_weights = rng.pareto(1.5, config.placements) + 0.2
    # Scaled after the draw, so a scaled run keeps the seed's placements and their CTR ranking.
    placement_ctr = config.ctr_scale * np.exp(
        rng.uniform(np.log(MIN_CTR), np.log(MAX_CTR), config.placements)
    )
    return Catalogue(
        offer_ids=pl.Series("offer_id", [f"o{index:05d}" for index in range(config.offers)]),
        offer_probabilities=offer_probabilities,
        offer_sampler=Sampler(offer_probabilities),
        offer_cost_micros=offer_cost_micros,
        placement_names=placement_names,
        placement_probabilities=placement_weights / placement_weights.sum(),
        placement_sampler=Sampler(placement_weights),
        placement_ctr=placement_ctr,
        denylist=parse_denylist(list(DATA_CENTRE_CIDRS)),
    )


def residential_ips(keys: np.ndarray) -> np.ndarray:
    """A stable consumer address per key (a user keeps the same address all run)."""
    mixed = (keys.astype(np.uint64) * np.uint64(2_654_435_761)) % np.uint64(2**32)
    octets = np.array(RESIDENTIAL_FIRST_OCTETS, dtype=np.int64)
    first = octets[(mixed % np.uint64(len(octets))).astype(np.int64)]
    # Host part avoids .0 and .255 so no address looks like a network or broadcast address.
    rest = (mixed >> np.uint64(8)).astype(np.int64) % (1 << 24)
    rest = (rest & ~np.int64(0xFF)) | (1 + (rest & 0xFF) % 254)
    return (first << 24) | rest


def data_centre_ips(rng: np.random.Generator, denylist: list[IpRange], size: int) -> np.ndarray:
    """Addresses inside the denylist's ranges, edges included (network and broadcast)."""
    firsts = np.array([block.first for block in denylist], dtype=np.int64)
    lasts = np.array([block.last for block in denylist], dtype=np.int64)
    block = rng.integers(0, len(denylist), size)
    offsets = rng.integers(0, np.iinfo(np.int64).max, size) % (lasts[block] - firsts[block] + 1)
    addresses = firsts[block] + offsets
    edges = rng.random(size)
    addresses = np.where(edges < 0.05, firsts[block], addresses)
    return np.where(edges > 0.95, lasts[block], addresses)


def dotted_quads(addresses: np.ndarray) -> pl.Series:
    values = addresses.astype(np.int64)
    octets = {f"o{shift}": (values >> shift) & 255 for shift in (24, 16, 8, 0)}
    return (
        pl.DataFrame(octets)
        .select(pl.concat_str([pl.col(name).cast(pl.String) for name in octets], separator="."))
        .to_series()
        .alias("ip")
    )
