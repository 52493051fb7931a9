"""Every serving table (DATA_CONTRACT.md section 4), declared once for both stores.

Types are written in DuckDB's names; `ServingTable.ddl` translates them for PostgreSQL
(contract 4.2: TEXT for VARCHAR, DOUBLE PRECISION for DOUBLE, TIMESTAMPTZ for TIMESTAMP).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from adrecon_assets import rules


class Dialect(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"


POSTGRES_TYPES = {"VARCHAR": "TEXT", "DOUBLE": "DOUBLE PRECISION", "TIMESTAMP": "TIMESTAMPTZ"}

OFFLINE_SOURCE = "offline"
ONLINE_SOURCE = "online"

# baseline/zscore are null without history: NOT NULL applies to keys and counts.
# ctr is null for a placement without emissions that day (its clicks matched D-1 emissions).
NULLABLE_COLUMNS = frozenset({"baseline", "stddev", "zscore", "ctr"})


@dataclass(frozen=True)
class ServingTable:
    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]

    def ddl(self, dialect: Dialect = Dialect.DUCKDB) -> str:
        columns = []
        for name, sql_type in self.columns:
            if dialect is Dialect.POSTGRES:
                sql_type = POSTGRES_TYPES.get(sql_type, sql_type)
            columns.append(f"{name} {sql_type}{'' if name in NULLABLE_COLUMNS else ' NOT NULL'}")
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(columns)}, "
            f"PRIMARY KEY ({', '.join(self.primary_key)}))"
        )

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


OFFER_PLACEMENT_STATS = ServingTable(
    name="offer_placement_stats",
    columns=(
        ("date", "DATE"),
        ("offer_id", "VARCHAR"),
        ("placement", "VARCHAR"),
        ("emissions", "BIGINT"),
        ("clicks", "BIGINT"),
        ("cost_micros", "BIGINT"),
        ("fraud_clicks", "BIGINT"),
        ("refund_micros", "BIGINT"),
        ("source", "VARCHAR"),
        ("updated_at", "TIMESTAMP"),
    ),
    primary_key=("date", "offer_id", "placement"),
)

# One row per day whose offline rows are in place, written in the same transaction (contract 4).
RECONCILED_DAYS = ServingTable(
    name="reconciled_days",
    columns=(("date", "DATE"), ("reconciled_at", "TIMESTAMP"), ("run_id", "VARCHAR")),
    primary_key=("date",),
)

PLACEMENT_ANOMALIES = ServingTable(
    name="placement_anomalies",
    columns=(
        ("date", "DATE"),
        ("placement", "VARCHAR"),
        ("clicks", "BIGINT"),
        ("baseline", "DOUBLE"),
        ("stddev", "DOUBLE"),
        ("zscore", "DOUBLE"),
        ("history_days", "BIGINT"),
        ("is_anomaly", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ),
    primary_key=("date", "placement"),
)

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

TABLES = (
    OFFER_PLACEMENT_STATS,
    RECONCILED_DAYS,
    PLACEMENT_ANOMALIES,
    PLACEMENT_PERFORMANCE,
    REFUND_LEDGER,
)

# The measures of offer_placement_stats, as rules.py states them once.
STATS_MEASURES = rules.STATS_MEASURES
# What an online increment adds to (contract 4.2): the online layer never refunds.
ONLINE_MEASURES = ("emissions", "clicks", "cost_micros")
