"""Ranged runs: one asset step computes every day of its run, oldest first, recorded per day.

A backfill under `BackfillPolicy.single_run()` is one run over a range of days, and each asset's
step covers the whole range. The asset bodies stay one-day functions that read
`context.partition_key`: `over_run_days` calls the body once per day with a `DayContext` whose
partition key is that day (`day_context.py`), and records each day as a one-day run would:

- the day's metadata on that day's materialization (`add_asset_metadata(partition_key=day)`),
- the day's check results as evaluations of that day (`AssetCheckEvaluation(partition=day)`).

A failing day (an error, or a failed blocking check) does not stop the other days of the step:
they are computed and recorded, then the step fails naming each failed day and why, so no asset
below is computed from a broken day (Dagster runs a step for all of its days or for none).

Serving writes of a ranged step are published together (`ranged_publication.py`): each day's
audited writes are queued, and when every day of the step is done they are published in ONE
serving transaction per store, before any day is recorded as materialized.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from adrecon_assets.assets.day_context import DayContext, Publication
from adrecon_assets.assets.ranged_publication import publish_queued


@dataclass
class DayOutcome:
    day: str
    # Metadata of each asset the body materialized that day (none: the day was skipped).
    materialized: dict[dg.AssetKey, Any] = field(default_factory=dict)
    checks: list[dg.AssetCheckResult] = field(default_factory=list)
    error: Exception | None = None
    # Serving writes of the day, audited and queued (published only if the day succeeded).
    publications: list[Publication] = field(default_factory=list)


def body_events(returned: Any) -> Iterator[Any]:
    """What a body produced: it returns one result, yields some, or returns nothing."""
    if isinstance(returned, Iterator):
        yield from returned
    elif returned is not None:
        yield returned


def check_evaluation(
    context: dg.AssetExecutionContext, result: dg.AssetCheckResult, day: str
) -> dg.AssetCheckEvaluation:
    """A check result of one day, as the evaluation Dagster records for a one-day run."""
    spec = next(
        spec
        for spec in context.assets_def.check_specs
        if result.check_name in (None, spec.name) and result.asset_key in (None, spec.asset_key)
    )
    return dg.AssetCheckEvaluation(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
        blocking=spec.blocking,
        partition=day,
    )


def blocks(evaluation: dg.AssetCheckEvaluation) -> bool:
    return (
        not evaluation.passed
        and evaluation.severity == dg.AssetCheckSeverity.ERROR
        and bool(evaluation.blocking)
    )


def retryable(error: Exception) -> bool:
    return not (isinstance(error, dg.Failure) and not error.allow_retries)


def compute_day(
    context: dg.AssetExecutionContext, day: str, compute_day: Callable[[DayContext], Any]
) -> tuple[DayOutcome, list[Any]]:
    """One day of the body: what it recorded, and other events to pass on. A failing day keeps
    the check results it reported before failing (write-audit-publish reports them first)."""
    outcome, passed_on = DayOutcome(day), []
    try:
        for event in body_events(compute_day(DayContext(context, day, outcome.publications))):
            if isinstance(event, dg.MaterializeResult):
                key = event.asset_key or context.assets_def.key
                outcome.materialized[dg.AssetKey.from_coercible(key)] = event.metadata or {}
                outcome.checks.extend(event.check_results or [])
            elif isinstance(event, dg.AssetCheckResult):
                outcome.checks.append(event)
            else:
                passed_on.append(event)
    except Exception as error:
        context.log.error(f"{context.assets_def.node_def.name} {day} failed: {error}")
        outcome.error = error
    return outcome, passed_on


def compute_days(
    context: dg.AssetExecutionContext, compute_day_body: Callable[[DayContext], Any]
) -> Iterator[Any]:
    """Run the one-day body for each day of the run, yielding Dagster's per-day records."""
    step = context.assets_def.node_def.name
    outcomes: list[DayOutcome] = []
    for day in context.partition_keys:
        outcome, passed_on = compute_day(context, day, compute_day_body)
        yield from passed_on
        outcomes.append(outcome)
    succeeded = [outcome for outcome in outcomes if outcome.error is None]
    publish_queued(context, [queued for outcome in succeeded for queued in outcome.publications])

    keys = set(context.selected_asset_keys)
    if all(outcome.error is None and set(outcome.materialized) == keys for outcome in outcomes):
        # Every day materialized: one output per asset for the range, each day's own metadata.
        for outcome in outcomes:
            for key, metadata in outcome.materialized.items():
                if metadata:
                    context.add_asset_metadata(metadata, asset_key=key, partition_key=outcome.day)
        for key in sorted(keys, key=lambda key: key.to_user_string()):
            yield dg.MaterializeResult(asset_key=key)
        # A check's output (what Dagster would derive from an AssetCheckResult) stands for all
        # the days; the days' evaluations themselves are the records below.
        for output_name in context.assets_def.check_specs_by_output_name:
            yield dg.Output(None, output_name=output_name)
    else:
        # Some day was skipped or failed: record what each day did, one by one.
        for outcome in outcomes:
            for key, metadata in outcome.materialized.items():
                yield dg.AssetMaterialization(
                    asset_key=key, partition=outcome.day, metadata=metadata
                )
    evaluations = [
        check_evaluation(context, result, outcome.day)
        for outcome in outcomes
        for result in outcome.checks
    ]
    yield from evaluations

    blocked: dict[str, list[str]] = {}
    for evaluation in filter(blocks, evaluations):
        blocked.setdefault(evaluation.partition or "", []).append(evaluation.check_name)
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    reasons = [f"{outcome.day}: {outcome.error}" for outcome in failed] + [
        f"{day}: blocking check {', '.join(checks)} failed"
        for day, checks in blocked.items()
        if day not in {outcome.day for outcome in failed}
    ]
    if reasons:
        raise dg.Failure(
            description=(
                f"{step}: {len(reasons)} of {len(outcomes)} days failed ("
                + "; ".join(reasons)
                + f"); the other {len(outcomes) - len(reasons)} days of this step are recorded"
            ),
            allow_retries=any(retryable(outcome.error) for outcome in failed if outcome.error),
        )


def over_run_days(compute: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Wrap a one-day asset body so that a ranged run computes and records each of its days;
    a one-day run calls the body exactly as before, with the run's own context."""

    @functools.wraps(compute)
    def each_day(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if len(context.partition_keys) == 1:
            yield from body_events(compute(context, *args, **kwargs))
            return
        yield from compute_days(context, lambda day: compute(day, *args, **kwargs))

    return each_day
