"""Extend mode: bring a simulated lake up to a later last day, as the event persister would.

A demo lake made some days ago ends before yesterday. Extending it writes only the missing days
(lake files, `_SUCCESS`, labels and the online layer's rows), generated exactly as one run from
the lake's first day would have generated them: the days already there are regenerated in
memory for what spills from them into the next day, and never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date

from adrecon_assets.lake import LocalLake
from adrecon_assets.rules import Topic
from adrecon_simulate.config import SimulationConfig
from adrecon_simulate.runner import SimulationSummary, simulate

DAY_FOLDER_PREFIX = "date_partition="


def lake_days(lake: LocalLake) -> list[date]:
    """The days that have an emissions folder, oldest first."""
    topic_folder = lake.folder(Topic.EMISSIONS, date.today()).parent
    if not topic_folder.is_dir():
        return []
    return sorted(
        date.fromisoformat(folder.name.removeprefix(DAY_FOLDER_PREFIX))
        for folder in topic_folder.iterdir()
        if folder.is_dir() and folder.name.startswith(DAY_FOLDER_PREFIX)
    )


def extend(
    config: SimulationConfig,
    progress: Callable[[list[date]], Iterable[date]] = lambda days: days,
) -> SimulationSummary | None:
    """Write the days of `config` the lake lacks; None when it has them all already.

    Generation starts at the lake's first day (or `config.start`, if earlier) with the same
    seed, so the new days equal those of a single run over the whole range.
    """
    existing = lake_days(LocalLake(config.lake))
    wanted = config.days_list
    if set(wanted) <= set(existing):
        return None
    first = min([wanted[0], *existing])
    whole = replace(config, start=first, days=(wanted[-1] - first).days + 1)
    kept = {day for day in existing if day <= wanted[-1]}
    return simulate(whole, progress(whole.days_list), keep_days=kept)
