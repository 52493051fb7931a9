"""The reconciliation rules of DATA_CONTRACT.md section 2-3, described once for every engine.

Engines import names, orders and thresholds from here; if a rule changes, it changes here and
both engines' parity tests say whether they still agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

MICROS_PER_SECOND: Final = 1_000_000


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A UTC day as the half-open instant range [start, end) its partition holds."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


class Topic(StrEnum):
    """A lake topic: one folder of daily partitions."""

    CLICKS = "clicks"
    EMISSIONS = "emissions"


class ColumnKind(StrEnum):
    STRING = "string"
    INT64 = "int64"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    non_negative: bool = False


@dataclass(frozen=True)
class TopicSchema:
    """Input contract of one lake topic: every column is required and not null."""

    topic: Topic
    columns: tuple[ColumnSpec, ...]
    timestamp_column: str

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


EMISSIONS_SCHEMA: Final = TopicSchema(
    topic=Topic.EMISSIONS,
    columns=(
        ColumnSpec("emission_id", ColumnKind.STRING),
        ColumnSpec("offer_id", ColumnKind.STRING),
        ColumnSpec("placement", ColumnKind.STRING),
        ColumnSpec("click_cost_micros", ColumnKind.INT64, non_negative=True),
        ColumnSpec("emitted_at", ColumnKind.TIMESTAMP),
    ),
    timestamp_column="emitted_at",
)

CLICKS_SCHEMA: Final = TopicSchema(
    topic=Topic.CLICKS,
    columns=(
        ColumnSpec("click_id", ColumnKind.STRING),
        ColumnSpec("emission_id", ColumnKind.STRING),
        ColumnSpec("offer_id", ColumnKind.STRING),
        ColumnSpec("clicked_at", ColumnKind.TIMESTAMP),
        ColumnSpec("user_id", ColumnKind.STRING),
        ColumnSpec("ip", ColumnKind.STRING),
    ),
    timestamp_column="clicked_at",
)

SCHEMAS: Final = {Topic.EMISSIONS: EMISSIONS_SCHEMA, Topic.CLICKS: CLICKS_SCHEMA}

# Section 7: row-level faults are quarantined (kept beside the warehouse output, counted, and
# reported by a blocking check) rather than silently dropped or turned into numbers.
QUARANTINE_NULL: Final = "null_{column}"
QUARANTINE_NEGATIVE: Final = "negative_{column}"
QUARANTINE_OUTSIDE_DAY: Final = "{column}_outside_partition_day"
QUARANTINE_INVALID_IP: Final = "invalid_ipv4_ip"
QUARANTINE_REASON_COLUMN: Final = "quarantine_reason"
SOURCE_FILE_COLUMN: Final = "source_file"


class RowFaultKind(StrEnum):
    NULL = "null"
    NEGATIVE = "negative"
    OUTSIDE_DAY = "outside_day"
    INVALID_IPV4 = "invalid_ipv4"


@dataclass(frozen=True)
class RowFault:
    """One row-level contract fault: what is tested on which column, and its quarantine reason."""

    kind: RowFaultKind
    column: str
    reason: str


def row_faults(schema: TopicSchema) -> tuple[RowFault, ...]:
    """The section-7 row faults of a topic in precedence order (a row gets the first reason)."""
    faults = [
        RowFault(RowFaultKind.NULL, column.name, QUARANTINE_NULL.format(column=column.name))
        for column in schema.columns
    ]
    faults += [
        RowFault(RowFaultKind.NEGATIVE, column.name, QUARANTINE_NEGATIVE.format(column=column.name))
        for column in schema.columns
        if column.non_negative
    ]
    timestamp = schema.timestamp_column
    faults.append(
        RowFault(
            RowFaultKind.OUTSIDE_DAY, timestamp, QUARANTINE_OUTSIDE_DAY.format(column=timestamp)
        )
    )
    if "ip" in schema.column_names:
        faults.append(RowFault(RowFaultKind.INVALID_IPV4, "ip", QUARANTINE_INVALID_IP))
    return tuple(faults)


# An IPv4 dotted quad: four decimal octets 0-255 (leading zeros tolerated as ipaddress does not).
IPV4_PATTERN: Final = (
    r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"
)

# Rule 1: deduplication keys and the order that picks the surviving row (first wins).
CLICK_DEDUP_KEY: Final = ("click_id",)
CLICK_DEDUP_ORDER: Final = ("clicked_at", "emission_id", "offer_id", "user_id", "ip")
EMISSION_DEDUP_KEY: Final = ("emission_id", "offer_id")
EMISSION_DEDUP_ORDER: Final = ("emitted_at", "click_cost_micros", "placement")

# Rule 2: the join key, and how many days back an emission may be for a click of day D.
JOIN_KEY: Final = ("emission_id", "offer_id")
EMISSION_LOOKBACK_DAYS: Final = 1


class FraudReason(StrEnum):
    """Rule 3, in precedence order: a click gets the first reason that applies."""

    NO_EMISSION = "no_emission"
    TOO_FAST = "too_fast"
    DENYLISTED_IP = "denylisted_ip"
    CLICK_FLOOD = "click_flood"


FRAUD_REASONS_IN_PRECEDENCE: Final = tuple(FraudReason)
# Reasons for which the click was matched and billed online, so its cost is refunded.
REFUNDED_REASONS: Final = (
    FraudReason.TOO_FAST,
    FraudReason.DENYLISTED_IP,
    FraudReason.CLICK_FLOOD,
)

MIN_CLICK_GAP_MICROS: Final = 1 * MICROS_PER_SECOND
FLOOD_WINDOW_MICROS: Final = 600 * MICROS_PER_SECOND
FLOOD_GROUP: Final = ("user_id", "offer_id")
FLOOD_ORDER: Final = ("clicked_at", "click_id")
# A click is a flood when at least this many earlier clicks of its group lie in the window.
# Because the group is ordered by clicked_at, that holds exactly when the click this many places
# earlier in the order lies in the window, so engines can use a lag instead of a self-join.
FLOOD_MIN_EARLIER_CLICKS: Final = 3

# Rule 4: serving table key and measures.
STATS_KEY: Final = ("offer_id", "placement")
STATS_MEASURES: Final = ("emissions", "clicks", "cost_micros", "fraud_clicks", "refund_micros")
STATS_COLUMNS: Final = ("date", *STATS_KEY, *STATS_MEASURES)
# The online layer's drift (materialization metadata) is reported on the measures billing
# depends on: clicks and money, not emissions.
DRIFT_MEASURES: Final = tuple(m for m in STATS_MEASURES if m != "emissions")

# Joined and flagged click columns (warehouse layout shared by both engines).
JOINED_COLUMNS: Final = (
    "click_id",
    "emission_id",
    "offer_id",
    "clicked_at",
    "user_id",
    "ip",
    "placement",
    "click_cost_micros",
    "emitted_at",
)
FLAGGED_COLUMNS: Final = (*JOINED_COLUMNS, "fraud_reason")
EMISSION_COUNT_COLUMNS: Final = (*STATS_KEY, "emissions")

# Anomaly rule (contract 4: a tenth of a steady history or tenfold is an anomaly).
ANOMALY_TRAILING_DAYS: Final = 7
ANOMALY_MIN_HISTORY_DAYS: Final = 3
ANOMALY_FALL_RATIO: Final = 0.1
ANOMALY_RISE_RATIO: Final = 10.0
# Below this many clicks on both sides a ratio is noise (0 after 2 is not an incident).
ANOMALY_MIN_VOLUME: Final = 5.0
# The z-score's noise floor is Poisson's sqrt(baseline), with at least this baseline.
ANOMALY_STDDEV_FLOOR_MIN_BASELINE: Final = 1.0
ANOMALY_COLUMNS: Final = (
    "date",
    "placement",
    "clicks",
    "baseline",
    "stddev",
    "zscore",
    "history_days",
    "is_anomaly",
)


@dataclass(frozen=True, order=True)
class IpRange:
    """An inclusive range of IPv4 addresses as integers (a CIDR's network to broadcast)."""

    first: int
    last: int


def parse_denylist(cidrs: list[str]) -> list[IpRange]:
    """Turn CIDR strings into sorted, merged, disjoint inclusive integer ranges.

    Host bits are tolerated (`10.0.0.5/24` means `10.0.0.0/24`); an invalid line raises
    ValueError naming it, since a silently dropped denylist entry would under-refund.
    """
    ranges: list[IpRange] = []
    for raw in cidrs:
        text = raw.strip()
        if not text:
            continue
        try:
            network = ipaddress.IPv4Network(text, strict=False)
        except ValueError as error:
            raise ValueError(
                f"invalid CIDR {text!r} in ip_denylist.csv column 'cidr': {error}"
            ) from error
        ranges.append(IpRange(int(network.network_address), int(network.broadcast_address)))
    merged: list[IpRange] = []
    for current in sorted(ranges):
        if merged and current.first <= merged[-1].last + 1:
            merged[-1] = IpRange(merged[-1].first, max(merged[-1].last, current.last))
        else:
            merged.append(current)
    return merged


# The anomaly rule over numbers or engine expressions (Polars `Expr`, Spark `Column`): both
# support the comparisons, arithmetic and `&`/`|` used here; the engine supplies `greatest`
# (and `sqrt`), whose spelling differs. A null baseline (no history) gives a null result,
# which engines read as "no anomaly".
Greatest = Callable[[Any, Any], Any]


def has_anomaly_history(history_days: int) -> bool:
    """Whether a day has enough reconciled trailing days for the anomaly rule to apply."""
    return history_days >= ANOMALY_MIN_HISTORY_DAYS


def anomaly_condition(clicks: Any, baseline: Any, greatest: Greatest) -> Any:
    """Contract 4 on a day with enough history: clicks fell to a tenth of a positive baseline or
    rose tenfold, with at least `ANOMALY_MIN_VOLUME` clicks on one side."""
    return (
        (baseline > 0)
        & (greatest(clicks, baseline) >= ANOMALY_MIN_VOLUME)
        & ((clicks <= ANOMALY_FALL_RATIO * baseline) | (clicks >= ANOMALY_RISE_RATIO * baseline))
    )


def anomaly_zscore(
    clicks: Any, baseline: Any, stddev: Any, greatest: Greatest, sqrt: Callable[[Any], Any]
) -> Any:
    """(clicks - baseline) / stddev, with the Poisson floor so a steady history does not
    divide by 0."""
    floor = sqrt(greatest(baseline, ANOMALY_STDDEV_FLOOR_MIN_BASELINE))
    return (clicks - baseline) / greatest(stddev, floor)


# --- Operations (contract sections 2 and 6): shared by the retrying code, the SLA and alerts ---

# A transient fault (I/O error, timeout, dropped connection, throttling, 5xx) is retried with
# backoff for at least this long in all before a day fails (contract 2).
TRANSIENT_RETRY_BUDGET_SECONDS: Final = 300
# The backoff between attempts: the first wait, doubling up to the longest one.
TRANSIENT_RETRY_FIRST_WAIT_SECONDS: Final = 1.0
TRANSIENT_RETRY_MAX_WAIT_SECONDS: Final = 30.0
# A sensor tick retries its lake listing for this long only: the next tick is its next retry,
# and a tick must end well inside Dagster's sensor evaluation timeout (60 s by default).
SENSOR_RETRY_BUDGET_SECONDS: Final = 20


class SlaMissCause(StrEnum):
    """Why day D missed its SLA (contract 6.1), recorded as the failed `reconciled_by_sla_hour`
    evaluation's `SLA_CAUSE_METADATA`. Only LAKE_CLOSED_LATE is not the pipeline's doing: it is
    a notification, every other cause pages (contract 6)."""

    NO_LAKE_DATA = "no_lake_data"
    LAKE_CLOSED_LATE = "lake_closed_late"
    RUN_RUNNING = "run_running"
    RUN_FAILED = "run_failed"
    NOT_RECONCILED = "not_reconciled"
    RECONCILED_LATE = "reconciled_late"


SLA_CAUSE_METADATA: Final = "cause"
# The check of `reconciled_statistics` that records each day's SLA verdict, once per day.
SLA_CHECK_NAME: Final = "reconciled_by_sla_hour"
# Contract 6.2: each step's duration per day, numeric materialization metadata.
DURATION_METADATA: Final = "duration_seconds"

# Contract 5: a day whose run failed (a transient fault that outlived the in-run retries, a
# crash, a canceled run) is launched again without a person, after these waits since the
# failed attempt ended (the first retry 10 minutes after the first failure), then every
# `DAY_RETRY_THEN_EVERY` for good: a day is never left behind, and a day whose input is bad
# costs one short failing run an hour until its file is fixed.
DAY_RETRY_BACKOFF: Final = (timedelta(minutes=10), timedelta(minutes=30), timedelta(hours=1))
DAY_RETRY_THEN_EVERY: Final = timedelta(hours=1)


def day_retry_delay(failed_attempts: int) -> timedelta:
    """How long after its latest failed attempt a day is launched again, given how many
    attempts in a row failed (1 for the first failure)."""
    if failed_attempts < 1:
        return timedelta(0)
    if failed_attempts <= len(DAY_RETRY_BACKOFF):
        return DAY_RETRY_BACKOFF[failed_attempts - 1]
    return DAY_RETRY_THEN_EVERY


# Contract 6: a closed day still unreconciled this long after its lake closed is a page; the
# healthcheck reports it stale from then on (before, it is being reconciled).
UNRECONCILED_CLOSED_DAY_GRACE: Final = timedelta(hours=2)


# Contract 6.1: day D is due by ADRECON_SLA_HOUR_UTC:00 UTC on D+1.
def sla_deadline(day: date, sla_hour_utc: int) -> datetime:
    """When day D's statistics are due: D+1 at `sla_hour_utc`:00 UTC."""
    return day_bounds(day)[1] + timedelta(hours=sla_hour_utc)


# Contract 6.3: the window of the SLA-miss and failed-check metrics.
METRICS_WINDOW_DAYS: Final = 30


# --- Alerts (contract 6): how long a sensor may fail, and when a step's duration notifies ---

# A sensor whose ticks have failed without a success for this long pages.
SENSOR_FAILING_PAGE_AFTER: Final = timedelta(minutes=10)
# A step's duration notifies when over DURATION_MEDIAN_FACTOR x the median of its last
# DURATION_HISTORY_DAYS days and over DURATION_MIN_EXCESS_SECONDS longer than that median.
DURATION_MEDIAN_FACTOR: Final = 3.0
DURATION_HISTORY_DAYS: Final = 7
DURATION_MIN_EXCESS_SECONDS: Final = 60.0


# The serving store's reconnect (contract 2 and 4.2): waits between attempts double from the
# first to the longest, within TRANSIENT_RETRY_BUDGET_SECONDS; a managed PostgreSQL failover
# takes 60-120 s, so a wait never exceeds a few seconds past the server's return.
SERVING_RECONNECT_FIRST_WAIT_SECONDS: Final = 1.0
SERVING_RECONNECT_LONGEST_WAIT_SECONDS: Final = 10.0

# --- Memory of a day's audit and serving write (issue 24: millions of keys a day) ---

# reconciled_statistics' audit (totals_balance recount, drift and corrections metadata) runs in
# an in-process DuckDB held to this much memory; beyond it DuckDB spills to the step's scratch
# folder. A day of 6.9M (offer_id, placement) keys needs ~2 GB unbounded; at 1 GB its audit
# takes ~6 CPU s against ~8.6 at 512 MB, and stays below the serving write's peak (the primary
# key's index: ~1.3 GB of the process at 6.9M keys), which is the step's (issue 24).
AUDIT_MEMORY_LIMIT: Final = "1GB"
AUDIT_THREADS: Final = 2
# Rows per chunk of a serving write streamed from Parquet (PostgreSQL's COPY) or of the previous
# rows exported from the store: ~10 MB of CSV each.
SERVING_CHUNK_ROWS: Final = 100_000
