"""Ranged runs: one asset step computes every day of its run, oldest first, recorded per day.

A backfill under `BackfillPolicy.single_run()` is one run over a range of days, and each asset's
step covers the whole range. The asset bodies stay one-day functions that read
`context.partition_key`: `over_run_days` calls the body once per day with a `DayContext` whose
partition key is that day (`day_context.py`), and records each day as a one-day run would:

- the day's metadata on that day's materialization (`add_asset_metadata(partition_key=day)`),
- the day's check results as evaluations of that day (`AssetCheckEvaluation(partition=day)`).

Every materialization of a day, in one-day and ranged runs alike, carries `duration_seconds`
(contract 6.2): the seconds from the start of the step's work on that day to the asset's result
(so the UI plots it across partitions). In a ranged step the days' joint serving publication
comes after the last day's result and is in none of them.

A failing day (an error, or a failed blocking check) does not stop the other days of the step:
they are computed and recorded, then the step fails naming each failed day and why, so no asset
below is computed from a broken day (Dagster runs a step for all of its days or for none). A
failed day's whole traceback is logged, the step's failure is chained to its error, and the
retry policy may rerun the step only if a fault was transient (`transient.is_transient`): a code
bug is not retried, in a one-day run either.

Serving writes of a ranged step are published together (`ranged_publication.py`): each day's
audited writes are queued, and when every day of the step is done they are published in ONE
serving transaction per store, before any day is recorded as materialized; a day's staged
warehouse version queued with them (`reconciled_statistics`') is swapped in only after that
transaction, and discarded if it fails.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from adrecon_assets.assets.day_context import DayContext, Publication
from adrecon_assets.assets.ranged_publication import publish_queued
from adrecon_assets.rules import DURATION_METADATA
from adrecon_assets.transient import is_transient


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


def with_duration(result: dg.MaterializeResult, started: float) -> dg.MaterializeResult:
    """`result` with the seconds since `started` (perf_counter) as `duration_seconds`."""
    seconds = round(time.perf_counter() - started, 3)
    return dg.MaterializeResult(
        asset_key=result.asset_key,
        metadata={**(result.metadata or {}), DURATION_METADATA: seconds},
        check_results=result.check_results,
        data_version=result.data_version,
        tags=result.tags,
        value=result.value,
    )


def timed_events(body: Callable[[], Any]) -> Iterator[Any]:
    """Call a day's body and pass on its events, each materialization with its
    `duration_seconds` since the call (a body that returns its result runs inside the call)."""
    started = time.perf_counter()
    for event in body_events(body()):
        yield with_duration(event, started) if isinstance(event, dg.MaterializeResult) else event


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


def error_text(error: BaseException | None) -> str:
    """A Failure's own description; any other error with its type (`KeyError: 'x'`)."""
    if isinstance(error, dg.Failure) or error is None:
        return str(error)
    return f"{type(error).__name__}: {error}"


def traceback_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).rstrip()


def failure_of(step: str, days: str, error: Exception) -> dg.Failure:
    """An error as the step's failure (raise it `from error`): retried by the retry policy only
    if the fault is transient; bad input and code bugs are not fixed by a retry."""
    return dg.Failure(
        description=f"{step} {days} failed: {error_text(error)}",
        allow_retries=is_transient(error),
    )


def compute_day(
    context: dg.AssetExecutionContext, day: str, compute_day: Callable[[DayContext], Any]
) -> tuple[DayOutcome, list[Any]]:
    """One day of the body: what it recorded, and other events to pass on. A failing day keeps
    the check results it reported before failing (write-audit-publish reports them first)."""
    outcome, passed_on = DayOutcome(day), []
    try:
        day_context = DayContext(context, day, outcome.publications)
        for event in timed_events(lambda: compute_day(day_context)):
            if isinstance(event, dg.MaterializeResult):
                key = event.asset_key or context.assets_def.key
                outcome.materialized[dg.AssetKey.from_coercible(key)] = event.metadata or {}
                outcome.checks.extend(event.check_results or [])
            elif isinstance(event, dg.AssetCheckResult):
                outcome.checks.append(event)
            else:
                passed_on.append(event)
    except Exception as error:
        # The whole traceback: a code bug must be findable from the step's log.
        context.log.error(
            f"{context.assets_def.node_def.name} {day} failed "
            f"({'transient, retried' if is_transient(error) else 'not retried'}):\n"
            f"{traceback_text(error)}"
        )
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
    for outcome in outcomes:
        if outcome.error is not None:  # a day that failed after queueing: never published
            for publication in outcome.publications:
                if publication.staged is not None:
                    publication.staged.discard()
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
    reasons = [f"{outcome.day}: {error_text(outcome.error)}" for outcome in failed] + [
        f"{day}: blocking check {', '.join(checks)} failed"
        for day, checks in blocked.items()
        if day not in {outcome.day for outcome in failed}
    ]
    if reasons:
        errors = [outcome.error for outcome in failed if outcome.error is not None]
        failure = dg.Failure(
            description=(
                f"{step}: {len(reasons)} of {len(outcomes)} days failed ("
                + "; ".join(reasons)
                + f"); the other {len(outcomes) - len(reasons)} days of this step are recorded"
            ),
            allow_retries=any(is_transient(error) for error in errors),
        )
        # Chained to the first failed day's error (each day's traceback is in the log above).
        raise failure from (errors[0] if errors else None)


def over_run_days(compute: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Wrap a one-day asset body so that a ranged run computes and records each of its days;
    a one-day run calls the body exactly as before, with the run's own context."""

    @functools.wraps(compute)
    def each_day(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Iterator[Any]:
        keys = context.partition_keys
        try:
            if len(keys) == 1:
                yield from timed_events(lambda: compute(context, *args, **kwargs))
            else:
                yield from compute_days(context, lambda day: compute(day, *args, **kwargs))
        except (dg.Failure, dg.RetryRequested):
            raise  # the raising code decided already
        except Exception as error:
            days = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
            raise failure_of(context.assets_def.node_def.name, days, error) from error

    return each_day
