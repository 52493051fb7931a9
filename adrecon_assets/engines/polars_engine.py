"""The single-machine engine: Polars lazy scans, written with the streaming engine."""

from __future__ import annotations

import operator
import tempfile
from dataclasses import dataclass
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import polars_hash

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
from adrecon_assets.engines.key_bucket_writer import BUCKET, KeyBucketWriter, key_bucket_writer
from adrecon_assets.engines.key_buckets import (
    BUCKET_COLUMN,
    BUCKET_HASH_SEED,
    KEY_BUCKETS,
    emission_rounds,
    mark_bucketed,
    parquet_files,
)
from adrecon_assets.lake import LakePartition
from adrecon_assets.rules import ColumnKind, FraudReason, IpRange, TopicSchema, day_bounds

PART_FILE = "part-00000.parquet"
KEY_HASH = "_key_hash"
ROW_INDEX = "_row"
DEDUP_HASH = "_dedup_hash"
# Click-level steps work in chunks of about this many clicks, split by a hash of the key their
# rule needs whole (click_id for rule 1, user and offer for the flood window). The join then
# takes the deduplicated clicks round by round with the emissions (`key_buckets`): a click goes
# to the round of its emission_id's key bucket, so a round joins its own clicks to its matches.
CLICKS_PER_CHUNK: Final = 2_000_000
# Warehouse files are intermediates read back within the hour: LZ4 writes a 20M-row day about
# 3.5x faster than zstd (benchmarks/RESULTS.md) for files about 1.5x larger.
WAREHOUSE_COMPRESSION: Final = "lz4"
# The join's scratch files live for one step and are read back once: uncompressed Arrow IPC
# writes 2.8M counted keys in 0.05 CPU s against Parquet's 0.30 (issue 24), for larger files.
SCRATCH_COMPRESSION: Final = "uncompressed"
TIMESTAMP = pl.Datetime("us", "UTC")
EMISSION_COUNT_SCHEMA = pl.Schema(
    {**dict.fromkeys(rules.STATS_KEY, pl.String()), "emissions": pl.Int64()}
)
POLARS_TYPES: dict[ColumnKind, pl.DataType] = {
    ColumnKind.STRING: pl.String(),
    ColumnKind.INT64: pl.Int64(),
    ColumnKind.TIMESTAMP: TIMESTAMP,
}


def polars_schema(schema: TopicSchema) -> pl.Schema:
    return pl.Schema({column.name: POLARS_TYPES[column.kind] for column in schema.columns})


def scan(folder: Path) -> pl.LazyFrame:
    return pl.scan_parquet(folder / "*.parquet")


def scan_emission_files(files: list[Path]) -> pl.LazyFrame:
    """Staged emission rows of these files (a round may have none: then no rows)."""
    if not files:
        return pl.LazyFrame(schema=polars_schema(rules.EMISSIONS_SCHEMA))
    return pl.scan_parquet(files)


def write(frame: pl.LazyFrame | pl.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(
            folder / PART_FILE, compression=WAREHOUSE_COMPRESSION, engine="streaming"
        )
    else:
        frame.write_parquet(folder / PART_FILE, compression=WAREHOUSE_COMPRESSION)


def _typed_columns(file_schema: dict[str, pl.DataType], schema: TopicSchema) -> list[pl.Expr]:
    """Cast one file's columns to the contract types (integers widen, timestamps go to µs UTC)."""
    expressions = []
    for column in schema.columns:
        expression = pl.col(column.name)
        if column.kind is ColumnKind.TIMESTAMP:
            source = file_schema[column.name]
            if isinstance(source, pl.Datetime) and source.time_zone is None:
                expression = expression.dt.replace_time_zone("UTC")
            else:
                expression = expression.dt.convert_time_zone("UTC")
            expression = expression.dt.cast_time_unit("us")
        else:
            expression = expression.cast(POLARS_TYPES[column.kind], strict=True)
        expressions.append(expression.alias(column.name))
    return expressions


def quarantine_reason(schema: TopicSchema, day: date) -> pl.Expr:
    """The first section-7 fault of a row (`rules.row_faults`), or null for a good row."""
    start, end = day_bounds(day)

    def is_fault(fault: rules.RowFault) -> pl.Expr:
        column = pl.col(fault.column)
        match fault.kind:
            case rules.RowFaultKind.NULL:
                return column.is_null()
            case rules.RowFaultKind.NEGATIVE:
                return column < 0
            case rules.RowFaultKind.OUTSIDE_DAY:
                return (column < start) | (column >= end)
            case rules.RowFaultKind.INVALID_IPV4:
                return ~column.str.contains(rules.IPV4_PATTERN)

    # Built from the last fault outwards, so the first fault that applies gives the reason.
    expression: pl.Expr = pl.lit(None, dtype=pl.String)
    for fault in reversed(rules.row_faults(schema)):
        expression = pl.when(is_fault(fault)).then(pl.lit(fault.reason)).otherwise(expression)
    return expression


def key_hash(key: tuple[str, ...]) -> pl.Expr:
    """A 64-bit hash of a (composite) key. Equal keys hash equal, so a hash seen once belongs to
    a key seen once; a repeated hash only makes its rows candidates, decided on the keys."""
    hashes = [pl.col(name).hash(seed=position) for position, name in enumerate(key)]
    return reduce(operator.xor, hashes).alias(KEY_HASH)


def repeated_values(values: pl.Series) -> pl.Series:
    """The distinct values occurring more than once. NumPy's sort of tens of millions of u64
    (vectorised, one core) takes half the CPU of Polars' (issue 24: 0.29 against 0.59 CPU s
    for a round's 18.9M hashes), and a third of a hash-based `is_duplicated`."""
    ordered = np.sort(values.to_numpy())
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    first_of_run = np.ones(len(repeats), dtype=bool)
    first_of_run[1:] = repeats[1:] != repeats[:-1]
    return pl.Series(values.name, repeats[first_of_run], dtype=values.dtype)


def dedup_first(frame: pl.DataFrame, key: tuple[str, ...], order: tuple[str, ...]) -> pl.DataFrame:
    """One row per key: the first in `order` (rule 1's tie-breaks, fully deterministic).

    Most keys occur once, so only the rows whose key hash repeats are sorted to pick their
    first: by the hash, then `order`. A key's rows share its hash, so they stay in `order`
    whatever other key shares it; sorting by a u64 instead of the key's strings takes half
    the CPU (issue 24)."""
    hashes = frame.select(key_hash(key)).to_series()
    repeated = hashes.is_duplicated()
    first_of_repeated = (
        frame.filter(repeated)
        .with_columns(hashes.filter(repeated).alias(DEDUP_HASH))
        .sort([DEDUP_HASH, *order])
        .unique(subset=list(key), keep="first", maintain_order=True)
        .drop(DEDUP_HASH)
    )
    return pl.concat([frame.filter(~repeated), first_of_repeated])


def emissions_per_stats_key(rows: pl.LazyFrame) -> pl.LazyFrame:
    return rows.group_by(rules.STATS_KEY).agg(pl.len().cast(pl.Int64).alias("emissions"))


def ipv4_to_int(column: str) -> pl.Expr:
    octets = pl.col(column).str.split(".")
    return (
        octets.list.get(0).cast(pl.Int64) * 16_777_216
        + octets.list.get(1).cast(pl.Int64) * 65_536
        + octets.list.get(2).cast(pl.Int64) * 256
        + octets.list.get(3).cast(pl.Int64)
    )


def in_ranges(addresses: pl.Series, ranges: list[IpRange]) -> pl.Series:
    """Whether each address lies in one of the sorted, disjoint inclusive ranges."""
    if not ranges:
        return pl.Series(np.zeros(len(addresses), dtype=bool))
    firsts = np.array([ip_range.first for ip_range in ranges], dtype=np.int64)
    lasts = np.array([ip_range.last for ip_range in ranges], dtype=np.int64)
    values = addresses.to_numpy()
    index = np.searchsorted(firsts, values, side="right") - 1
    inside = (index >= 0) & (values <= lasts[np.clip(index, 0, None)])
    return pl.Series(inside)


def emission_bucket() -> pl.Expr:
    """A row's key bucket (`key_buckets`: the same XXH64 as Spark's `xxhash64`)."""
    hashed = polars_hash.col(BUCKET_COLUMN).nchash.xxhash64(seed=BUCKET_HASH_SEED)
    return (hashed % KEY_BUCKETS).cast(pl.Int64).alias(BUCKET)


def valid_rows_sink(
    valid_rows: pl.LazyFrame, topic: rules.Topic, folder: Path, bucket_writer: KeyBucketWriter
) -> pl.LazyFrame:
    """The lazy sink of a topic's valid rows: clicks as one file, emissions by key bucket."""
    if topic is not rules.Topic.EMISSIONS:
        return valid_rows.sink_parquet(
            folder / PART_FILE, compression=WAREHOUSE_COMPRESSION, lazy=True
        )
    # Rows of a bucket need no order (every reader takes a bucket whole), so batches are
    # handed over as they come.
    return valid_rows.with_columns(emission_bucket()).sink_batches(
        bucket_writer, lazy=True, maintain_order=False
    )


def flood_anchor() -> pl.Expr:
    """On clicks sorted by FLOOD_GROUP then FLOOD_ORDER: the clicked_at of the click
    FLOOD_MIN_EARLIER_CLICKS rows earlier if it is of the same group (then so are the rows
    between), else null. A shift over the sorted rows instead of `shift().over(group)`, whose
    hashing of the group's two strings took 1.3 s per 1.4M clicks (issue 24)."""
    earlier = rules.FLOOD_MIN_EARLIER_CLICKS
    same_group = pl.all_horizontal(
        [pl.col(name).shift(earlier) == pl.col(name) for name in rules.FLOOD_GROUP]
    )
    return pl.when(same_group).then(pl.col("clicked_at").shift(earlier))


def click_chunks(frame: pl.LazyFrame) -> int:
    rows = frame.select(pl.len()).collect().item()
    return max(1, -(-rows // CLICKS_PER_CHUNK))


def chunk_of(frame: pl.LazyFrame, key: tuple[str, ...], chunks: int, chunk: int) -> pl.DataFrame:
    """The rows of one chunk: those whose `key` hashes to it (all rows when one chunk)."""
    if chunks == 1:
        return frame.collect()
    return frame.filter(key_hash(key) % chunks == chunk).collect(engine="streaming")


def chunk_file(folder: Path, chunk: int) -> Path:
    return folder / f"part-{chunk:05d}.parquet"


def clear_parquet(folder: Path) -> None:
    """Remove a folder's part files before writing it chunk by chunk."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.parquet"):
        path.unlink()


def join_round(rounds: int) -> pl.Expr:
    """A click's join round: that of its emission_id's key bucket (see `emission_rounds`),
    so the round that deduplicates a key's emissions also holds every click of that key."""
    return (emission_bucket() % rounds).alias("_round")


def scratch_prefix(output: Path) -> str:
    """The name of a scratch folder beside `output`: hidden, and starting with the output's
    name, so a crashed write's scratch is a leftover the next write of it removes."""
    return f".{output.name.lstrip('.')}.clicks-"


def round_file(scratch: Path, number: int, chunk: int) -> Path:
    return scratch / f"round-{number:03d}-chunk-{chunk:05d}.arrow"


def deduplicate_clicks_by_round(
    clicks: pl.LazyFrame, chunks: int, rounds: int, scratch: Path
) -> int:
    """Rule 1 on clicks in chunks by click_id; each chunk's surviving clicks are written to
    the scratch files of their join rounds. Returns the clicks read."""
    clicks_in = 0
    for chunk in range(chunks):
        rows = chunk_of(clicks, rules.CLICK_DEDUP_KEY, chunks, chunk)
        clicks_in += rows.height
        survivors = dedup_first(rows, rules.CLICK_DEDUP_KEY, rules.CLICK_DEDUP_ORDER)
        del rows
        by_round = survivors.with_columns(join_round(rounds)).partition_by(
            "_round", as_dict=True, include_key=False
        )
        del survivors
        for (number,), part in by_round.items():
            part.write_ipc(round_file(scratch, int(number), chunk), compression=SCRATCH_COMPRESSION)
    return clicks_in


def read_clicks_of_round(scratch: Path, number: int) -> pl.DataFrame:
    files = sorted(scratch.glob(f"round-{number:03d}-chunk-*.arrow"))
    if not files:
        return pl.DataFrame(schema=polars_schema(rules.CLICKS_SCHEMA))
    return pl.scan_ipc(files).collect()


@dataclass(frozen=True)
class DedupRound:
    """What one round of emission deduplication contributes to the day."""

    rows: int
    dropped_rows_of_day: pl.DataFrame
    survivors_of_day: pl.DataFrame
    dropped_rows: int


def counts_file(scratch: Path, part: int, number: int, kind: str) -> Path:
    return scratch / f"counts-{part:03d}-round-{number:03d}-{kind}.arrow"


def write_counts_by_part(
    counts: pl.DataFrame, parts: int, scratch: Path, number: int, kind: str
) -> None:
    """Rows of (offer_id, placement, emissions) to scratch, split by a hash of the key, so the
    day's counts are summed part by part: millions of keys never sit in one hash table."""
    by_part = counts.with_columns((key_hash(rules.STATS_KEY) % parts).alias("_part"))
    for (part,), frame in by_part.partition_by("_part", as_dict=True, include_key=False).items():
        frame.write_ipc(
            counts_file(scratch, int(part), number, kind), compression=SCRATCH_COMPRESSION
        )


def write_counts_of_day(
    day_files: list[Path], of_day: pl.Expr, parts: int, scratch: Path, number: int
) -> None:
    """One round's rows of D per (offer_id, placement), repeated keys' rows included: the
    round's corrections (`write_count_corrections`) go beside them unsummed, and
    `sum_partial_counts` adds both up, which saves a second group_by of the round's millions
    of keys. (Run in a second thread beside the deduplication it saved about 1 s of the
    100M-row day's join for 0.4 GiB more peak memory: not done, issue 24.)"""
    rows = scan_emission_files(day_files)
    counts = emissions_per_stats_key(rows.filter(of_day)).collect(engine="streaming")
    write_counts_by_part(counts, parts, scratch, number, "rows")


def write_count_corrections(summary: DedupRound, parts: int, scratch: Path, number: int) -> None:
    """What deduplication changes in a round's counts of D: minus the rows of D of its repeated
    keys, plus their deduplicated rows that fall on D (a key seen on D-1 keeps that row).
    `sum_partial_counts` adds them up with the rows' counts of every round."""
    corrections = pl.concat(
        [
            summary.dropped_rows_of_day.with_columns(-pl.col("emissions")),
            summary.survivors_of_day,
        ]
    )
    write_counts_by_part(corrections, parts, scratch, number, "corrections")


def sum_partial_counts(parts: int, scratch: Path, counts_folder: Path) -> int:
    """The rounds' partial counts summed part by part into `counts_folder` (keys with no
    emission of D left out); returns the day's deduplicated emissions."""
    emissions_of_day = 0
    for part in range(parts):
        files = sorted(scratch.glob(f"counts-{part:03d}-round-*.arrow"))
        if not files:
            continue
        counts = (
            pl.scan_ipc(files)
            .group_by(rules.STATS_KEY)
            .agg(pl.col("emissions").sum())
            .filter(pl.col("emissions") > 0)
            # In key order: the aggregate's statistics then reach the serving store's primary
            # key index in runs of ascending keys, which it inserts faster than random ones
            # (issue 24, 20M-row day with 4.1M keys, back to back: reconciled_statistics 7.8 and
            # 8.0 s with this sort, 10.7 s without; the join's time did not measurably change).
            .sort(rules.STATS_KEY)
            .collect(engine="streaming")
        )
        counts.write_parquet(chunk_file(counts_folder, part), compression=WAREHOUSE_COMPRESSION)
        emissions_of_day += int(counts["emissions"].sum())
    if not any(counts_folder.glob("*.parquet")):  # no emission of D: one empty file
        write(pl.DataFrame(schema=EMISSION_COUNT_SCHEMA), counts_folder)
    return emissions_of_day


@dataclass(frozen=True)
class HashedRound:
    """A round's emission rows after the hash pass: which key hashes repeat, and the scan
    positions of the rows to read in full (those of repeated or clicked keys)."""

    rows: pl.LazyFrame
    rows_read: int
    repeated: pl.Series
    positions: pl.Series


def hash_round(files: list[Path], click_hashes: pl.Series) -> HashedRound:
    """One pass over a round's emission rows hashing every (emission_id, offer_id) key. The
    rows to read in full are then found by their position in the scan: hashing every row's
    two strings again cost 0.25 CPU s more a round (issue 24). The (row, hash) pairs, 19M a
    round, are freed when this returns."""
    rows = scan_emission_files(files)
    hashes = (
        rows.with_row_index(ROW_INDEX)
        .select(ROW_INDEX, key_hash(rules.EMISSION_DEDUP_KEY))
        .collect(engine="streaming")
    )
    repeated = repeated_values(hashes[KEY_HASH])
    wanted = pl.concat([repeated, click_hashes]).implode()
    positions = hashes.filter(pl.col(KEY_HASH).is_in(wanted))[ROW_INDEX]
    return HashedRound(rows, hashes.height, repeated, positions)


class PolarsEngine:
    name = "polars"

    def stage_topic(
        self, partition: LakePartition, out_folder: Path, quarantine_folder: Path
    ) -> StageReport:
        schema = rules.SCHEMAS[partition.topic]
        frames = []
        for lake_file in partition.files:
            arrow_schema = read_file_schema(lake_file.url, schema, partition.footer_reader)
            file_schema = pl.DataFrame(arrow_schema.empty_table()).schema
            frames.append(
                # A local path or an s3:// URL with the lake's storage options (contract 2.1).
                pl.scan_parquet(lake_file.url, storage_options=partition.storage_options)
                .select(_typed_columns(dict(file_schema), schema))
                .with_columns(pl.lit(lake_file.url).alias(rules.SOURCE_FILE_COLUMN))
            )
        if not frames:
            empty = pl.DataFrame(schema=polars_schema(schema))
            write(empty, out_folder)
            return StageReport(rows_in=0, rows_out=0)
        rows = pl.concat(frames).with_columns(
            quarantine_reason(schema, partition.day).alias(rules.QUARANTINE_REASON_COLUMN)
        )
        reason = pl.col(rules.QUARANTINE_REASON_COLUMN)
        out_folder.mkdir(parents=True, exist_ok=True)
        quarantine_existed = quarantine_folder.is_dir()
        quarantine_folder.mkdir(parents=True, exist_ok=True)
        quarantine_file = quarantine_folder / PART_FILE
        valid_rows = rows.filter(reason.is_null()).select(schema.column_names)
        with key_bucket_writer(out_folder) as bucket_writer:
            # Both sinks in one streaming query: the lake is read once, not once per output.
            pl.collect_all(
                [
                    valid_rows_sink(valid_rows, partition.topic, out_folder, bucket_writer),
                    rows.filter(reason.is_not_null()).sink_parquet(
                        quarantine_file, compression=WAREHOUSE_COMPRESSION, lazy=True
                    ),
                ],
                engine="streaming",
            )
        if not any(out_folder.glob("*.parquet")):  # no valid row at all: one empty file
            write(pl.DataFrame(schema=polars_schema(schema)), out_folder)
        if partition.topic is rules.Topic.EMISSIONS:
            mark_bucketed(out_folder)
        rows_out = scan(out_folder).select(pl.len()).collect().item()
        counts: dict[str, int] = dict(
            pl.scan_parquet(quarantine_file)
            .group_by(rules.QUARANTINE_REASON_COLUMN)
            .len()
            .sort(rules.QUARANTINE_REASON_COLUMN)
            .collect()
            .iter_rows()
        )
        if not counts:
            quarantine_file.unlink()
            if not quarantine_existed:
                quarantine_folder.rmdir()
        return StageReport(
            rows_in=rows_out + sum(counts.values()), rows_out=rows_out, quarantined=counts
        )

    def join_clicks(
        self,
        day: date,
        clicks_folder: Path,
        emissions: list[EmissionSource],
        joined_folder: Path,
        emission_counts_folder: Path,
    ) -> JoinReport:
        start, end = day_bounds(day)
        emitted = pl.col("emitted_at")
        of_day = (emitted >= start) & (emitted < end)
        clicks = scan(clicks_folder)
        chunks = click_chunks(clicks)
        # At least as many rounds as click chunks: a round holds about one chunk of clicks.
        rounds = emission_rounds([source.folder for source in emissions], at_least=chunks)
        clear_parquet(joined_folder)
        clear_parquet(emission_counts_folder)
        day_files = {
            path
            for source in emissions
            if source.day == day
            for path in parquet_files(source.folder)
        }
        clicks_deduplicated = matched = matched_previous_day = 0
        emissions_in = emissions_dropped = 0
        with tempfile.TemporaryDirectory(
            dir=joined_folder.parent, prefix=scratch_prefix(joined_folder)
        ) as scratch:
            clicks_in = deduplicate_clicks_by_round(clicks, chunks, len(rounds), Path(scratch))
            for number, files in enumerate(rounds):
                round_clicks = read_clicks_of_round(Path(scratch), number)
                click_hashes = round_clicks.select(key_hash(rules.JOIN_KEY)).to_series().unique()
                hashed = hash_round(files, click_hashes)
                summary, matches = self._dedup_round(hashed, of_day)
                del hashed
                write_counts_of_day(
                    [path for path in files if path in day_files],
                    of_day,
                    len(rounds),
                    Path(scratch),
                    number,
                )
                write_count_corrections(summary, len(rounds), Path(scratch), number)
                joined = (
                    round_clicks.join(matches, on=list(rules.JOIN_KEY), how="left")
                    .select(rules.JOINED_COLUMNS)
                    .sort("click_id")
                )
                joined.write_parquet(
                    chunk_file(joined_folder, number), compression=WAREHOUSE_COMPRESSION
                )
                emissions_in += summary.rows
                emissions_dropped += summary.dropped_rows
                clicks_deduplicated += joined.height
                matched += joined.filter(emitted.is_not_null()).height
                matched_previous_day += joined.filter(emitted < start).height
                del round_clicks, click_hashes, summary, matches, joined
            emissions_of_day = sum_partial_counts(
                len(rounds), Path(scratch), emission_counts_folder
            )
        return JoinReport(
            clicks_in=clicks_in,
            clicks_deduplicated=clicks_deduplicated,
            emissions_in=emissions_in,
            emissions_deduplicated=emissions_in - emissions_dropped,
            emissions_of_day=emissions_of_day,
            matched_clicks=matched,
            matched_previous_day=matched_previous_day,
        )

    @staticmethod
    def _dedup_round(hashed: HashedRound, of_day: pl.Expr) -> tuple[DedupRound, pl.DataFrame]:
        """Deduplicate the emission rows of some whole key buckets (every row of their keys);
        returns the round's counts and its deduplicated rows of the clicked and repeated keys.

        Sorting every emission row of D-1 and D to deduplicate them is what makes a naive
        job slow. Instead one pass hashes every key (`hash_round`): a key whose hash occurs
        once occurs once, so its row is its own deduplicated row. Only the rows of repeated
        hashes and of the keys that clicks reference are read in full and deduplicated
        exactly on the keys."""
        repeated = hashed.repeated
        candidate_rows = (
            hashed.rows.with_row_index(ROW_INDEX)
            .filter(pl.col(ROW_INDEX).is_in(hashed.positions.implode()))
            .drop(ROW_INDEX)
            .with_columns(key_hash(rules.EMISSION_DEDUP_KEY))
            .collect(engine="streaming")
        )
        # Every row of every day of a candidate key is here, so its first row is exact.
        candidates = dedup_first(
            candidate_rows, rules.EMISSION_DEDUP_KEY, rules.EMISSION_DEDUP_ORDER
        )
        repeated_key = pl.col(KEY_HASH).is_in(repeated.implode())
        repeated_rows = candidate_rows.filter(repeated_key)
        survivors = candidates.filter(repeated_key)
        summary = DedupRound(
            rows=hashed.rows_read,
            dropped_rows_of_day=emissions_per_stats_key(
                repeated_rows.lazy().filter(of_day)
            ).collect(),
            survivors_of_day=emissions_per_stats_key(survivors.lazy().filter(of_day)).collect(),
            dropped_rows=repeated_rows.height - survivors.height,
        )
        matches = candidates.select(*rules.JOIN_KEY, "placement", "click_cost_micros", "emitted_at")
        return summary, matches

    def flag_fraud(
        self, day: date, joined_folder: Path, denylist: list[IpRange], out_folder: Path
    ) -> FlagReport:
        group = list(rules.FLOOD_GROUP)
        clicked = pl.col("clicked_at")
        window = pl.duration(microseconds=rules.FLOOD_WINDOW_MICROS)
        gap = pl.duration(microseconds=rules.MIN_CLICK_GAP_MICROS)
        applies: dict[FraudReason, pl.Expr] = {
            FraudReason.NO_EMISSION: pl.col("emitted_at").is_null(),
            FraudReason.TOO_FAST: clicked - pl.col("emitted_at") < gap,
            FraudReason.DENYLISTED_IP: pl.col("_denylisted"),
            FraudReason.CLICK_FLOOD: pl.col("_flood_anchor") >= clicked - window,
        }
        # Built from the last reason outwards, so the first reason that applies is given.
        reason: pl.Expr = pl.lit(None, dtype=pl.String)
        for fraud_reason in reversed(rules.FRAUD_REASONS_IN_PRECEDENCE):
            reason = (
                pl.when(applies[fraud_reason]).then(pl.lit(fraud_reason.value)).otherwise(reason)
            )
        # Clicks in chunks by (user_id, offer_id): a flood window never spans two chunks.
        joined_rows = scan(joined_folder)
        chunks = click_chunks(joined_rows)
        clear_parquet(out_folder)
        clicks = valid_clicks = 0
        reasons: dict[str, int] = {}
        for chunk in range(chunks):
            joined = chunk_of(joined_rows, rules.FLOOD_GROUP, chunks, chunk)
            denylisted = in_ranges(joined.select(ipv4_to_int("ip")).to_series(), denylist)
            flagged = (
                joined.with_columns(denylisted.alias("_denylisted"))
                .sort([*group, *rules.FLOOD_ORDER])
                .with_columns(flood_anchor().alias("_flood_anchor"))
                .with_columns(reason.alias("fraud_reason"))
                .select(rules.FLAGGED_COLUMNS)
                .sort("click_id")
            )
            flagged.write_parquet(chunk_file(out_folder, chunk), compression=WAREHOUSE_COMPRESSION)
            clicks += flagged.height
            for name, count in flagged.group_by("fraud_reason").len().iter_rows():
                if name is None:
                    valid_clicks += count
                else:
                    reasons[name] = reasons.get(name, 0) + count
            del joined, flagged
        return FlagReport(
            clicks=clicks,
            valid_clicks=valid_clicks,
            reasons={reason.value: int(reasons.get(reason.value, 0)) for reason in FraudReason},
        )

    def aggregate(
        self, day: date, flagged_folder: Path, emission_counts_folder: Path, out_folder: Path
    ) -> AggregateReport:
        reason = pl.col("fraud_reason")
        valid = reason.is_null()
        cost = pl.col("click_cost_micros")
        click_totals = (
            scan(flagged_folder)
            .filter(reason.is_null() | reason.is_in([r.value for r in rules.REFUNDED_REASONS]))
            .group_by(rules.STATS_KEY)
            .agg(
                valid.sum().cast(pl.Int64).alias("clicks"),
                pl.when(valid).then(cost).otherwise(0).sum().cast(pl.Int64).alias("cost_micros"),
                (~valid).sum().cast(pl.Int64).alias("fraud_clicks"),
                pl.when(valid).then(0).otherwise(cost).sum().cast(pl.Int64).alias("refund_micros"),
            )
        )
        statistics = (
            scan(emission_counts_folder)
            .join(click_totals, on=list(rules.STATS_KEY), how="full", coalesce=True)
            .with_columns(
                pl.col(rules.STATS_MEASURES).fill_null(0).cast(pl.Int64),
                pl.lit(day).alias("date"),
            )
            .select(rules.STATS_COLUMNS)
        )
        # Streamed to the file, unsorted: no reader depends on the rows' order, and sorting a
        # day's millions of keys in memory was the whole run's peak (issue 24: 1.57 GiB for
        # this step at 6.9M keys, 1.04 GiB streamed, in half the time).
        write(statistics, out_folder)
        totals = (
            pl.scan_parquet(out_folder / PART_FILE)  # exactly the file just written
            .select(pl.len().alias("_rows"), pl.col(rules.STATS_MEASURES).sum())
            .collect()
            .row(0, named=True)
        )
        rows = totals.pop("_rows")
        return AggregateReport(rows=int(rows), **{k: int(v) for k, v in totals.items()})

    def placement_anomalies(
        self, day: date, statistics_folders: dict[date, Path], out_folder: Path
    ) -> AnomalyReport:
        history_days = sorted(d for d in statistics_folders if d < day)
        daily = (
            pl.concat(
                [
                    scan(folder).select("date", "placement", "clicks")
                    for folder in statistics_folders.values()
                ]
            )
            .group_by("date", "placement")
            .agg(pl.col("clicks").sum())
        )
        placements_of_day = daily.filter(pl.col("date") == day).select("placement", "clicks")
        # Every (trailing day, placement) pair, so a day without a placement's row counts as 0.
        grid = (
            pl.LazyFrame({"date": history_days}, schema={"date": pl.Date})
            .join(placements_of_day.select("placement"), how="cross")
            .join(daily, on=["date", "placement"], how="left")
            .with_columns(pl.col("clicks").fill_null(0))
        )
        baseline = grid.group_by("placement").agg(
            pl.col("clicks").mean().alias("baseline"),
            pl.col("clicks").std(ddof=0).alias("stddev"),
        )
        history = len(history_days)
        clicks = pl.col("clicks").cast(pl.Float64)
        base = pl.col("baseline")
        anomalies = (
            placements_of_day.join(baseline, on="placement", how="left")
            .with_columns(
                pl.lit(day).alias("date"),
                pl.lit(history).cast(pl.Int64).alias("history_days"),
                pl.col("clicks").cast(pl.Int64),
                rules.anomaly_zscore(
                    clicks, base, pl.col("stddev"), pl.max_horizontal, pl.Expr.sqrt
                ).alias("zscore"),
                (
                    pl.lit(rules.has_anomaly_history(history))
                    & rules.anomaly_condition(clicks, base, pl.max_horizontal)
                )
                .fill_null(False)
                .alias("is_anomaly"),
            )
            .select(rules.ANOMALY_COLUMNS)
            .sort("placement")
            .collect()
        )
        write(anomalies, out_folder)
        return AnomalyReport(
            placements=anomalies.height,
            anomalies=int(anomalies["is_anomaly"].sum()),
            history_days=history,
        )
