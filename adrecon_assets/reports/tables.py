"""The serving tables of the report assets (replaced one day at a time by `serving.replace_day`)."""

from __future__ import annotations

from adrecon_assets.serving import ServingTable

PLACEMENT_PERFORMANCE = ServingTable(
    name="placement_performance",
    columns=(
        ("date", "DATE"),
        ("placement", "VARCHAR"),
        ("emissions", "BIGINT"),
        ("clicks", "BIGINT"),
        ("ctr", "DOUBLE"),
        ("cost_micros", "BIGINT"),
        ("fraud_clicks", "BIGINT"),
        ("refund_micros", "BIGINT"),
        ("trailing_days", "BIGINT"),
        ("trailing_emissions", "BIGINT"),
        ("trailing_clicks", "BIGINT"),
        ("attracts_no_buyers", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ),
    primary_key=("date", "placement"),
)

REFUND_LEDGER = ServingTable(
    name="refund_ledger",
    columns=(
        ("date", "DATE"),
        ("offer_id", "VARCHAR"),
        ("fraud_reason", "VARCHAR"),
        ("clicks", "BIGINT"),
        ("refund_micros", "BIGINT"),
        ("updated_at", "TIMESTAMP"),
    ),
    primary_key=("date", "offer_id", "fraud_reason"),
)
