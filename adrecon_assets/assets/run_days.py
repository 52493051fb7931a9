"""Ranged runs: one asset step computes every day of its run, oldest first, recorded per day.

A backfill under `BackfillPolicy.single_run()` is one run over a range of days, and each asset's
step covers the whole range. The asset bodies stay one-day functions that read
`context.partition_key`: `over_run_days` calls the body once per day with a context whose
partition key is that day, and records each day as a one-day run would:

- the day's metadata on that day's materialization (`add_asset_metadata(partition_key=day)`),
- the day's check results as evaluations of that day (`AssetCheckEvaluation(partition=day)`).

A failing day (an error, or a failed blocking check) does not stop the other days of the step:
they are computed and recorded, then the step fails naming each failed day and why, so no asset
below is computed from a broken day (Dagster runs a step for all of its days or for none). A
failed day's whole traceback is logged, the step's failure is chained to its error, and the
retry policy may rerun the step only if a fault was transient (`transient.is_transient`): a code
bug is not retried, in a one-day run either.

Serving writes of a ranged step are published together (`publish_day`): each day is audited on
its own staged rows and, once its audit passed, queued; when every day of the step is done, the
queued days are replaced in ONE serving transaction per store (still one replace per day inside
it, oldest first), before any of them is recorded as materialized; a day's staged warehouse
version queued with it (`reconciled_statistics`') is swapped in only after that transaction.
A day whose audit failed (or that failed after queueing) is left out: its published rows stay
as they were, the days that passed are published, and the step fails naming the failed day. A
failed publication publishes none of the step's days (one transaction) and fails the step
naming them all.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg

from adrecon_assets.partitions import parse_day
from adrecon_assets.serving.store import DayReplace, ServingStore
from adrecon_assets.transient import is_transient
from adrecon_assets.warehouse import StagedVersion


@dataclass(frozen=True)
class Publication:
    """An audited day's serving write, queued until the step's days are done, with the staged
    warehouse version swapped in only once the serving write committed."""

    store: ServingStore
    replace: DayReplace
    staged: StagedVersion | None = None


class DayContext:
    """The run's context seen from one day of a ranged run: its partition is that day."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        partition_key: str,
        publications: list[Publication] | None = None,
    ) -> None:
        self._context = context
        self._partition_key = partition_key
        # Where `publish_day` queues this day's audited serving writes.
        self.publications: list[Publication] = [] if publications is None else publications

    @property
    def partition_key(self) -> str:
        return self._partition_key

    @property
    def partition_keys(self) -> Sequence[str]:
        return [self._partition_key]

    @property
    def partition_key_range(self) -> dg.PartitionKeyRange:
        return dg.PartitionKeyRange(self._partition_key, self._partition_key)

    @property
    def run_context(self) -> dg.AssetExecutionContext:
        """The ranged run's own context (all of its days)."""
        return self._context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


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
    publish_queued(context, [outcome for outcome in outcomes if outcome.error is None])

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


def days_of_run(context: dg.AssetExecutionContext | DayContext) -> list[date]:
    """Every day of the run, oldest first: the whole range of a ranged run, seen from any day."""
    run = context.run_context if isinstance(context, DayContext) else context
    return [parse_day(key) for key in run.partition_keys]


def publish_day(
    context: dg.AssetExecutionContext | DayContext,
    store: ServingStore,
    replace: DayReplace,
    staged: StagedVersion | None = None,
) -> None:
    """Publish one audited day to the serving store: at once in a one-day run; in a ranged run
    queued, to be published with the step's other audited days in one transaction.

    `staged` is the day's warehouse version of the same rows: it is swapped in only after the
    serving write committed (in a one-day run when the caller's `staged_version` block ends,
    in a ranged run after the step's transaction), so that a publish that fails leaves the
    warehouse and the serving store agreeing on the old day."""
    if isinstance(context, DayContext):
        if staged is not None:
            staged.hold()
        context.publications.append(Publication(store, replace, staged))
        return
    store.replace_days([replace])
    context.log.info(
        f"published {replace.day} to {replace.table.name}: {replace.rows.num_rows} audited rows"
    )


def publish_queued(context: dg.AssetExecutionContext, succeeded: Sequence[DayOutcome]) -> None:
    """Publish the queued writes of the days that succeeded, oldest first, in one transaction
    per store; if it fails, none of them is published and the step fails naming the days."""
    by_store: dict[str, list[Publication]] = {}
    for outcome in succeeded:
        for publication in outcome.publications:
            by_store.setdefault(publication.store.location, []).append(publication)
    for publications in by_store.values():
        replaces = [publication.replace for publication in publications]
        days = day_spans({replace.day for replace in replaces})
        tables = ", ".join(sorted({replace.table.name for replace in replaces}))
        try:
            rows = publications[0].store.replace_days(replaces)
        except Exception as error:
            for outcome in succeeded:
                for queued in outcome.publications:
                    if queued.staged is not None:
                        queued.staged.discard()
            raise PublicationError(
                f"{context.assets_def.node_def.name}: publishing {len(replaces)} audited days to "
                f"{tables} failed, none of them was published ({days}): {error}"
            ) from error
        for publication in publications:
            if publication.staged is not None:
                publication.staged.publish()
        context.log.info(
            f"published {len(replaces)} audited days to {tables} in one transaction "
            f"({rows} rows): {days}"
        )


def day_spans(days: set[date]) -> str:
    """Days as runs of consecutive days: `2026-01-01..2026-01-09, 2026-01-11`."""
    spans: list[list[date]] = []
    for day in sorted(days):
        if spans and day - spans[-1][-1] == timedelta(days=1):
            spans[-1].append(day)
        else:
            spans.append([day])
    return ", ".join(f"{span[0]}..{span[-1]}" if len(span) > 1 else str(span[0]) for span in spans)


class PublicationError(RuntimeError):
    """The one serving transaction of a ranged step failed (retried by the retry policy)."""


def over_run_days(compute: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Wrap a one-day asset body so that a ranged run computes and records each of its days;
    a one-day run calls the body exactly as before."""

    @functools.wraps(compute)
    def each_day(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Iterator[Any]:
        keys = context.partition_keys
        try:
            if len(keys) == 1:
                yield from body_events(compute(context, *args, **kwargs))
            else:
                yield from compute_days(context, lambda day: compute(day, *args, **kwargs))
        except dg.Failure:
            raise
        except Exception as error:
            days = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
            raise failure_of(context.assets_def.node_def.name, days, error) from error

    return each_day
