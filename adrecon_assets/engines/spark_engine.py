"""The distributed engine: the rules of `rules.py` as Spark DataFrames, output-identical to Polars.

Both engines write the same warehouse folders (Parquet, µs UTC timestamps, int64 counts and
micros, dates), so either one can read what the other wrote.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adrecon_assets import rules
from adrecon_assets.contracts import read_file_schema
from adrecon_assets.engines.base import (
    AggregateReport,
    AnomalyReport,
    EmissionSource,
    FlagReport,
    JoinReport,
    StageReport,
)
from adrecon_assets.engines.key_buckets import (
    BUCKET_COLUMN,
    KEY_BUCKETS,
    bucket_file_name,
    emission_rounds,
    mark_bucketed,
)
from adrecon_assets.engines.spark_session import (
    PARQUET_WRITE_OPTIONS,
    apply_parity_conf,
    is_connect_session,
)
from adrecon_assets.lake import LakePartition
from adrecon_assets.rules import ColumnKind, FraudReason, IpRange, TopicSchema, day_bounds
from adrecon_assets.spark_s3a import lake_url, spark_url

SPARK_TYPES: dict[ColumnKind, T.DataType] = {
    ColumnKind.STRING: T.StringType(),
    ColumnKind.INT64: T.LongType(),
    ColumnKind.TIMESTAMP: T.TimestampType(),
}
NANOS_PER_MICRO = 1_000
# Java's `$` also matches before a final line break; Polars' (Rust) does not. `\z` is the
# end-of-input anchor that keeps "1.2.3.4\n" invalid in both engines.
JAVA_IPV4_PATTERN = rules.IPV4_PATTERN.removesuffix("$") + r"\z"
KEY_HASH = "_key_hash"
BUCKET = "_bucket"
ROUND = "_round"
# Up to this many emission rows in a join round (D-1's and D's rows of its key buckets), the
# repeated key hashes are found by sorting the 8-byte hashes on the driver (Arrow transfer and
# a numpy sort: ~2 s for 10M rows on 2 cores, against ~8 s for a Spark aggregation whose
# partial phase cannot reduce near-unique keys).
# Beyond it (160 MB of hashes), a Spark aggregation finds them without the driver; so it does
# on Spark Connect, where the driver is a gRPC client and the sort would ship every hash over
# the wire (40M hashes at 20M rows/day: the join took 247 s instead of ~70 s).
DRIVER_SORT_MAX_ROWS = 20_000_000 * 2
# Spark 4's switch for aggregations whose keys are (nearly) unique: no partial aggregation.
BYPASS_PARTIAL_AGGREGATION = "spark.sql.execution.bypassPartialAggregation"
# Every warehouse column's type, so outputs are read back with a known schema (no inference job).
WAREHOUSE_TYPES: dict[str, T.DataType] = {
    **{
        column.name: SPARK_TYPES[column.kind]
        for schema in rules.SCHEMAS.values()
        for column in schema.columns
    },
    **{measure: T.LongType() for measure in rules.STATS_MEASURES},
    "fraud_reason": T.StringType(),
    "date": T.DateType(),
    "baseline": T.DoubleType(),
    "stddev": T.DoubleType(),
    "zscore": T.DoubleType(),
    "history_days": T.LongType(),
    "is_anomaly": T.BooleanType(),
}


def warehouse_schema(columns: Iterable[str]) -> T.StructType:
    return T.StructType([T.StructField(name, WAREHOUSE_TYPES[name]) for name in columns])


def greatest(first: Any, second: Any) -> Column:
    """`F.greatest` of columns or numbers (the rules' `greatest`)."""
    return F.greatest(*(v if isinstance(v, Column) else F.lit(v) for v in (first, second)))


def micros(column: str | Column) -> Column:
    """Microseconds since the epoch: exact integer arithmetic for gaps and windows."""
    return F.unix_micros(F.col(column) if isinstance(column, str) else column)


def _typed_column(name: str, kind: ColumnKind, source: T.DataType) -> Column:
    """Cast one column to the contract type, as Polars does: integers widen, naive timestamps
    are UTC (the session time zone), nanoseconds (read as longs) floor to µs."""
    column = F.col(name)
    if kind is ColumnKind.TIMESTAMP and isinstance(source, T.LongType):
        # Exact floor division (a double would round values beyond 2**53 ns).
        whole_micros = column - F.pmod(column, F.lit(NANOS_PER_MICRO))
        column = F.timestamp_micros(
            (whole_micros.cast("decimal(20,0)") / NANOS_PER_MICRO).cast("long")
        )
    return column.cast(SPARK_TYPES[kind]).alias(name)


def quarantine_faults(schema: TopicSchema, day: date) -> list[tuple[Column, str]]:
    """The section-7 faults of a row (`rules.row_faults`), each with its reason string."""
    start, end = day_bounds(day)

    def is_fault(fault: rules.RowFault) -> Column:
        column = F.col(fault.column)
        match fault.kind:
            case rules.RowFaultKind.NULL:
                return column.isNull()
            case rules.RowFaultKind.NEGATIVE:
                return column < 0
            case rules.RowFaultKind.OUTSIDE_DAY:
                return (column < F.lit(start)) | (column >= F.lit(end))
            case rules.RowFaultKind.INVALID_IPV4:
                return ~column.rlike(JAVA_IPV4_PATTERN)

    return [(is_fault(fault), fault.reason) for fault in rules.row_faults(schema)]


def quarantine_reason(schema: TopicSchema, day: date) -> Column:
    """The first section-7 fault of a row (same strings and order as Polars), or null."""
    faults = quarantine_faults(schema, day)
    expression = F.when(faults[0][0], F.lit(faults[0][1]))
    for condition, reason in faults[1:]:
        expression = expression.when(condition, F.lit(reason))
    return expression.otherwise(F.lit(None).cast(T.StringType()))


def count_where(condition: Column, name: str) -> Column:
    return F.count(F.when(condition, True)).alias(name)


def observed(observation: Observation) -> dict[str, int]:
    """An observation's metrics as ints (a sum over no rows is null: 0)."""
    return {name: int(value or 0) for name, value in observation.get.items()}


def key_hash(key: tuple[str, ...]) -> Column:
    """A 64-bit hash of a (composite) key. Equal keys hash equal, so a hash seen once belongs to
    a key seen once; a repeated hash only makes its rows candidates, decided on the keys."""
    return F.xxhash64(*key).alias(KEY_HASH)


def with_first_flag(frame: DataFrame, key: tuple[str, ...], order: tuple[str, ...]) -> DataFrame:
    """Adds `_first`: whether the row is its key's first in `order` (rule 1's tie-breaks)."""
    rank = F.row_number().over(Window.partitionBy(*key).orderBy(*order))
    return frame.withColumn("_first", rank == 1)


def dedup_first(frame: DataFrame, key: tuple[str, ...], order: tuple[str, ...]) -> DataFrame:
    """One row per key: the first in `order`."""
    return with_first_flag(frame, key, order).filter("_first").drop("_first")


def emission_bucket() -> Column:
    """A row's key bucket (`key_buckets`): Spark's xxhash64 is the layout's XXH64, seed 42."""
    return F.pmod(F.xxhash64(BUCKET_COLUMN), F.lit(KEY_BUCKETS)).alias(BUCKET)


def join_round(rounds: int) -> Column:
    """A click's join round: that of its emission_id's key bucket (see `emission_rounds`)."""
    return F.pmod(emission_bucket(), F.lit(rounds)).alias(ROUND)


def move_parts(written: Path, folder: Path, name: Callable[[int], str]) -> int:
    """Move the part files Spark wrote into `written` to `folder` under `name(n)`, and remove
    `written`: Spark cannot name its files, the shared layouts need names. Returns the count."""
    parts = sorted(written.glob("*.parquet"))
    for number, path in enumerate(parts):
        path.rename(folder / name(number))
    shutil.rmtree(written)
    return len(parts)


@dataclass(frozen=True)
class RoundTotals:
    """What one join round contributes to the day's report."""

    dropped_rows: int
    clicks: int
    matched: int
    previous_day: int


def emissions_per_stats_key(rows: DataFrame, sign: int) -> DataFrame:
    return rows.groupBy(*rules.STATS_KEY).agg((F.count(F.lit(1)) * sign).alias("emissions"))


def ipv4_to_int(column: str) -> Column:
    octets = F.split(F.col(column), r"\.")
    return (
        octets.getItem(0).cast("long") * 16_777_216
        + octets.getItem(1).cast("long") * 65_536
        + octets.getItem(2).cast("long") * 256
        + octets.getItem(3).cast("long")
    )


def plain_paths(uris: Iterable[str]) -> Column:
    """`source_file` as the plain path Polars writes, from the `_uri` Spark names a file by.

    Spark's URI escaping differs from `Path.as_uri` (e.g. for `=`), so the URIs Spark reported
    are decoded here (Python's `unquote`, unlike Spark's `url_decode`, keeps a `+`)."""
    pairs = [(uri, lake_url(uri)) for uri in sorted(uris)]
    lookup = F.create_map(*[F.lit(item) for pair in pairs for item in pair])
    return F.coalesce(lookup[F.col("_uri")], F.col("_uri"))


def _schema_signature(file_schema: pa.Schema, schema: TopicSchema) -> tuple[str, ...]:
    return tuple(str(file_schema.field(name).type) for name in schema.column_names)


class SparkEngine:
    name = "spark"

    def __init__(self, spark: SparkSession, driver_sort_max_rows: int | None = None) -> None:
        apply_parity_conf(spark)
        self.spark = spark
        if driver_sort_max_rows is None:
            # On Spark Connect the driver is a gRPC client: the hashes would travel the wire.
            driver_sort_max_rows = 0 if is_connect_session(spark) else DRIVER_SORT_MAX_ROWS
        self.driver_sort_max_rows = driver_sort_max_rows

    def read(self, columns: Iterable[str], *folders: Path) -> DataFrame:
        """A warehouse dataset (written by either engine), read with its known schema."""
        schema = warehouse_schema(columns)
        if not folders:  # e.g. no emission source at all: an empty day
            return self.spark.createDataFrame([], schema)
        return self.spark.read.schema(schema).parquet(*(str(folder) for folder in folders))

    @staticmethod
    def write(
        frame: DataFrame, folder: Path, order: Iterable[str] = (), small: bool = False
    ) -> None:
        """Write a warehouse folder. Click-level data keeps its partitions, each sorted by
        `order` (a global sort would cost a sampling job and a shuffle, and readers do not
        depend on it); `small` outputs (one row per key) become one sorted file
        (`coalesce`, not `repartition`: small outputs follow a shuffle, so no extra one)."""
        if small:
            frame = frame.coalesce(1)
        order = list(order)
        if order:
            frame = frame.sortWithinPartitions(*order)
        frame.write.options(**PARQUET_WRITE_OPTIONS).mode("overwrite").parquet(str(folder))

    def stage_topic(
        self, partition: LakePartition, out_folder: Path, quarantine_folder: Path
    ) -> StageReport:
        schema = rules.SCHEMAS[partition.topic]
        # Files are read together when their contract columns have the same types (one scan
        # per layout); each file's footer is checked first so a bad file is named.
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for lake_file in partition.files:
            file_schema = read_file_schema(lake_file.url, schema, partition.footer_reader)
            groups[_schema_signature(file_schema, schema)].append(spark_url(lake_file.url))
        if not groups:
            self.write(
                self.spark.createDataFrame([], warehouse_schema(schema.column_names)), out_folder
            )
            return StageReport(rows_in=0, rows_out=0)
        frames = [self._typed_files(paths, schema) for paths in groups.values()]
        rows = frames[0]
        for frame in frames[1:]:
            rows = rows.unionByName(frame)
        reason = rules.QUARANTINE_REASON_COLUMN
        rows = rows.withColumn(reason, quarantine_reason(schema, partition.day))
        # One pass over the lake: the valid rows are written while every reason is counted (an
        # observation rides on the write job). The rare quarantined rows cost a second pass.
        counting = Observation()
        names = [name for _, name in quarantine_faults(schema, partition.day)]
        counted = rows.observe(
            counting,
            F.count(F.lit(1)).alias("_rows_in"),
            *[count_where(F.col(reason) == name, name) for name in names],
        )
        valid_rows = counted.filter(F.col(reason).isNull()).select(schema.column_names)
        if partition.topic is rules.Topic.EMISSIONS:
            self.write_key_buckets(valid_rows, out_folder)
        else:
            self.write(valid_rows, out_folder)
        counts = observed(counting)
        rows_in = counts.pop("_rows_in")
        quarantined = {name: count for name, count in sorted(counts.items()) if count}
        if quarantined:
            source_file = plain_paths(rows.inputFiles())
            quarantined_rows = rows.filter(F.col(reason).isNotNull()).select(
                *schema.column_names, source_file.alias(rules.SOURCE_FILE_COLUMN), reason
            )
            self.write(quarantined_rows, quarantine_folder)
        return StageReport(
            rows_in=rows_in, rows_out=rows_in - sum(quarantined.values()), quarantined=quarantined
        )

    def write_key_buckets(self, frame: DataFrame, folder: Path) -> None:
        """Staged emissions in the shared key-bucket layout (`key_buckets`): each scan task
        writes its rows of each bucket (a sort within the task, no shuffle), named by bucket."""
        written = folder / "_buckets"  # Spark's own layout, `_bucket=7/part-...`, until moved
        frame.withColumn(BUCKET, emission_bucket()).write.options(**PARQUET_WRITE_OPTIONS).mode(
            "overwrite"
        ).partitionBy(BUCKET).parquet(str(written))
        for bucket_folder in sorted(written.glob(f"{BUCKET}=*")):
            bucket = int(bucket_folder.name.partition("=")[2])
            move_parts(bucket_folder, folder, partial(bucket_file_name, bucket))
        shutil.rmtree(written)
        if not any(folder.glob("*.parquet")):  # no valid row at all: one empty file
            self.write(self.spark.createDataFrame([], frame.schema), folder)
        mark_bucketed(folder)

    def _typed_files(self, paths: list[str], schema: TopicSchema) -> DataFrame:
        raw = self.spark.read.parquet(*paths)
        source_types = {field.name: field.dataType for field in raw.schema.fields}
        return raw.select(
            *[_typed_column(c.name, c.kind, source_types[c.name]) for c in schema.columns],
            F.input_file_name().alias("_uri"),
        )

    def join_clicks(
        self,
        day: date,
        clicks_folder: Path,
        emissions: list[EmissionSource],
        joined_folder: Path,
        emission_counts_folder: Path,
    ) -> JoinReport:
        clicks = self.read(rules.CLICKS_SCHEMA.column_names, clicks_folder)
        deduplicated_clicks = dedup_first(clicks, rules.CLICK_DEDUP_KEY, rules.CLICK_DEDUP_ORDER)
        emission_columns = rules.EMISSIONS_SCHEMA.column_names
        start, end = day_bounds(day)
        emitted = F.col("emitted_at")
        of_day = (emitted >= F.lit(start)) & (emitted < F.lit(end))
        # Staged emissions are key-bucket files (`key_buckets`): a round of buckets holds every
        # row of its keys on D-1 and D, so rounds are deduplicated and joined one after the
        # other, each shuffling only its own rows (memory of a round, not of both days).
        rounds = emission_rounds([source.folder for source in emissions])
        joined_folder.mkdir(parents=True, exist_ok=True)
        totals: list[RoundTotals] = []
        with tempfile.TemporaryDirectory(
            dir=joined_folder.parent, prefix=f".{joined_folder.name.lstrip('.')}.rounds-"
        ) as scratch_name:
            scratch = Path(scratch_name)
            if len(rounds) > 1:
                # The deduplicated clicks once, by join round: each round reads its own.
                deduplicated_clicks.withColumn(ROUND, join_round(len(rounds))).write.partitionBy(
                    ROUND
                ).parquet(str(scratch / "clicks"))
            for number, files in enumerate(rounds):
                round_clicks = deduplicated_clicks
                if len(rounds) > 1:
                    round_folder = scratch / "clicks" / f"{ROUND}={number}"
                    round_clicks = self.read(
                        rules.CLICKS_SCHEMA.column_names,
                        *([round_folder] if round_folder.is_dir() else []),
                    )
                rows = self.read(emission_columns, *files)
                totals.append(
                    self._join_round(
                        rows, round_clicks, of_day, start, scratch, number, joined_folder
                    )
                )
            # Rows of D per (offer_id, placement) minus the dropped duplicates that fall on D
            # (a key seen on D-1 keeps that day's row). D's rows come from D's folders, as in
            # the Polars engine; staging keeps every row in its own day's folder.
            day_folders = [source.folder for source in emissions if source.day == day]
            day_rows = self.read(emission_columns, *day_folders)
            dropped_folder = scratch / "dropped"
            dropped = self.read(
                (*rules.STATS_KEY, "emissions"),
                *([dropped_folder] if dropped_folder.is_dir() else []),
            )
            counts = (
                emissions_per_stats_key(day_rows.filter(of_day), 1)
                .unionByName(dropped)
                .groupBy(*rules.STATS_KEY)
                .agg(F.sum("emissions").cast("long").alias("emissions"))
                .filter(F.col("emissions") > 0)
            )
            counting = Observation()
            counts = counts.observe(counting, F.sum("emissions").alias("of_day"))
            self.write(counts, emission_counts_folder, rules.STATS_KEY, small=True)
        emissions_in = self.read(
            emission_columns, *(source.folder for source in emissions)
        ).count()  # row counts from the Parquet footers
        return JoinReport(
            clicks_in=clicks.count(),
            clicks_deduplicated=sum(part.clicks for part in totals),
            emissions_in=emissions_in,
            emissions_deduplicated=emissions_in - sum(part.dropped_rows for part in totals),
            emissions_of_day=observed(counting)["of_day"],
            matched_clicks=sum(part.matched for part in totals),
            matched_previous_day=sum(part.previous_day for part in totals),
        )

    def _join_round(
        self,
        all_emissions: DataFrame,
        deduplicated_clicks: DataFrame,
        of_day: Column,
        start: object,
        scratch: Path,
        number: int,
        joined_folder: Path,
    ) -> RoundTotals:
        """Deduplicate one round's emissions (every row of their keys), join the round's
        clicks to them, and leave the round's joined clicks in `joined_folder` and its dropped
        duplicates of the day (negative counts per stats key) in `scratch/dropped`."""
        # A window over all emission rows (a shuffle and sort of every column) is what made
        # this step slow. Instead one pass over a 64-bit hash of each key finds the repeated
        # hashes: a key whose hash occurs once occurs once, so its row is its own deduplicated
        # row. Only the rows of repeated hashes and of the keys the clicks reference (a
        # broadcast join on the hash) are deduplicated exactly, on the key columns; a hash
        # collision can only add candidates, never change a result.
        rows = all_emissions.count()  # from the Parquet footers
        repeated = self._repeated_hashes(all_emissions, rows)
        wanted = repeated.union(deduplicated_clicks.select(key_hash(rules.JOIN_KEY))).distinct()
        candidate_rows = all_emissions.withColumn(
            KEY_HASH, key_hash(rules.EMISSION_DEDUP_KEY)
        ).join(F.broadcast(wanted), on=KEY_HASH, how="left_semi")
        # Every row of a candidate key is here, so `_first` is exact. A row that is not first
        # belongs to a repeated key: these are the duplicates dropped from the whole day.
        candidates = with_first_flag(
            candidate_rows.drop(KEY_HASH), rules.EMISSION_DEDUP_KEY, rules.EMISSION_DEDUP_ORDER
        ).persist()
        try:
            dropped = candidates.filter(~F.col("_first"))
            dropped_rows = dropped.count()
            emissions_per_stats_key(dropped.filter(of_day), -1).write.mode("append").parquet(
                str(scratch / "dropped")
            )
            emitted = F.col("emitted_at")
            joined = deduplicated_clicks.join(
                candidates.filter("_first").select(
                    *rules.JOIN_KEY, "placement", "click_cost_micros", "emitted_at"
                ),
                on=list(rules.JOIN_KEY),
                how="left",
            ).select(*rules.JOINED_COLUMNS)
            joining = Observation()
            joined = joined.observe(
                joining,
                F.count(F.lit(1)).alias("clicks"),
                F.count(emitted).alias("matched"),
                count_where(emitted < F.lit(start), "previous_day"),
            )
            written = scratch / f"joined-{number:03d}"
            self.write(joined, written, ["click_id"])
            move_parts(
                written, joined_folder, lambda part: f"part-r{number:03d}-{part:05d}.parquet"
            )
        finally:
            candidates.unpersist()
        totals = observed(joining)
        return RoundTotals(
            dropped_rows=dropped_rows,
            clicks=totals["clicks"],
            matched=totals["matched"],
            previous_day=totals["previous_day"],
        )

    def _repeated_hashes(self, emissions: DataFrame, rows: int) -> DataFrame:
        """The key hashes that occur more than once among `rows` emission rows."""
        hashes = emissions.select(key_hash(rules.EMISSION_DEDUP_KEY))
        if rows > self.driver_sort_max_rows:
            repeated = self._aggregated_repeats(hashes)
        else:
            values = np.sort(hashes.toArrow().column(KEY_HASH).to_numpy())  # a writable copy
            repeated = np.unique(values[1:][values[1:] == values[:-1]])
        return self.spark.createDataFrame(
            pa.table({KEY_HASH: pa.array(repeated, pa.int64())}), f"{KEY_HASH} long"
        )

    def _aggregated_repeats(self, hashes: DataFrame) -> np.ndarray:
        """The repeated hashes counted by Spark, in a job of their own: nearly every hash is
        unique, so a partial aggregation before the shuffle would only copy them once more
        (bypassed: 5.2 s instead of 7.1 s for 10M rows on 2 cores). Only the repeated ones,
        about 1 % of the rows, come back to the driver."""
        previous = self.spark.conf.get(BYPASS_PARTIAL_AGGREGATION, "false") or "false"
        self.spark.conf.set(BYPASS_PARTIAL_AGGREGATION, "true")
        try:
            counts = hashes.groupBy(KEY_HASH).count()
            table = counts.filter(F.col("count") > 1).select(KEY_HASH).toArrow()
        finally:
            self.spark.conf.set(BYPASS_PARTIAL_AGGREGATION, previous)
        return table.column(KEY_HASH).to_numpy()

    def _denylist_frame(self, denylist: list[IpRange]) -> DataFrame:
        return self.spark.createDataFrame(
            [(ip_range.first, ip_range.last) for ip_range in denylist],
            "_first long, _last long",
        )

    def flag_fraud(
        self, day: date, joined_folder: Path, denylist: list[IpRange], out_folder: Path
    ) -> FlagReport:
        joined = self.read(rules.JOINED_COLUMNS, joined_folder).withColumn("_ip", ipv4_to_int("ip"))
        # The merged ranges are disjoint, so the range join matches each click at most once.
        ranges = F.broadcast(self._denylist_frame(denylist))
        in_range = (F.col("_ip") >= F.col("_first")) & (F.col("_ip") <= F.col("_last"))
        flood_order = Window.partitionBy(*rules.FLOOD_GROUP).orderBy(*rules.FLOOD_ORDER)
        clicked = micros("clicked_at")
        with_facts = joined.join(ranges, in_range, "left").select(
            *rules.JOINED_COLUMNS,
            F.col("_first").isNotNull().alias("_denylisted"),
            F.lag(clicked, rules.FLOOD_MIN_EARLIER_CLICKS).over(flood_order).alias("_anchor"),
        )
        applies: dict[FraudReason, Column] = {
            FraudReason.NO_EMISSION: F.col("emitted_at").isNull(),
            FraudReason.TOO_FAST: clicked - micros("emitted_at") < rules.MIN_CLICK_GAP_MICROS,
            FraudReason.DENYLISTED_IP: F.col("_denylisted"),
            FraudReason.CLICK_FLOOD: F.col("_anchor") >= clicked - rules.FLOOD_WINDOW_MICROS,
        }
        first, *rest = rules.FRAUD_REASONS_IN_PRECEDENCE
        reason = F.when(applies[first], F.lit(first.value))
        for fraud_reason in rest:
            reason = reason.when(applies[fraud_reason], F.lit(fraud_reason.value))
        flagged = with_facts.withColumn(
            "fraud_reason", reason.otherwise(F.lit(None).cast(T.StringType()))
        ).select(*rules.FLAGGED_COLUMNS)
        counting = Observation()
        reason_column = F.col("fraud_reason")
        flagged = flagged.observe(
            counting,
            F.count(F.lit(1)).alias("_clicks"),
            count_where(reason_column.isNull(), "_valid"),
            *[count_where(reason_column == r.value, r.value) for r in FraudReason],
        )
        self.write(flagged, out_folder, ["click_id"])
        counts = observed(counting)
        return FlagReport(
            clicks=counts.pop("_clicks"), valid_clicks=counts.pop("_valid"), reasons=counts
        )

    def aggregate(
        self, day: date, flagged_folder: Path, emission_counts_folder: Path, out_folder: Path
    ) -> AggregateReport:
        reason = F.col("fraud_reason")
        valid = reason.isNull()
        cost = F.col("click_cost_micros")
        refunded = [fraud_reason.value for fraud_reason in rules.REFUNDED_REASONS]
        click_totals = (
            self.read(rules.FLAGGED_COLUMNS, flagged_folder)
            .filter(valid | reason.isin(refunded))
            .groupBy(*rules.STATS_KEY)
            .agg(
                F.count(F.when(valid, True)).alias("clicks"),
                # Spark sums longs as longs; the casts keep every measure int64 like Polars.
                F.sum(F.when(valid, cost).otherwise(0)).cast("long").alias("cost_micros"),
                F.count(F.when(~valid, True)).alias("fraud_clicks"),
                F.sum(F.when(valid, 0).otherwise(cost)).cast("long").alias("refund_micros"),
            )
        )
        statistics = (
            self.read(rules.EMISSION_COUNT_COLUMNS, emission_counts_folder)
            .join(click_totals, on=list(rules.STATS_KEY), how="full")
            .select(
                F.lit(day).alias("date"),
                *rules.STATS_KEY,
                *[
                    F.coalesce(F.col(m), F.lit(0)).cast("long").alias(m)
                    for m in rules.STATS_MEASURES
                ],
            )
            .select(*rules.STATS_COLUMNS)
        )
        counting = Observation()
        statistics = statistics.observe(
            counting,
            F.count(F.lit(1)).alias("rows"),
            *[F.sum(m).alias(m) for m in rules.STATS_MEASURES],
        )
        self.write(statistics, out_folder, rules.STATS_KEY, small=True)
        return AggregateReport(**observed(counting))

    def placement_anomalies(
        self, day: date, statistics_folders: dict[date, Path], out_folder: Path
    ) -> AnomalyReport:
        history_days = sorted(d for d in statistics_folders if d < day)
        daily = (
            self.read(("date", "placement", "clicks"), *statistics_folders.values())
            .groupBy("date", "placement")
            .agg(F.sum("clicks").alias("clicks"))
        )
        placements_of_day = daily.filter(F.col("date") == F.lit(day)).select("placement", "clicks")
        # Every (trailing day, placement) pair, so a day without a placement's row counts as 0.
        history = self.spark.createDataFrame([(d,) for d in history_days], "date date")
        grid = (
            history.crossJoin(placements_of_day.select("placement"))
            .join(daily, on=["date", "placement"], how="left")
            .withColumn("clicks", F.coalesce(F.col("clicks"), F.lit(0)))
        )
        baseline = grid.groupBy("placement").agg(
            F.avg(F.col("clicks").cast("double")).alias("baseline"),
            F.stddev_pop(F.col("clicks").cast("double")).alias("stddev"),
        )
        clicks = F.col("clicks").cast("double")
        base = F.col("baseline")
        is_anomaly = F.lit(rules.has_anomaly_history(len(history_days))) & rules.anomaly_condition(
            clicks, base, greatest
        )
        anomalies = (
            placements_of_day.join(baseline, on="placement", how="left")
            .select(
                F.lit(day).alias("date"),
                "placement",
                F.col("clicks").cast("long").alias("clicks"),
                "baseline",
                "stddev",
                rules.anomaly_zscore(clicks, base, F.col("stddev"), greatest, F.sqrt).alias(
                    "zscore"
                ),
                F.lit(len(history_days)).cast("long").alias("history_days"),
                F.coalesce(is_anomaly, F.lit(False)).alias("is_anomaly"),
            )
            .select(*rules.ANOMALY_COLUMNS)
        )
        counting = Observation()
        anomalies = anomalies.observe(
            counting,
            F.count(F.lit(1)).alias("placements"),
            count_where(F.col("is_anomaly"), "anomalies"),
        )
        self.write(anomalies, out_folder, ["placement"], small=True)
        return AnomalyReport(**observed(counting), history_days=len(history_days))
