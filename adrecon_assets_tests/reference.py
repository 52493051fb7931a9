"""An independent reference computation of DATA_CONTRACT.md section 3, in plain DuckDB SQL.

This is what a user might write instead of the pipeline: read the lake's Parquet files of D-1
and D and the denylist CSV, and compute the day's serving rows and per-click fraud reasons in
one set-based query. It deliberately imports nothing from the engines or `rules.py`, so that a
misreading of the contract in one place shows up as a disagreement with the other.

Timestamps are compared as integer microseconds since the epoch (`epoch_us`), so the result does
not depend on the session's time zone or on whether a file stores UTC-adjusted timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

MICROS_PER_SECOND = 1_000_000
STATS_COLUMNS = (
    "date",
    "offer_id",
    "placement",
    "emissions",
    "clicks",
    "cost_micros",
    "fraud_clicks",
    "refund_micros",
)

_EMPTY_EMISSIONS = (
    "SELECT NULL::VARCHAR AS emission_id, NULL::VARCHAR AS offer_id, "
    "NULL::VARCHAR AS placement, NULL::BIGINT AS click_cost_micros, "
    "NULL::BIGINT AS emitted_us WHERE false"
)
_EMPTY_CLICKS = (
    "SELECT NULL::VARCHAR AS click_id, NULL::VARCHAR AS emission_id, NULL::VARCHAR AS offer_id, "
    "NULL::BIGINT AS clicked_us, NULL::VARCHAR AS user_id, NULL::VARCHAR AS ip WHERE false"
)
_EMPTY_DENYLIST = "SELECT NULL::VARCHAR AS cidr WHERE false"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet_files(lake_root: Path, topic: str, day: date) -> list[str]:
    """The day's Parquet files; a missing folder is an empty day."""
    folder = lake_root / topic / f"date_partition={day.isoformat()}"
    return sorted(str(path) for path in folder.glob("*.parquet"))


def _read(files: list[str]) -> str:
    listed = ", ".join(_quote(path) for path in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def _emissions_source(lake_root: Path, days: list[date]) -> str:
    files = [path for day in days for path in _parquet_files(lake_root, "emissions", day)]
    if not files:
        return _EMPTY_EMISSIONS
    return (
        "SELECT emission_id::VARCHAR AS emission_id, offer_id::VARCHAR AS offer_id, "
        "placement::VARCHAR AS placement, click_cost_micros::BIGINT AS click_cost_micros, "
        f"epoch_us(emitted_at) AS emitted_us FROM {_read(files)}"
    )


def _clicks_source(lake_root: Path, day: date) -> str:
    files = _parquet_files(lake_root, "clicks", day)
    if not files:
        return _EMPTY_CLICKS
    return (
        "SELECT click_id::VARCHAR AS click_id, emission_id::VARCHAR AS emission_id, "
        "offer_id::VARCHAR AS offer_id, epoch_us(clicked_at) AS clicked_us, "
        f"user_id::VARCHAR AS user_id, ip::VARCHAR AS ip FROM {_read(files)}"
    )


def _denylist_source(lake_root: Path) -> str:
    path = lake_root / "reference" / "ip_denylist.csv"
    if not path.exists():
        return _EMPTY_DENYLIST
    return (
        f"SELECT trim(cidr) AS cidr FROM read_csv({_quote(str(path))}, header = true, "
        "columns = {'cidr': 'VARCHAR'}) WHERE trim(coalesce(cidr, '')) <> ''"
    )


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * MICROS_PER_SECOND


def _flagged_clicks_ctes(lake_root: Path, day: date, first_day: date) -> str:
    """CTEs ending in `flagged_clicks` (one row per deduplicated click of D, with its matched
    emission or nulls, and its fraud_reason) and `emissions_deduplicated`."""
    if day < first_day:
        raise ValueError(f"{day} is before the first partition {first_day}")
    # The partition before the first partition counts as empty, whatever the lake holds.
    emission_days = [day] if day == first_day else [day - timedelta(days=1), day]
    return f"""
WITH
emissions_raw AS ({_emissions_source(lake_root, emission_days)}),
emissions_deduplicated AS (
    SELECT * FROM emissions_raw
    QUALIFY row_number() OVER (
        PARTITION BY emission_id, offer_id
        ORDER BY emitted_us, click_cost_micros, placement
    ) = 1
),
clicks_raw AS ({_clicks_source(lake_root, day)}),
clicks_deduplicated AS (
    SELECT *,
        split_part(ip, '.', 1)::BIGINT * 16777216 + split_part(ip, '.', 2)::BIGINT * 65536
        + split_part(ip, '.', 3)::BIGINT * 256 + split_part(ip, '.', 4)::BIGINT AS ip_number
    FROM clicks_raw
    QUALIFY row_number() OVER (
        PARTITION BY click_id ORDER BY clicked_us, emission_id, offer_id, user_id, ip
    ) = 1
),
denylist_parsed AS (
    SELECT split_part(cidr, '/', 1) AS address,
        coalesce(nullif(split_part(cidr, '/', 2), '')::INTEGER, 32) AS prefix
    FROM ({_denylist_source(lake_root)})
),
denylist_ranges AS (
    -- Network to broadcast address as integers; host bits in the address are cleared.
    SELECT network AS first_ip, network + (1::BIGINT << (32 - prefix)) - 1 AS last_ip
    FROM (
        SELECT prefix,
            ((split_part(address, '.', 1)::BIGINT * 16777216
              + split_part(address, '.', 2)::BIGINT * 65536
              + split_part(address, '.', 3)::BIGINT * 256
              + split_part(address, '.', 4)::BIGINT) >> (32 - prefix)) << (32 - prefix) AS network
        FROM denylist_parsed
    )
),
denylisted_clicks AS (
    SELECT DISTINCT c.click_id
    FROM clicks_deduplicated c
    JOIN denylist_ranges d ON c.ip_number BETWEEN d.first_ip AND d.last_ip
),
clicks_with_window AS (
    -- Clicks of the same user and offer earlier in (clicked_at, click_id) order and at most
    -- 600 s before: all earlier clicks minus those more than 600 s before.
    SELECT *,
        row_number() OVER same_user_offer - 1
        - count(*) OVER (
            PARTITION BY user_id, offer_id ORDER BY clicked_us
            RANGE BETWEEN UNBOUNDED PRECEDING AND {600 * MICROS_PER_SECOND + 1} PRECEDING
        ) AS earlier_clicks_in_window
    FROM clicks_deduplicated
    WINDOW same_user_offer AS (PARTITION BY user_id, offer_id ORDER BY clicked_us, click_id)
),
flagged_clicks AS (
    SELECT c.click_id, c.offer_id, e.placement, e.click_cost_micros, e.emitted_us,
        CASE
            WHEN e.emission_id IS NULL THEN 'no_emission'
            WHEN c.clicked_us - e.emitted_us < {MICROS_PER_SECOND} THEN 'too_fast'
            WHEN c.click_id IN (SELECT click_id FROM denylisted_clicks) THEN 'denylisted_ip'
            WHEN c.earlier_clicks_in_window >= 3 THEN 'click_flood'
        END AS fraud_reason
    FROM clicks_with_window c
    LEFT JOIN emissions_deduplicated e USING (emission_id, offer_id)
)"""


@dataclass(frozen=True)
class ReferenceQueries:
    statistics: str
    """The day's offer_placement_stats rows (STATS_COLUMNS), ordered by offer_id, placement."""
    reasons: str
    """click_id and fraud_reason (null when valid) of every deduplicated click of D."""


def reference_queries(lake_root: str | Path, day: date, first_day: date) -> ReferenceQueries:
    """The reference SQL for day D (also what the benchmark times)."""
    ctes = _flagged_clicks_ctes(Path(lake_root), day, first_day)
    start = _day_start_us(day)
    end = start + 86_400 * MICROS_PER_SECOND
    statistics = f"""{ctes},
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
    coalesce(emissions, 0)::BIGINT AS emissions,
    coalesce(clicks, 0)::BIGINT AS clicks,
    coalesce(cost_micros, 0)::BIGINT AS cost_micros,
    coalesce(fraud_clicks, 0)::BIGINT AS fraud_clicks,
    coalesce(refund_micros, 0)::BIGINT AS refund_micros
FROM emission_counts FULL OUTER JOIN click_totals USING (offer_id, placement)
ORDER BY offer_id, placement"""
    reasons = f"{ctes}\nSELECT click_id, fraud_reason FROM flagged_clicks ORDER BY click_id"
    return ReferenceQueries(statistics=statistics, reasons=reasons)


def reference_day(
    lake_root: str | Path, day: date, first_day: date
) -> tuple[pa.Table, dict[str, str | None]]:
    """Expected serving rows of day D and the fraud_reason of each deduplicated click."""
    queries = reference_queries(lake_root, day, first_day)
    with duckdb.connect() as connection:
        statistics = connection.sql(queries.statistics).to_arrow_table()
        reasons = dict(connection.execute(queries.reasons).fetchall())
    return statistics, reasons
