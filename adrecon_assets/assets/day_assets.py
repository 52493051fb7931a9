"""What every daily asset shares: retry and backfill policies, the factories, kinds, and how an
engine step is run and timed. The audit is `audit.py`, the input check `day_inputs.py`."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from adrecon_assets.assets.ranged_run import over_run_days
from adrecon_assets.code_versions import asset_code_version
from adrecon_assets.contracts import LakeInputError
from adrecon_assets.lake import LakeNotFoundError
from adrecon_assets.partitions import daily_partitions
from adrecon_assets.settings import load_settings
from adrecon_assets.transient import retry_transient
from adrecon_assets.warehouse import empty_folders

T = TypeVar("T")
# What a daily asset yields: check results on their own only when an audit stops publication.
DayResult = dg.MaterializeResult | dg.AssetCheckResult

# A step failed by a transient fault (a busy DuckDB file, a store still failing once its
# in-step budget is spent: transient.py) is rerun with backoff; bad input and code bugs are
# raised as non-retryable Failures (ranged_run.over_run_days), since a retry cannot fix them.
ASSET_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)

# A backfill of days is one run over the range (a run costs seconds of fixed start-up, a demo
# day well under one): each asset's step computes the run's days oldest first (see
# `ranged_run.over_run_days`), so every stage of D-1 is done before D needs it. Each day's
# outputs are still audited and swapped atomically (atomic_folder) and recorded per day; the
# serving writes of a step's audited days are one transaction (`ranged_publication`).
DAY_BACKFILL_POLICY = dg.BackfillPolicy.single_run()

SERVING_POOL = "serving_duckdb"

# What every daily asset is, stated once for `day_asset` and `day_window_asset`; each asset's
# code version is a hash of its rules and engine sources (code_versions.py).
DAY_ASSET_POLICIES: dict[str, Any] = {
    "partitions_def": daily_partitions,
    "retry_policy": ASSET_RETRY_POLICY,
    "backfill_policy": DAY_BACKFILL_POLICY,
}


def day_asset(*, code_from: Sequence[str] = (), **asset_arguments: Any) -> Any:
    """`dg.asset` for daily partitions, with the shared policies above; the body computes one
    day (`context.partition_key`) and runs once per day of a ranged run. `code_from`: further
    package files (besides the rules, engines and the body's module) its code version hashes.
    The backfill policy is a beta parameter, used on purpose: its warning is silenced here."""

    def decorate(compute: Callable[..., Any]) -> dg.AssetsDefinition:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            asset = dg.asset(
                code_version=asset_code_version(compute, code_from),
                **DAY_ASSET_POLICIES,
                **asset_arguments,
            )
        return asset(over_run_days(compute))  # type: ignore[no-any-return]

    return decorate


def engine_kinds(extra: set[str]) -> set[str]:
    """The UI's kind tags: the engine chosen for this environment plus what the asset writes."""
    return {load_settings().engine.value, *extra}


def run_engine_step(step: Callable[[], T], outputs: Sequence[Path] = ()) -> tuple[T, float]:
    """Run one engine call (or lake read), timing it. A transient fault in the middle (an
    object store failing while the engine scans it) reruns the call within the contract's budget,
    with `outputs` (the folders it writes) emptied first; bad lake input fails the run without
    retries."""
    started = time.perf_counter()
    try:
        result = retry_transient(step, "engine step", before_retry=lambda: empty_folders(outputs))
    except (LakeInputError, LakeNotFoundError) as error:
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
    code_from: Sequence[str] = (),
) -> Callable[[Callable[..., Iterator[DayResult]]], dg.AssetsDefinition]:
    """A daily asset that reads other days through a partition mapping.

    Built as a `multi_asset` with `can_subset=True` so that its output and check results are
    optional: that is what lets `day_inputs_ready` skip a backfill's extra days. `also` are
    further datasets the same step writes (key, deps, description), so the lineage shows them;
    `code_from` as for `day_asset`.
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
                    code_version=asset_code_version(compute, code_from),
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
