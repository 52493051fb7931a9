"""The key-bucket layout of staged emissions, shared by both engines.

Staging writes a day's emissions as KEY_BUCKETS groups of files by a hash of rule 1's key, so
every row of a key is in the same-numbered bucket of each day. Deduplication and the join then
run in rounds of a few buckets (D-1's and D's files of those buckets) and their memory is that
of a round, not of the day. The hash is XXH64 (seed 42) of `emission_id`: Spark's built-in
`xxhash64` and the `polars-hash` plugin compute it alike, so either engine reads, bucket by
bucket, what the other staged. A folder bucketed otherwise (or not at all) is read in one round.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pyarrow.parquet as pq

from adrecon_assets import rules

KEY_BUCKETS: Final = 32
# Spark's `xxhash64` has this seed built in; the Polars plugin is given the same one.
BUCKET_HASH_SEED: Final = 42
# Hashing `emission_id` alone keeps every row of an (emission_id, offer_id) key in one bucket
# and costs half of hashing both columns.
BUCKET_COLUMN: Final = rules.EMISSION_DEDUP_KEY[0]
# About this many emission rows of D-1 and D together make one round.
ROWS_PER_ROUND: Final = 20_000_000
# part-k007.parquet (Polars: one file a bucket) or part-k007-00003.parquet (Spark: one a task).
BUCKET_FILE: Final = re.compile(r"^part-k(\d{3})(?:-\d+)?\.parquet$")
# A staged folder's bucketing, as a marker file beside its part files (readers of `*.parquet`
# do not see it); a folder without it, or with another value, is not read bucket by bucket.
BUCKETING_MARKER: Final = "_KEY_BUCKETS"
BUCKETING: Final = f"xxhash64-{BUCKET_HASH_SEED}/{BUCKET_COLUMN}/{KEY_BUCKETS}"


def bucket_file_name(bucket: int, part: int | None = None) -> str:
    return (
        f"part-k{bucket:03d}.parquet" if part is None else f"part-k{bucket:03d}-{part:05d}.parquet"
    )


def mark_bucketed(folder: Path) -> None:
    (folder / BUCKETING_MARKER).write_text(BUCKETING)


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet"))


def key_bucket_files(folder: Path) -> dict[int, list[Path]] | None:
    """A folder's files by key bucket, or None if it is not bucketed as BUCKETING says.
    A folder without rows counts as bucketed (it holds no bucket)."""
    marker = folder / BUCKETING_MARKER
    bucketed = marker.is_file() and marker.read_text() == BUCKETING
    buckets: dict[int, list[Path]] = {}
    for path in parquet_files(folder):
        if pq.ParquetFile(path).metadata.num_rows == 0:
            continue
        match = BUCKET_FILE.match(path.name)
        if match is None or not bucketed:
            return None
        buckets.setdefault(int(match.group(1)), []).append(path)
    return buckets


def emission_rounds(
    folders: list[Path], rows_per_round: int | None = None, at_least: int = 1
) -> list[list[Path]]:
    """The emission files to deduplicate together, round by round: round r holds the key
    buckets b with b % rounds == r of every folder (so every row of a key), about
    `rows_per_round` rows (ROWS_PER_ROUND by default), and there are at least `at_least`
    rounds (at most KEY_BUCKETS). Folders not bucketed alike are one round."""
    rows_per_round = rows_per_round or ROWS_PER_ROUND
    bucketed = [key_bucket_files(folder) for folder in folders]
    all_files = [path for folder in folders for path in parquet_files(folder)]
    if any(buckets is None for buckets in bucketed):
        return [all_files]
    total_rows = sum(pq.ParquetFile(path).metadata.num_rows for path in all_files)
    rounds = max(1, min(KEY_BUCKETS, max(at_least, -(-total_rows // rows_per_round))))
    return [
        [
            path
            for buckets in bucketed
            for bucket, paths in sorted((buckets or {}).items())
            if bucket % rounds == round_number
            for path in paths
        ]
        for round_number in range(rounds)
    ]
