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
    # One result per asset of the step (a multi-asset step materializes several); none and no
    # error: the body skipped the day.
    results: tuple[dg.MaterializeResult, ...] = ()
    error: Exception | None = None


def result_key(context: dg.AssetExecutionContext, result: dg.MaterializeResult) -> dg.AssetKey:
    """The asset a result is of: its own key, or the step's only asset."""
    if result.asset_key is not None:
        return dg.AssetKey.from_coercible(result.asset_key)
    return context.assets_def.key


def body_events(returned: Any) -> list[Any]:
    """What a body produced: it returns one result, yields some, or returns nothing."""
    if returned is None:
        return []
    if isinstance(returned, Iterator):
        return list(returned)
    return [returned]


def check_evaluation(
    context: dg.AssetExecutionContext,
    result: dg.AssetCheckResult,
    day: str,
    default_key: dg.AssetKey,
) -> dg.AssetCheckEvaluation:
    """A check result of one day, as the evaluation Dagster records for a one-day run."""
    asset_key = dg.AssetKey.from_coercible(result.asset_key) if result.asset_key else default_key
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
    asset = ", ".join(key.to_user_string() for key in sorted(context.selected_asset_keys))
    outcomes: list[DayOutcome] = []
    for day in context.partition_keys:
        events: list[Any] = []
        try:
            returned = compute_day(DayContext(context, day))
            # Appended one by one: a body that fails its audit yields its check results first.
            for event in returned if isinstance(returned, Iterator) else body_events(returned):
                events.append(event)
        except Exception as error:
            context.log.error(f"{asset} {day} failed: {error}")
            outcomes.append(DayOutcome(day, error=error))
            yield from (
                check_evaluation(context, event, day, context.assets_def.key)
                for event in events
                if isinstance(event, dg.AssetCheckResult)
            )
            continue
        results = tuple(event for event in events if isinstance(event, dg.MaterializeResult))
        yield from (event for event in events if not isinstance(event, dg.MaterializeResult))
        outcomes.append(DayOutcome(day, results=results))

    done = [outcome for outcome in outcomes if outcome.results]
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    evaluations = [
        check_evaluation(context, check_result, outcome.day, result_key(context, result))
        for outcome in done
        for result in outcome.results
        for check_result in result.check_results or []
    ]
    if len(done) == len(outcomes):
        # Every day materialized: one output per asset for the range, with each day's own
        # metadata.
        for outcome in done:
            for result in outcome.results:
                if result.metadata:
                    context.add_asset_metadata(
                        result.metadata,
                        asset_key=result_key(context, result),
                        partition_key=outcome.day,
                    )
        for key in sorted({result_key(context, r) for o in done for r in o.results}):
            yield dg.MaterializeResult(asset_key=key)
        # A check's output (what Dagster would derive from an AssetCheckResult) stands for all
        # the days; the days' evaluations themselves are the records below.
        for output_name in context.assets_def.check_specs_by_output_name:
            yield dg.Output(None, output_name=output_name)
    else:
        # Some day was skipped or failed: record the days that were done, one by one.
        for outcome in done:
            for result in outcome.results:
                yield dg.AssetMaterialization(
                    asset_key=result_key(context, result),
                    partition=outcome.day,
                    metadata=result.metadata,
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
            returned = compute(context, *args, **kwargs)
            # A generator is passed through as it runs, so what it yielded before raising (the
            # check results of a failed audit) is recorded.
            yield from returned if isinstance(returned, Iterator) else body_events(returned)
            return
        yield from compute_days(context, lambda day: compute(day, *args, **kwargs))

    return each_day
