"""Write, audit, publish (contract 4): a day is published only after its blocking checks on
the staged rows passed, and the publication start is logged with one mark."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import dagster as dg

from adrecon_assets.assets.day_context import AnyDayContext

# Logged when a step's audit passed and its publication (warehouse swap, serving write) starts.
PUBLISHING_MARK = "audit passed, publishing"


def failed_blocking_checks(
    specs: Sequence[dg.AssetCheckSpec], results: Sequence[dg.AssetCheckResult]
) -> list[dg.AssetCheckResult]:
    blocking = {spec.name for spec in specs if spec.blocking}
    return [result for result in results if result.check_name in blocking and not result.passed]


def log_publishing(context: AnyDayContext, day: date) -> None:
    context.log.info(f"{PUBLISHING_MARK} {context.asset_key.to_user_string()} {day}")


def audit_before_publish(
    context: AnyDayContext,
    day: date,
    specs: Sequence[dg.AssetCheckSpec],
    results: Sequence[dg.AssetCheckResult],
) -> Iterator[dg.AssetCheckResult]:
    """Called with the checks of the staged rows before anything is published. If a blocking
    check failed, every result is reported (so the UI and the check alerts show them) and the
    step fails naming the failed checks and what they found; the caller's publication below
    never runs, so the published day stays as it was."""
    failed = failed_blocking_checks(specs, results)
    if not failed:
        log_publishing(context, day)
        return
    asset = context.asset_key.to_user_string()
    yield from results
    found = "; ".join(f"{result.check_name}: {result.description or 'failed'}" for result in failed)
    raise dg.Failure(
        description=f"{asset} {day} not published, blocking check failed on the staged rows: "
        f"{found}. The published day is unchanged.",
        allow_retries=False,
    )
