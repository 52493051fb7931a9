"""Ranged runs: one asset step computes every day of its run, oldest first, recorded per day.

A backfill under `BackfillPolicy.single_run()` is one run over a range of days, and each asset's
step covers the whole range. The asset bodies stay one-day functions that read
`context.partition_key`: `over_run_days` calls the body once per day with a context whose
partition key is that day, and records each day as a one-day run would:

- the day's metadata on that day's materialization (`add_asset_metadata(partition_key=day)`),
- the day's check results as evaluations of that day (`AssetCheckEvaluation(partition=day)`).

A failing day (an error, or a failed blocking check) does not stop the other days of the step:
they are computed and recorded, then the step fails naming each failed day and why, so no asset
below is computed from a broken day (Dagster runs a step for all of its days or for none).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg


class DayContext:
    """The run's context seen from one day of a ranged run: its partition is that day."""

    def __init__(self, context: dg.AssetExecutionContext, partition_key: str) -> None:
        self._context = context
        self._partition_key = partition_key

    @property
    def partition_key(self) -> str:
        return self._partition_key

    @property
    def partition_keys(self) -> Sequence[str]:
        return [self._partition_key]

    @property
    def partition_key_range(self) -> dg.PartitionKeyRange:
        return dg.PartitionKeyRange(self._partition_key, self._partition_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


@dataclass(frozen=True)
class DayOutcome:
    day: str
    result: dg.MaterializeResult | None = None  # None and no error: the body skipped the day
    error: Exception | None = None


def body_events(returned: Any) -> list[Any]:
    """What a body produced: it returns one result, yields some, or returns nothing."""
    if returned is None:
        return []
    if isinstance(returned, Iterator):
        return list(returned)
    return [returned]


def check_evaluation(
    context: dg.AssetExecutionContext, result: dg.AssetCheckResult, day: str
) -> dg.AssetCheckEvaluation:
    """A check result of one day, as the evaluation Dagster records for a one-day run."""
    asset_key = result.asset_key or context.assets_def.key
    specs = [spec for spec in context.assets_def.check_specs if spec.asset_key == asset_key]
    spec = next(spec for spec in specs if result.check_name in (None, spec.name))
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
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


def compute_days(
    context: dg.AssetExecutionContext, compute_day: Callable[[DayContext], Any]
) -> Iterator[Any]:
    """Run the one-day body for each day of the run, yielding Dagster's per-day records."""
    asset = context.assets_def.key.to_user_string()
    outcomes: list[DayOutcome] = []
    for day in context.partition_keys:
        try:
            events = body_events(compute_day(DayContext(context, day)))
        except Exception as error:
            context.log.error(f"{asset} {day} failed: {error}")
            outcomes.append(DayOutcome(day, error=error))
            continue
        results = [event for event in events if isinstance(event, dg.MaterializeResult)]
        yield from (event for event in events if not isinstance(event, dg.MaterializeResult))
        outcomes.append(DayOutcome(day, result=results[0] if results else None))

    done = [outcome for outcome in outcomes if outcome.result is not None]
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    evaluations = [
        check_evaluation(context, check_result, outcome.day)
        for outcome in done
        if outcome.result is not None
        for check_result in outcome.result.check_results or []
    ]
    if len(done) == len(outcomes):
        # Every day materialized: one output for the range, with each day's own metadata.
        for outcome in done:
            if outcome.result is not None and outcome.result.metadata:
                context.add_asset_metadata(outcome.result.metadata, partition_key=outcome.day)
        yield dg.MaterializeResult()
        # A check's output (what Dagster would derive from an AssetCheckResult) stands for all
        # the days; the days' evaluations themselves are the records below.
        for output_name in context.assets_def.check_specs_by_output_name:
            yield dg.Output(None, output_name=output_name)
    else:
        # Some day was skipped or failed: record the days that were done, one by one.
        for outcome in done:
            if outcome.result is not None:
                yield dg.AssetMaterialization(
                    asset_key=context.assets_def.key,
                    partition=outcome.day,
                    metadata=outcome.result.metadata,
                )
    yield from evaluations

    blocked: dict[str, list[str]] = {}
    for evaluation in filter(blocks, evaluations):
        blocked.setdefault(evaluation.partition or "", []).append(evaluation.check_name)
    reasons = [f"{outcome.day}: {outcome.error}" for outcome in failed] + [
        f"{day}: blocking check {', '.join(checks)} failed" for day, checks in blocked.items()
    ]
    if reasons:
        raise dg.Failure(
            description=(
                f"{asset}: {len(reasons)} of {len(outcomes)} days failed ("
                + "; ".join(reasons)
                + f"); the other {len(outcomes) - len(reasons)} days of this step are recorded"
            ),
            allow_retries=any(retryable(outcome.error) for outcome in failed if outcome.error),
        )


def over_run_days(compute: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Wrap a one-day asset body so that a ranged run computes and records each of its days;
    a one-day run calls the body exactly as before."""

    @functools.wraps(compute)
    def each_day(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if len(context.partition_keys) == 1:
            yield from body_events(compute(context, *args, **kwargs))
            return
        yield from compute_days(context, lambda day: compute(day, *args, **kwargs))

    return each_day
