"""What a one-day asset body sees of its run: the day it computes, the run's days, and (in a
ranged run) the queue its audited serving writes join."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from adrecon_assets.partitions import parse_day
from adrecon_assets.serving.store import DayReplace, ServingStore
from adrecon_assets.warehouse import StagedVersion


@dataclass(frozen=True)
class Publication:
    """An audited day's serving write, queued until the step's days are done, with the day's
    staged warehouse version swapped in only once the serving write committed."""

    store: ServingStore
    replace: DayReplace
    staged: StagedVersion | None = None


@dataclass(frozen=True)
class DayContext:
    """One day of a ranged run, as the one-day bodies read a context: `partition_key` is that
    day; `log`, `run`, `asset_key` and `selected_asset_keys` are the run's. Nothing else is
    offered, so a body that needs more says so here."""

    run_context: dg.AssetExecutionContext
    partition_key: str
    # Where `ranged_publication.publish_day` queues this day's audited serving writes.
    publications: list[Publication] = field(default_factory=list)

    @property
    def log(self) -> dg.DagsterLogManager:
        return self.run_context.log

    @property
    def run(self) -> dg.DagsterRun:
        return self.run_context.run

    @property
    def asset_key(self) -> dg.AssetKey:
        return self.run_context.asset_key

    @property
    def selected_asset_keys(self) -> Set[dg.AssetKey]:
        return self.run_context.selected_asset_keys


# A body is called with the run's own context in a one-day run, with a DayContext in a ranged
# one; the helpers it calls accept either.
AnyDayContext = dg.AssetExecutionContext | DayContext


def days_of_run(context: AnyDayContext) -> list[date]:
    """Every day of the run, oldest first: the whole range of a ranged run, seen from any day."""
    run = context.run_context if isinstance(context, DayContext) else context
    return [parse_day(key) for key in run.partition_keys]
