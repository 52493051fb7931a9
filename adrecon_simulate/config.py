"""What to simulate: sizes, dates, paths and the rates of every injected fault.

Defaults follow public figures for display advertising: click-through rates of 0.3-2 %
depending on the placement, and 5-10 % of clicks invalid (duplicates, bots, data centres).
`ctr_scale` multiplies every placement's click-through rate, for load tests that need more
clicks per emission row than real traffic has (the benchmark's day of 20M emission rows and
~0.8M clicks); fault shares are shares of the clicks, so the mix stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

MAX_PLACEMENTS = 100
MAX_ADS_PER_EMISSION = 6
# Placement click-through rates are drawn log-uniformly from this range (before `ctr_scale`).
MIN_CTR = 0.003
MAX_CTR = 0.02


@dataclass(frozen=True)
class FaultRates:
    """Shares of a day's rows by injected fault: click faults as fractions of all click rows,
    emission copies as fractions of the day's original emission rows."""

    duplicates: float = 0.02
    too_fast: float = 0.015
    denylisted_ip: float = 0.015
    click_flood: float = 0.025
    orphans: float = 0.005
    # Not faults of a click but of its delivery: rows held back into late files.
    late_clicks: float = 0.02
    late_emissions: float = 0.01
    # The online layer's own loss (it never saw these clicks).
    online_lost_clicks: float = 0.02
    # Emission message duplicates (see simulate/emission_copies.py): exact resends, copies with
    # other terms inside the day, and copies re-stamped after midnight into the next day.
    emission_exact_copies: float = 0.005
    emission_conflicting_copies: float = 0.003
    emission_next_day_copies: float = 0.0002

    @property
    def emission_copies_total(self) -> float:
        return (
            self.emission_exact_copies
            + self.emission_conflicting_copies
            + self.emission_next_day_copies
        )

    @property
    def invalid_total(self) -> float:
        return (
            self.duplicates + self.too_fast + self.denylisted_ip + self.click_flood + self.orphans
        )

    def validate(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value < 0.5:
                raise ValueError(f"fault rate {name} must be in [0, 0.5), got {value}")
        if self.invalid_total >= 0.5:
            raise ValueError(f"invalid click rates sum to {self.invalid_total:.3f}; keep it < 0.5")


@dataclass(frozen=True)
class SimulationConfig:
    """One simulator run. `emissions_per_day` counts emission rows (ads shown), as in the lake."""

    lake: Path
    serving_db: Path | None
    start: date
    days: int
    emissions_per_day: int
    seed: int = 0
    labels: Path | None = None
    files_per_day: int = 4
    offers: int = 2_000
    placements: int = 60
    zipf_exponent: float = 1.1
    rates: FaultRates = field(default_factory=FaultRates)
    # Multiplies every placement's CTR (1.0: realistic traffic); see the module docstring.
    ctr_scale: float = 1.0
    # The online rows go to this PostgreSQL serving store instead of the DuckDB `serving_db`.
    serving_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lake", Path(self.lake))
        if self.serving_db is not None:
            object.__setattr__(self, "serving_db", Path(self.serving_db))
        if self.labels is not None:
            object.__setattr__(self, "labels", Path(self.labels))
        self.validate()

    @property
    def labels_root(self) -> Path:
        """Ground truth lives beside the lake, never in it: the pipeline must not see it."""
        return self.labels if self.labels is not None else self.lake.parent / "ground_truth"

    @property
    def days_list(self) -> list[date]:
        return [date.fromordinal(self.start.toordinal() + offset) for offset in range(self.days)]

    def validate(self) -> None:
        if self.days < 1:
            raise ValueError(f"--days must be at least 1, got {self.days}")
        if self.emissions_per_day < 1:
            raise ValueError(
                f"--emissions-per-day must be at least 1, got {self.emissions_per_day}"
            )
        if self.files_per_day < 1:
            raise ValueError(f"--files-per-day must be at least 1, got {self.files_per_day}")
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed}")
        if not 1 <= self.placements <= MAX_PLACEMENTS:
            raise ValueError(f"placements must be in 1..{MAX_PLACEMENTS}, got {self.placements}")
        if self.offers < MAX_ADS_PER_EMISSION:
            raise ValueError(f"offers must be at least {MAX_ADS_PER_EMISSION}, got {self.offers}")
        if not 0 < self.ctr_scale <= 1 / MAX_CTR:
            raise ValueError(
                f"--ctr-scale must be in (0, {1 / MAX_CTR:g}] (a CTR of {MAX_CTR:.0%} times it "
                f"must stay a probability), got {self.ctr_scale}"
            )
        if self.zipf_exponent <= 0:
            raise ValueError(f"zipf_exponent must be positive, got {self.zipf_exponent}")
        self.rates.validate()
        lake = self.lake.resolve()
        labels = self.labels_root.resolve()
        if labels == lake or lake in labels.parents:
            raise ValueError(
                f"--labels {self.labels_root} lies inside the lake {self.lake}; ground truth "
                "must stay outside it so the pipeline never reads it"
            )
        if self.serving_db is not None and self.serving_url:
            raise ValueError("give --serving-db or --serving-url, not both")
        if self.serving_db is not None and lake in self.serving_db.resolve().parents:
            raise ValueError(f"--serving-db {self.serving_db} must not lie inside the lake")
