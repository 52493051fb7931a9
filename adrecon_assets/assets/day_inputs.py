"""Whether a day's own upstream outputs exist before an asset computes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import dagster as dg

from adrecon_assets.assets.day_context import AnyDayContext
from adrecon_assets.jobs import RECONCILE_DAYS, is_day_job_run
from adrecon_assets.run_tags import BACKFILL_TAG
from adrecon_assets.warehouse import Dataset, Warehouse


def day_inputs_ready(
    context: AnyDayContext, warehouse: Warehouse, day: date, needed: Sequence[Dataset]
) -> bool:
    """Whether the day's own upstream outputs exist; a missing one fails the run with its name.

    Except in an asset backfill: Dagster maps every requested day through the day-window
    partition mappings (D-1 emissions, trailing baselines) and so also requests days *after*
    the range, whose own inputs were never staged. Those are skipped with a warning (no
    materialization, nothing written) and run when their day is reconciled; Dagster lists them
    as failed partitions of the backfill. A `reconcile_days` backfill has no such days.
    """
    missing = [dataset.value for dataset in needed if not warehouse.exists(dataset, day)]
    if not missing:
        return True
    message = f"{', '.join(missing)} for {day} never materialized"
    if context.run.tags.get(BACKFILL_TAG) and not is_day_job_run(context.run):
        context.log.warning(
            f"skipping {context.partition_key}: {message}; this day was added to the backfill "
            "by a day-window dependency and runs when the day itself is reconciled (backfill "
            f"exactly the chosen days with the {RECONCILE_DAYS} job)"
        )
        return False
    raise dg.Failure(
        f"{message} (under {warehouse.root}); materialize it first, e.g. "
        f"--select '{missing[0]}' --partition {day}",
        allow_retries=False,
    )
