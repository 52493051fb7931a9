"""adrecon: offline reconciliation of a pay-per-click platform's statistics as Dagster assets.

The definitions are in `adrecon_assets.definitions`."""
