"""`reconcile_days`: the whole chain of the chosen days, the operators' way to backfill days.

Why a job next to the assets: an asset backfill launched from the global asset graph maps the
requested days through the D-1 and trailing-window partition mappings and so also targets the
days after the range (joined_clicks of D+1 reads emissions of D; baselines look back a week).
A backfill launched from this job's page is a job backfill instead: exactly the chosen days,
every asset of them. Every asset has `BackfillPolicy.single_run()`, so the backfill is ONE
ranged run over the days, whose steps compute the days oldest first (`assets/ranged_run.py`),
so each day's baseline sees the days before it. `dagster.yaml` still limits each backfill to
one running run (tag `dagster/backfill`) and the queue is first in, first out.
"""

from __future__ import annotations

import dagster as dg

from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.rules import SLA_CHECK_NAME

RECONCILE_DAYS = "reconcile_days"
# The SLA verdict of a day is recorded once, at its deadline, by the SLA sensor (checks/sla.py),
# never by the runs that reconcile it: a rerun must not judge the day again.
SLA_CHECK_KEY = dg.AssetCheckKey(RECONCILED_STATISTICS_KEY, SLA_CHECK_NAME)
NOT_IN_RUNS = dg.AssetSelection.checks(SLA_CHECK_KEY)

# The terminal of `make run` (and of a worker) shows the steps' INFO lines (what was staged,
# replaced, skipped), not every DEBUG event of a month-long catch-up; the UI keeps them all.
# The job's default config; a sensor's run request states it too (its config replaces it).
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

reconcile_days = dg.define_asset_job(
    name=RECONCILE_DAYS,
    selection=dg.AssetSelection.all() - NOT_IN_RUNS,
    config=RUN_CONFIG,
    description=(
        "Reconcile whole days: raw staging, join, fraud flags, serving statistics, anomalies "
        "and reports. Backfill a range from this job's page (Materialize all… → days → Launch "
        "backfill): exactly those days, in one run that computes them oldest first."
    ),
)


def is_day_job_run(run: dg.DagsterRun) -> bool:
    """Whether `run` is a day of `reconcile_days`, a day somebody chose (never one that a
    partition mapping added to a backfill), so a missing input there is a real failure."""
    return run.job_name == RECONCILE_DAYS
