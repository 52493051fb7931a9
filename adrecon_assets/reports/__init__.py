"""Business reports built from the warehouse with DuckDB SQL (engine-neutral: both engines
write the same Parquet layout), and the serving tables they are published to."""
