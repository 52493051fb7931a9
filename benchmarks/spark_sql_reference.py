"""Spark's own limit: the contract's rules (section 3) as one hand-written Spark SQL job.

The same set-based query as the DuckDB reference (`adrecon_assets_tests/reference.py`), in
Spark SQL, run on the engine's session and settings: what a Spark user would write without
adrecon, so the engine's overhead over Spark itself is a number. Like that reference it imports
nothing from `rules.py` or the engines. It reads the benchmark's clean simulated lake (the
contract's types, no bad rows); times are compared as integer microseconds (`unix_micros`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from pyspark.sql import SparkSession

MICROS_PER_SECOND = 1_000_000


def _register(spark: SparkSession, name: str, folders: list[Path]) -> None:
    """A view of the day folders' Parquet files (missing folders: the day is empty)."""
    existing = [str(folder) for folder in folders if any(folder.glob("*.parquet"))]
    if existing:
        spark.read.parquet(*existing).createOrReplaceTempView(name)
    else:
        raise ValueError(f"no {name} files in {folders}: the benchmark's lake has both days")


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * MICROS_PER_SECOND


def statistics_query(day: date, denylist: list[str]) -> str:
    """The day's offer_placement_stats rows from the views `emissions_raw` (D-1 and D),
    `clicks_raw` (D), with the denylist's CIDR blocks inlined."""
    start = _day_start_us(day)
    end = start + 86_400 * MICROS_PER_SECOND
    cidrs = ", ".join(f"('{cidr}')" for cidr in denylist) or "(CAST(NULL AS STRING))"
    return f"""
WITH
emissions_deduplicated AS (
    -- The first row of each key in rule 1's order, as an aggregation (the smallest struct of
    -- the order's columns) rather than a window: no sort of every row.
    SELECT emission_id, offer_id, first.placement, first.click_cost_micros,
        unix_micros(first.emitted_at) AS emitted_us
    FROM (
        SELECT emission_id, offer_id,
            min(named_struct(
                'emitted_at', emitted_at, 'click_cost_micros', click_cost_micros,
                'placement', placement
            )) AS first
        FROM emissions_raw
        GROUP BY emission_id, offer_id
    )
),
clicks_deduplicated AS (
    SELECT click_id, first.emission_id, first.offer_id,
        unix_micros(first.clicked_at) AS clicked_us, first.user_id, first.ip,
        CAST(split_part(first.ip, '.', 1) AS BIGINT) * 16777216
        + CAST(split_part(first.ip, '.', 2) AS BIGINT) * 65536
        + CAST(split_part(first.ip, '.', 3) AS BIGINT) * 256
        + CAST(split_part(first.ip, '.', 4) AS BIGINT) AS ip_number
    FROM (
        SELECT click_id,
            min(named_struct(
                'clicked_at', clicked_at, 'emission_id', emission_id, 'offer_id', offer_id,
                'user_id', user_id, 'ip', ip
            )) AS first
        FROM clicks_raw
        GROUP BY click_id
    )
),
denylist_parsed AS (
    SELECT split_part(cidr, '/', 1) AS address,
        coalesce(CAST(nullif(split_part(cidr, '/', 2), '') AS INT), 32) AS prefix
    FROM VALUES {cidrs} AS denylist(cidr) WHERE cidr IS NOT NULL
),
denylist_ranges AS (
    SELECT network AS first_ip, network + shiftleft(CAST(1 AS BIGINT), 32 - prefix) - 1 AS last_ip
    FROM (
        SELECT prefix,
            shiftleft(shiftright(
                CAST(split_part(address, '.', 1) AS BIGINT) * 16777216
                + CAST(split_part(address, '.', 2) AS BIGINT) * 65536
                + CAST(split_part(address, '.', 3) AS BIGINT) * 256
                + CAST(split_part(address, '.', 4) AS BIGINT), 32 - prefix), 32 - prefix)
                AS network
        FROM denylist_parsed
    )
),
denylisted_clicks AS (
    SELECT DISTINCT c.click_id
    FROM clicks_deduplicated c
    JOIN denylist_ranges d ON c.ip_number BETWEEN d.first_ip AND d.last_ip
),
clicks_with_window AS (
    SELECT *,
        row_number() OVER (PARTITION BY user_id, offer_id ORDER BY clicked_us, click_id) - 1
        - count(*) OVER (
            PARTITION BY user_id, offer_id ORDER BY clicked_us
            RANGE BETWEEN UNBOUNDED PRECEDING AND {600 * MICROS_PER_SECOND + 1} PRECEDING
        ) AS earlier_clicks_in_window
    FROM clicks_deduplicated
),
flagged_clicks AS (
    SELECT c.click_id, c.offer_id, e.placement, e.click_cost_micros,
        CASE
            WHEN e.emission_id IS NULL THEN 'no_emission'
            WHEN c.clicked_us - e.emitted_us < {MICROS_PER_SECOND} THEN 'too_fast'
            WHEN d.click_id IS NOT NULL THEN 'denylisted_ip'
            WHEN c.earlier_clicks_in_window >= 3 THEN 'click_flood'
        END AS fraud_reason
    FROM clicks_with_window c
    LEFT JOIN emissions_deduplicated e
        ON c.emission_id = e.emission_id AND c.offer_id = e.offer_id
    LEFT JOIN denylisted_clicks d ON c.click_id = d.click_id
),
emission_counts AS (
    SELECT offer_id, placement, count(*) AS emissions
    FROM emissions_deduplicated
    WHERE emitted_us >= {start} AND emitted_us < {end}
    GROUP BY offer_id, placement
),
click_totals AS (
    SELECT offer_id, placement,
        count(*) FILTER (WHERE fraud_reason IS NULL) AS clicks,
        coalesce(sum(click_cost_micros) FILTER (WHERE fraud_reason IS NULL), 0) AS cost_micros,
        count(*) FILTER (WHERE fraud_reason IS NOT NULL) AS fraud_clicks,
        coalesce(sum(click_cost_micros) FILTER (WHERE fraud_reason IS NOT NULL), 0)
            AS refund_micros
    FROM flagged_clicks
    WHERE fraud_reason IS DISTINCT FROM 'no_emission'
    GROUP BY offer_id, placement
)
SELECT DATE '{day.isoformat()}' AS date, offer_id, placement,
    CAST(coalesce(emissions, 0) AS BIGINT) AS emissions,
    CAST(coalesce(clicks, 0) AS BIGINT) AS clicks,
    CAST(coalesce(cost_micros, 0) AS BIGINT) AS cost_micros,
    CAST(coalesce(fraud_clicks, 0) AS BIGINT) AS fraud_clicks,
    CAST(coalesce(refund_micros, 0) AS BIGINT) AS refund_micros
FROM emission_counts FULL OUTER JOIN click_totals USING (offer_id, placement)
ORDER BY offer_id, placement"""


def spark_sql_statistics(spark: SparkSession, lake_root: Path, day: date) -> pa.Table:
    """Day D's serving rows computed by the one Spark SQL job (D-1 is a lake day too)."""

    def folders(topic: str, days: list[date]) -> list[Path]:
        return [lake_root / topic / f"date_partition={d.isoformat()}" for d in days]

    _register(spark, "emissions_raw", folders("emissions", [day - timedelta(days=1), day]))
    _register(spark, "clicks_raw", folders("clicks", [day]))
    denylist_file = lake_root / "reference" / "ip_denylist.csv"
    lines = denylist_file.read_text().splitlines()[1:] if denylist_file.exists() else []
    denylist = [line.strip() for line in lines if line.strip()]
    return spark.sql(statistics_query(day, denylist)).toArrow()
