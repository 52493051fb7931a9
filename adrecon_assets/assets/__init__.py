"""The daily assets, by stage: lake -> reconciliation -> monitoring -> reporting."""

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
