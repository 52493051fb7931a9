"""A code location with one do-nothing daily asset: what a backfill costs in Dagster alone.

Loaded beside adrecon's location by `benchmarks/catch_up.py`, on the same instance and with the
same daily partitions, so a one-run-per-day backfill of it measures Dagster's per-run floor.
"""

import dagster as dg

from adrecon_assets.partitions import daily_partitions

NOOP_DAYS = "noop_days"


@dg.asset(partitions_def=daily_partitions)
def noop_daily() -> None:
    """Does nothing: a run of it is only Dagster's own cost (launch, process, events)."""


defs = dg.Definitions(
    assets=[noop_daily],
    jobs=[dg.define_asset_job(NOOP_DAYS, selection=[noop_daily], partitions_def=daily_partitions)],
)
