"""When failed work is tried again without a person (contract 5): after the backoff of
`rules.day_retry_delay` since its latest failed attempt ended, counted over the attempts that
failed in a row. The readiness sensor applies it to unreconciled days, the late-data sensor to
its failed reruns; both read the attempts from the instance, so a restart forgets nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from adrecon_assets.rules import DAY_RETRY_BACKOFF, day_retry_delay

# Attempts read per piece of work: past the backoff's steps, the delay no longer grows.
ATTEMPTS_READ = len(DAY_RETRY_BACKOFF) + 1
FAILED_STATUSES = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass(frozen=True)
class Attempts:
    """The failed attempts in a row (newest first, as read) and the newest one's run."""

    failed: int
    last_run_id: str | None = None
    last_ended_at: datetime | None = None

    @property
    def retry_at(self) -> datetime | None:
        """When the backoff after the latest failure ends (None: nothing failed yet)."""
        if self.last_ended_at is None:
            return None
        return self.last_ended_at + day_retry_delay(self.failed)

    def due(self, now: datetime) -> bool:
        """Nothing failed yet, or the backoff after the latest failure has passed."""
        return self.retry_at is None or now >= self.retry_at


def ended_at(record: dg.RunRecord) -> datetime:
    """When a finished run ended (its last update if the end time was not recorded)."""
    if record.end_time is not None:
        return datetime.fromtimestamp(record.end_time, UTC)
    return record.update_timestamp.astimezone(UTC)


def failed_in_a_row(records: Sequence[dg.RunRecord]) -> Attempts:
    """The attempts of one piece of work (newest first) that failed or were canceled since its
    last success; the caller has made sure none of them is still queued or running."""
    failed = 0
    for record in records:
        if record.dagster_run.status not in FAILED_STATUSES:
            break
        failed += 1
    if not failed:
        return Attempts(0)
    newest = records[0]
    return Attempts(failed, newest.dagster_run.run_id, ended_at(newest))


def unsuccessful(records: Sequence[dg.RunRecord]) -> Attempts:
    """The finished attempts (newest first) at work that is still not done, whatever their
    status: a day still unreconciled after a run that succeeded is not reconciled either, and
    waits like after a failure instead of being relaunched on every tick."""
    if not records:
        return Attempts(0)
    newest = records[0]
    return Attempts(len(records), newest.dagster_run.run_id, ended_at(newest))
