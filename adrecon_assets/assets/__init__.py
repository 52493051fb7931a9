"""The daily assets, by stage: lake -> reconciliation -> monitoring -> reporting; and the asset
names and keys that code outside the asset modules reads (stated once, importable without
loading any asset)."""

import dagster as dg

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

# The reconciled day: what readiness, the SLA and the health check ask the instance about.
RECONCILED_STATISTICS_KEY = dg.AssetKey("reconciled_statistics")
