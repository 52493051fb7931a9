"""Materialization metadata, one module per subject: `drift` (what the online rows got wrong),
`markdown` (how the UI shows it), `lake_fingerprint` (the lake input of a day) and
`parquet_rows` (row counts of written folders)."""
