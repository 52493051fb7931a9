"""DuckDB SQL over warehouse Parquet folders: the report rows and the series behind the charts.

Each query runs on its own in-memory connection, so it never holds the serving DB's lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from adrecon_assets.rules import REFUNDED_REASONS

# A placement with emissions but no valid click over this many days up to D (D included)
# attracts no buyers.
NO_BUYERS_TRAILING_DAYS = 7
VALID = "valid"


def _globs(folders: Iterable[Path]) -> list[str]:
    return [str(folder / "*.parquet") for folder in folders]


def _query(sql: str, parameters: list[object]) -> pa.Table:
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        return connection.sql(sql, params=parameters).to_arrow_table()


def placement_performance(day: date, statistics_folders: list[Path]) -> pa.Table:
    """Per placement of `day`: its totals, CTR, and valid clicks over the trailing window.

    `statistics_folders` are reconciled_statistics folders of `day` and its trailing days."""
    return _query(
        """
        WITH stats AS (SELECT * FROM read_parquet(?)),
        today AS (
            SELECT placement, sum(emissions) AS emissions, sum(clicks) AS clicks,
                sum(cost_micros) AS cost_micros, sum(fraud_clicks) AS fraud_clicks,
                sum(refund_micros) AS refund_micros
            FROM stats WHERE date = ? GROUP BY placement
        ),
        window_totals AS (
            SELECT placement, count(DISTINCT date) AS trailing_days,
                sum(emissions) AS trailing_emissions, sum(clicks) AS trailing_clicks
            FROM stats GROUP BY placement
        )
        SELECT ?::DATE AS date, placement,
            emissions::BIGINT AS emissions, clicks::BIGINT AS clicks,
            CASE WHEN emissions > 0 THEN clicks / emissions END AS ctr,
            cost_micros::BIGINT AS cost_micros, fraud_clicks::BIGINT AS fraud_clicks,
            refund_micros::BIGINT AS refund_micros,
            trailing_days::BIGINT AS trailing_days,
            trailing_emissions::BIGINT AS trailing_emissions,
            trailing_clicks::BIGINT AS trailing_clicks,
            trailing_emissions > 0 AND trailing_clicks = 0 AS attracts_no_buyers
        FROM today JOIN window_totals USING (placement)
        ORDER BY placement
        """,
        [_globs(statistics_folders), day, day],
    )


def refund_ledger(day: date, flagged_folder: Path) -> pa.Table:
    """Per offer and refunded fraud reason of `day`: the clicks and money to credit."""
    return _query(
        """
        SELECT ?::DATE AS date, offer_id, fraud_reason, count(*)::BIGINT AS clicks,
            sum(click_cost_micros)::BIGINT AS refund_micros
        FROM read_parquet(?)
        WHERE fraud_reason IN (SELECT unnest(?::VARCHAR[]))
        GROUP BY offer_id, fraud_reason
        ORDER BY offer_id, fraud_reason
        """,
        [day, _globs([flagged_folder]), [reason.value for reason in REFUNDED_REASONS]],
    )


def refunds_by_offer(statistics_folder: Path) -> dict[str, tuple[int, int]]:
    """(fraud_clicks, refund_micros) per offer from reconciled_statistics: what the ledger must
    add up to (the engine's aggregate, an independent path from the ledger's SQL)."""
    table = _query(
        "SELECT offer_id, sum(fraud_clicks)::BIGINT, sum(refund_micros)::BIGINT "
        "FROM read_parquet(?) GROUP BY offer_id HAVING sum(fraud_clicks) > 0",
        [_globs([statistics_folder])],
    )
    offers, clicks, micros = (column.to_pylist() for column in table.columns)
    return {
        offer: (click, micro) for offer, click, micro in zip(offers, clicks, micros, strict=True)
    }


def fraud_mix(flagged_folders: list[tuple[date, Path]]) -> pa.Table:
    """Clicks per day and fraud reason (`valid` for none) over the given fraud_flags folders
    of those days (each day given, not read from the path: a version folder's name is not a
    Hive partition)."""
    days = " UNION ALL ".join(
        "SELECT ?::DATE AS date, fraud_reason FROM read_parquet(?)" for _ in flagged_folders
    )
    return _query(
        f"""
        SELECT date, coalesce(fraud_reason, '{VALID}') AS fraud_reason, count(*)::BIGINT AS clicks
        FROM ({days})
        GROUP BY ALL ORDER BY date, fraud_reason
        """,
        [value for day, folder in flagged_folders for value in (day, _globs([folder]))],
    )


def anomaly_history(anomaly_folders: list[Path]) -> pa.Table:
    """The anomaly_metrics rows of the given days, for the anomaly chart."""
    return _query(
        "SELECT date, placement, clicks, baseline, is_anomaly FROM read_parquet(?) "
        "ORDER BY date, placement",
        [_globs(anomaly_folders)],
    )
