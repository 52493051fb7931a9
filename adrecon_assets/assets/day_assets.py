"""What every daily asset shares: retry and backfill policies, the factories, kinds, and how an
engine step is run and timed. The audit is `audit.py`, the input check `day_inputs.py`."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import dagster as dg

from adrecon_assets.assets.ranged_run import over_run_days
from adrecon_assets.contracts import LakeInputError
from adrecon_assets.partitions import daily_partitions
from adrecon_assets.settings import load_settings

T = TypeVar("T")
# What a daily asset yields: check results on their own only when an audit stops publication.
DayResult = dg.MaterializeResult | dg.AssetCheckResult

# Transient I/O (a busy DuckDB file, a flaky object store) is retried with backoff; bad input
# is raised as a non-retryable Failure, since retrying cannot fix a file.
ASSET_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)

# A backfill of days is one run over the range (a run costs seconds of fixed start-up, a demo
# day well under one): each asset's step computes the run's days oldest first (see
# `ranged_run.over_run_days`), so every stage of D-1 is done before D needs it. Each day's
# outputs are still audited and swapped atomically (atomic_folder) and recorded per day; the
# serving writes of a step's audited days are one transaction (`ranged_publication`).
DAY_BACKFILL_POLICY = dg.BackfillPolicy.single_run()

SERVING_POOL = "serving_duckdb"

# What every daily asset is, stated once for `day_asset` and `day_window_asset`.
CODE_VERSION = "1"
DAY_ASSET_POLICIES: dict[str, Any] = {
    "partitions_def": daily_partitions,
    "retry_policy": ASSET_RETRY_POLICY,
    "backfill_policy": DAY_BACKFILL_POLICY,
}


def day_asset(**asset_arguments: Any) -> Any:
    """`dg.asset` for daily partitions, with the shared policies above; the body computes one
    day (`context.partition_key`) and runs once per day of a ranged run. The backfill policy is
    a beta parameter, used on purpose: its warning is silenced here only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        asset = dg.asset(code_version=CODE_VERSION, **DAY_ASSET_POLICIES, **asset_arguments)
    return lambda compute: asset(over_run_days(compute))


def engine_kinds(extra: set[str]) -> set[str]:
    """The UI's kind tags: the engine chosen for this environment plus what the asset writes."""
    return {load_settings().engine.value, *extra}


def run_engine_step(step: Callable[[], T]) -> tuple[T, float]:
    """Run one engine call, timing it; bad lake input fails the run without retries."""
    started = time.perf_counter()
    try:
        result = step()
    except LakeInputError as error:
        raise dg.Failure(description=f"bad lake input: {error}", allow_retries=False) from error
    return result, time.perf_counter() - started


OWNERS = ["team:ads-data-platform"]


def day_window_asset(
    *,
    name: str,
    deps: Sequence[dg.AssetDep | dg.AssetsDefinition],
    check_specs: Sequence[dg.AssetCheckSpec],
    description: str,
    group_name: str,
    kinds: set[str],
    owners: Sequence[str] = OWNERS,
    pool: str | None = None,
    also: Sequence[dg.AssetSpec] = (),
) -> Callable[[Callable[..., Iterator[DayResult]]], dg.AssetsDefinition]:
    """A daily asset that reads other days through a partition mapping.

    Built as a `multi_asset` with `can_subset=True` so that its output and check results are
    optional: that is what lets `day_inputs_ready` skip a backfill's extra days. `also` are
    further datasets the same step writes (key, deps, description), so the lineage shows them.
    """
    main = dg.AssetSpec(name, deps=deps, description=description)

    def decorate(
        compute: Callable[..., Iterator[DayResult]],
    ) -> dg.AssetsDefinition:
        return dg.multi_asset(
            name=name,
            specs=[
                spec.replace_attributes(
                    group_name=group_name,
                    kinds=kinds,
                    owners=owners,
                    code_version=CODE_VERSION,
                    skippable=True,
                )
                for spec in (main, *also)
            ],
            check_specs=check_specs,
            can_subset=True,
            pool=pool,
            **DAY_ASSET_POLICIES,
        )(over_run_days(compute))

    return decorate
