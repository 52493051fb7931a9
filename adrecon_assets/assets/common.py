"""What every asset shares: retry policy, kinds, and how an engine step is run and timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from adrecon_assets.contracts import LakeInputError
from adrecon_assets.settings import engine_name

T = TypeVar("T")

# Transient I/O (a busy DuckDB file, a flaky object store) is retried with backoff; bad input
# is raised as a non-retryable Failure, since retrying cannot fix a file.
ASSET_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)

# Backfills run one day per run: every asset reads and writes exactly one partition key (no
# partition_key_range handling), each day's outputs are replaced atomically (atomic_folder,
# serving.replace_day) so a failed day retries alone, and DuckDB's single writer is shared
# through the serving_duckdb pool rather than one long run holding it for a whole month.
DAY_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)

SERVING_POOL = "serving_duckdb"


def engine_kinds(extra: set[str]) -> set[str]:
    """The UI's kind tags: the engine chosen for this environment plus what the asset writes."""
    return {engine_name(), *extra}


def run_engine_step(step: Callable[[], T]) -> tuple[T, float]:
    """Run one engine call, timing it; bad lake input fails the run without retries."""
    started = time.perf_counter()
    try:
        result = step()
    except LakeInputError as error:
        raise dg.Failure(
            description=f"bad lake input: {error}", allow_retries=False
        ) from error
    return result, time.perf_counter() - started
