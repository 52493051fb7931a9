"""How adrecon configures Spark: the settings parity depends on, and the tuning around them."""

from __future__ import annotations

from typing import Any, Final

from pyspark.sql import SparkSession

from adrecon_assets import rules

# Settings the Spark engine's results depend on: without them its Parquet could not be read back
# by Polars with the same values (UTC instants in µs, nanosecond lake files read exactly).
PARITY_SQL_CONF: Final = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Spark 4 refuses TIMESTAMP(NANOS) Parquet columns; as longs the engine floors them to µs.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.int96AsTimestamp": "true",
    "spark.sql.caseSensitive": "true",
}

# Tuning for day-sized batches on a few cores; every value can be overridden per deployment.
DEFAULT_TUNING: Final = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    # Coalesce small shuffles to the advisory size rather than to one partition per core: the
    # click-level shuffles of a day are a few MB, and each extra task is pure overhead.
    "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
    "spark.sql.autoBroadcastJoinThreshold": str(64 * 1024 * 1024),
    "spark.sql.shuffle.partitions": "16",
    # Scan splits of 16 MB rather than 128 MB: a day's lake files (~40 MB each) then spread over
    # both cores instead of three files in one task and one in the other.
    "spark.sql.files.maxPartitionBytes": str(16 * 1024 * 1024),
    "spark.ui.showConsoleProgress": "false",
    # The warehouse layout is only `*.parquet`; no `_SUCCESS` marker beside the part files.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}

LOG_LEVEL: Final = "ERROR"

# Columns whose values are nearly all distinct within a warehouse file. Parquet's dictionary
# encoding of such a column only fills a dictionary page, then falls back to plain encoding:
# work for nothing. Without it, staging a 20M-row day of emissions (384 bucket files) took
# 19.5 instead of 25.5 task CPU seconds, and its files were 7 % smaller.
DISTINCT_VALUE_COLUMNS: Final = (rules.CLICK_DEDUP_KEY[0], rules.EMISSION_DEDUP_KEY[0])
# Every warehouse write's options; Parquet only applies a column's option to a file that has
# the column, so one set serves every output (no schema lookup, a round trip on Connect).
PARQUET_WRITE_OPTIONS: Final = {
    f"parquet.enable.dictionary#{column}": "false" for column in DISTINCT_VALUE_COLUMNS
}


def spark_config(
    master: str, app_name: str, ui_enabled: bool, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The full `spark_config` of a session, in dagster-pyspark's flat `key: value` form."""
    return {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.ui.enabled": str(ui_enabled).lower(),
        **DEFAULT_TUNING,
        **(overrides or {}),
        **PARITY_SQL_CONF,
    }


def is_connect_session(spark: SparkSession) -> bool:
    """Whether `spark` is a Spark Connect client (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def runtime_sql_conf(config: dict[str, Any]) -> dict[str, Any]:
    """The `spark.sql.*` part of a session config: what a client may set on a server's session."""
    return {key: value for key, value in config.items() if key.startswith("spark.sql.")}


def apply_parity_conf(spark: SparkSession) -> None:
    """Force the parity settings on a session someone else built (they are runtime settings)."""
    for key, value in PARITY_SQL_CONF.items():
        spark.conf.set(key, value)
    if not is_connect_session(spark):  # a Connect server keeps its own log level
        spark.sparkContext.setLogLevel(LOG_LEVEL)


def attach_remote(remote: str, config: dict[str, Any]) -> SparkSession:
    """A new session of the caller's own on the Spark Connect server at `remote` (`sc://...`),
    with the `spark.sql.*` settings of `config` (the parity settings included)."""
    # `create`, not `getOrCreate`: one server-side session per run, never a shared one.
    session = SparkSession.builder.remote(remote).create()
    for key, value in runtime_sql_conf(config).items():
        session.conf.set(key, value)
    return session
