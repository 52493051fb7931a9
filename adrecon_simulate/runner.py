"""Simulating days: traffic of a day, its faults, and writing lake, labels and online stats."""

from __future__ import annotations

import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from adrecon_assets import serving
from adrecon_assets.lake import LocalLake
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.rules import JOIN_KEY, Topic
from adrecon_simulate import emission_copies, faults
from adrecon_simulate.catalogue import Catalogue, build_catalogue
from adrecon_simulate.clicks import ClickDraft
from adrecon_simulate.config import SimulationConfig
from adrecon_simulate.emission_copies import COPY_KIND_COLUMN, EmissionCopyCounts
from adrecon_simulate.labels import EMISSION_COPY_KINDS, FAULT_KINDS, NO_FAULT, ORIGINAL
from adrecon_simulate.online import online_statistics, publish_online_statistics
from adrecon_simulate.traffic import (
    MICROS_PER_DAY,
    EmissionRows,
    day_start_micros,
    generate_emissions,
    valid_click_rows,
)
from adrecon_simulate.writer import (
    label_frame,
    write_denylist,
    write_labels,
    write_topic_day,
)

# Rng streams of a day: separate seeds keep e.g. the online loss independent of file writing,
# and the clicks of a seed the same whatever the emission copy rates.
TRAFFIC_STREAM, ONLINE_STREAM, EMISSION_COPY_STREAM = 1, 2, 3


@dataclass(frozen=True)
class DayTraffic:
    """One simulated day. `clicks` and `emissions` carry truth columns besides the contract's;
    `spill` holds clicks on this day's ads that happen after midnight and `emission_spill` the
    copies of this day's emission rows re-stamped after it (both belong to the next day's
    folder)."""

    day: date
    emissions: pl.DataFrame
    clicks: pl.DataFrame
    spill: pl.DataFrame
    emission_spill: pl.DataFrame


def day_rng(config: SimulationConfig, day: date, stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, day.toordinal(), stream])


def generate_day(
    config: SimulationConfig,
    day: date,
    carried_clicks: pl.DataFrame | None = None,
    catalogue: Catalogue | None = None,
    carried_emissions: pl.DataFrame | None = None,
) -> DayTraffic:
    """Emissions and clicks of `day`; `carried_clicks` and `carried_emissions` are the previous
    day's `spill` and `emission_spill`."""
    catalogue = catalogue or build_catalogue(config)
    rng = day_rng(config, day, TRAFFIC_STREAM)
    day_start = day_start_micros(day)
    emissions = generate_emissions(rng, catalogue, day, config.emissions_per_day)
    valid = faults.valid_clicks(rng, emissions, valid_click_rows(rng, catalogue, emissions))
    counts = faults.FaultCounts.for_valid_clicks(len(valid), config.rates)
    draft = ClickDraft.concat(
        [
            valid,
            faults.too_fast_clicks(rng, emissions, counts.too_fast, day_start),
            faults.data_centre_clicks(rng, catalogue, emissions, counts.denylisted_ip),
            faults.bot_bursts(rng, emissions, counts.click_flood, day_start),
        ]
    )
    # Shuffled before numbering, so click ids say nothing about how a click was made.
    draft = draft.take(rng.permutation(len(draft)))
    orphans = faults.orphan_clicks(rng, catalogue, emissions, counts.orphans, day_start)
    generated = pl.concat(
        [draft.frame(catalogue, day, 0), orphans.frame(catalogue, day, len(draft))]
    )
    day_end = day_start + MICROS_PER_DAY
    emission_rows, generated, emission_spill = resend_emissions(
        config, catalogue, emissions, generated, carried_emissions
    )
    next_day = pl.col("clicked_at").dt.epoch("us") >= day_end
    todays = [generated.filter(~next_day)]
    if carried_clicks is not None:
        todays.insert(0, carried_clicks)
    clicks = pl.concat(todays)
    copies = faults.duplicate_copies(rng, clicks, counts.duplicates, day_end)
    clicks = faults.mark_late(rng, pl.concat([clicks, copies]), config.rates.late_clicks)
    return DayTraffic(
        day=day,
        emissions=faults.mark_late(rng, emission_rows, config.rates.late_emissions),
        clicks=clicks.sort("clicked_at", "click_id"),
        spill=generated.filter(next_day),
        emission_spill=emission_spill,
    )


def resend_emissions(
    config: SimulationConfig,
    catalogue: Catalogue,
    emissions: EmissionRows,
    clicks: pl.DataFrame,
    carried_emissions: pl.DataFrame | None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The day's emission rows with their resent copies and the previous day's next-day copies;
    `clicks` (all generated on the day's ads, after-midnight ones included) billed at rule 1's
    winning terms; and the copies this day resends after midnight."""
    rng = day_rng(config, emissions.day, EMISSION_COPY_STREAM)
    day_end = day_start_micros(emissions.day) + MICROS_PER_DAY
    originals = emission_copies.with_arrival(emissions.key_frame(catalogue))
    counts = EmissionCopyCounts.for_rows(emissions.rows, config.rates)
    same_day = emission_copies.same_day_copies(rng, catalogue, originals, counts, day_end)
    billed = emission_copies.bill_winning_terms(
        clicks, emission_copies.winning_terms(catalogue, originals, same_day)
    )
    after_midnight = billed.filter(pl.col("clicked_at").dt.epoch("us") >= day_end)
    next_day = emission_copies.next_day_copies(
        rng, catalogue, originals, after_midnight.select(JOIN_KEY), counts.next_day, day_end
    )
    resent = [same_day] if carried_emissions is None else [same_day, carried_emissions]
    return emission_copies.day_rows(originals, resent, catalogue), billed, next_day


def day_summary(traffic: DayTraffic, late_files: int, online_rows: int) -> dict[str, object]:
    clicks = traffic.clicks
    originals = clicks.filter(~pl.col("is_copy"))
    faults_by_kind = dict(originals.group_by("fault").len().iter_rows())
    expected = dict(originals.group_by("expected_reason").len().iter_rows())
    copies = dict(traffic.emissions.group_by(COPY_KIND_COLUMN).len().iter_rows())
    return {
        "day": traffic.day.isoformat(),
        "emission_rows": traffic.emissions.height,
        # Copies in this day's folder: `next_day` ones are re-stamped copies of the day before's.
        "emission_copy_rows": {kind: int(copies.get(kind, 0)) for kind in EMISSION_COPY_KINDS},
        "next_day_emission_copy_rows": traffic.emission_spill.height,
        "click_rows": clicks.height,
        "duplicate_rows": clicks.height - originals.height,
        "clicks_on_previous_day_emissions": int(
            originals.filter(
                ~pl.col("emission_id").str.starts_with(f"e{traffic.day:%Y%m%d}-")
            ).height
        ),
        "late_click_rows": int(clicks["late"].sum()),
        "late_emission_rows": int(traffic.emissions["late"].sum()),
        "late_files": late_files,
        "faults": {kind: int(faults_by_kind.get(kind, 0)) for kind in FAULT_KINDS},
        "expected_reasons": {kind: int(expected.get(kind, 0)) for kind in FAULT_KINDS},
        "online_rows": online_rows,
    }


@dataclass(frozen=True)
class SimulationSummary:
    first_day: date
    last_day: date
    emission_rows: int
    emission_copy_rows: int
    click_rows: int
    invalid_click_rows: int
    duplicate_rows: int
    late_files: int
    online_rows: int
    seconds: float
    lake: Path
    labels: Path

    def line(self) -> str:
        clicks = max(self.click_rows, 1)
        return (
            f"simulated {self.first_day}..{self.last_day} in {self.seconds:.1f}s: "
            f"{self.emission_rows:,} emission rows "
            f"({self.emission_copy_rows / max(self.emission_rows, 1):.1%} duplicates), "
            f"{self.click_rows:,} click rows "
            f"({self.invalid_click_rows / clicks:.1%} invalid, "
            f"{self.duplicate_rows / clicks:.1%} duplicates), {self.late_files} late files, "
            f"{self.online_rows:,} online rows; lake {self.lake}, labels {self.labels}"
        )


def online_store(config: SimulationConfig) -> serving.ServingStore | None:
    """Where the online layer writes: the PostgreSQL store at `serving_url`, the DuckDB file
    `serving_db`, or nowhere. The store is chosen by the product's resource, as in a run."""
    if config.serving_url:
        return ServingResource(url=config.serving_url).get_store()
    if config.serving_db is not None:
        return ServingResource(database=str(config.serving_db)).get_store()
    return None


def simulate(
    config: SimulationConfig,
    progress: Iterable[date] | None = None,
    keep_days: AbstractSet[date] = frozenset(),
) -> SimulationSummary:
    """Write the whole run. `progress` wraps the days (e.g. a tqdm bar) when given.

    Days in `keep_days` are generated but not written (lake, labels, online rows): what spills
    from them into the next day (clicks after midnight, re-stamped emissions) is generated
    exactly as in one run, so extending a lake gives the days one run would have written.
    """
    began = time.perf_counter()
    lake = LocalLake(config.lake)
    if not lake.denylist_path.exists():
        write_denylist(lake)
    catalogue = build_catalogue(config)
    carried_clicks: pl.DataFrame | None = None
    carried_emissions: pl.DataFrame | None = None
    totals = dict.fromkeys(
        ("emissions", "emission_copies", "clicks", "invalid", "duplicates", "late", "online"), 0
    )
    store = online_store(config)
    for day in progress if progress is not None else config.days_list:
        traffic = generate_day(config, day, carried_clicks, catalogue, carried_emissions)
        carried_clicks, carried_emissions = traffic.spill, traffic.emission_spill
        if day in keep_days:
            continue
        late_files = write_topic_day(
            lake, Topic.EMISSIONS, day, traffic.emissions, config.files_per_day
        ) + write_topic_day(lake, Topic.CLICKS, day, traffic.clicks, config.files_per_day)
        online_rows = 0
        if store is not None:
            rows = online_statistics(
                day_rng(config, day, ONLINE_STREAM),
                catalogue,
                day,
                traffic.emissions,
                traffic.clicks,
                config.rates.online_lost_clicks,
            )
            publish_online_statistics(store, rows)
            online_rows = rows.num_rows
        write_labels(
            config.labels_root,
            day,
            label_frame(traffic.clicks),
            day_summary(traffic, late_files, online_rows),
        )
        clicks = traffic.clicks
        totals["emissions"] += traffic.emissions.height
        totals["emission_copies"] += int((traffic.emissions[COPY_KIND_COLUMN] != ORIGINAL).sum())
        totals["clicks"] += clicks.height
        totals["invalid"] += clicks.filter(pl.col("is_copy") | (pl.col("fault") != NO_FAULT)).height
        totals["duplicates"] += int(clicks["is_copy"].sum())
        totals["late"] += late_files
        totals["online"] += online_rows
    written = [day for day in config.days_list if day not in keep_days] or config.days_list
    return SimulationSummary(
        first_day=written[0],
        last_day=written[-1],
        emission_rows=totals["emissions"],
        emission_copy_rows=totals["emission_copies"],
        click_rows=totals["clicks"],
        invalid_click_rows=totals["invalid"],
        duplicate_rows=totals["duplicates"],
        late_files=totals["late"],
        online_rows=totals["online"],
        seconds=time.perf_counter() - began,
        lake=config.lake,
        labels=config.labels_root,
    )
