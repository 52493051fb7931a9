"""Benchmarks of the reconciliation: Polars, Polars through Dagster, Spark, and plain DuckDB SQL."""
