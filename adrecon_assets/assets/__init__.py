"""The daily assets, by stage: lake -> reconciliation -> monitoring -> reporting."""

import warnings

import dagster as dg

# The assets use beta/preview parameters on purpose (backfill_policy, partitioned check specs,
# allow_nonexistent_upstream_partitions); operators need not see that warning on every import.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# The contract's six daily assets (DATA_CONTRACT.md section 5), in the data's order; the
# reporting assets come after them.
CONTRACT_ASSET_NAMES: tuple[str, ...] = (
    "raw_clicks",
    "raw_emissions",
    "joined_clicks",
    "fraud_flags",
    "reconciled_statistics",
    "anomaly_metrics",
)
