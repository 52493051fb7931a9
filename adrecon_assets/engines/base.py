"""The engine interface: every asset's computation, independent of Polars or Spark.

Engines read and write warehouse folders (see `warehouse.py`) and return small reports that
assets put into metadata. The rules themselves are described in `rules.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

from adrecon_assets.lake import LakePartition
from adrecon_assets.rules import IpRange


@dataclass(frozen=True)
class StageReport:
    rows_in: int
    rows_out: int
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined_rows(self) -> int:
        return sum(self.quarantined.values())


@dataclass(frozen=True)
class JoinReport:
    clicks_in: int
    clicks_deduplicated: int
    emissions_in: int
    emissions_deduplicated: int
    emissions_of_day: int
    matched_clicks: int
    matched_previous_day: int

    @property
    def duplicate_clicks(self) -> int:
        return self.clicks_in - self.clicks_deduplicated

    @property
    def duplicate_emissions(self) -> int:
        return self.emissions_in - self.emissions_deduplicated

    @property
    def orphan_clicks(self) -> int:
        return self.clicks_deduplicated - self.matched_clicks


@dataclass(frozen=True)
class FlagReport:
    clicks: int
    valid_clicks: int
    reasons: dict[str, int]


@dataclass(frozen=True)
class AggregateReport:
    rows: int
    emissions: int
    clicks: int
    cost_micros: int
    fraud_clicks: int
    refund_micros: int


@dataclass(frozen=True)
class AnomalyReport:
    placements: int
    anomalies: int
    history_days: int


@dataclass(frozen=True)
class EmissionSource:
    """Emissions of one day, as a written folder (warehouse) of validated rows."""

    day: date
    folder: Path


class Engine(Protocol):
    """One implementation per engine; all of them must give identical outputs."""

    name: str

    def stage_topic(
        self, partition: LakePartition, out_folder: Path, quarantine_folder: Path
    ) -> StageReport:
        """Validate the lake partition; write valid typed rows and quarantined rows apart."""
        ...

    def join_clicks(
        self,
        day: date,
        clicks_folder: Path,
        emissions: list[EmissionSource],
        joined_folder: Path,
        emission_counts_folder: Path,
    ) -> JoinReport:
        """Rules 1-2: deduplicate, join clicks of `day` to emissions of D-1 and D, and count
        the deduplicated emission rows of `day` per (offer_id, placement)."""
        ...

    def flag_fraud(
        self, day: date, joined_folder: Path, denylist: list[IpRange], out_folder: Path
    ) -> FlagReport:
        """Rule 3: one fraud_reason (or null) per deduplicated click."""
        ...

    def aggregate(
        self, day: date, flagged_folder: Path, emission_counts_folder: Path, out_folder: Path
    ) -> AggregateReport:
        """Rule 4: the serving rows of `day`, ordered by (offer_id, placement)."""
        ...

    def placement_anomalies(
        self, day: date, statistics_folders: dict[date, Path], out_folder: Path
    ) -> AnomalyReport:
        """Valid clicks per placement of `day` against the trailing days' baseline.

        `statistics_folders` holds `day` and each trailing day that was reconciled."""
        ...
