"""The Polars engine's writer of staged emissions: batches of rows into key-bucket Parquet files.

Staging a day of emissions is mostly Parquet encoding (issue 24: ~16 of raw_emissions' 18 s on
the 100M-row day). Polars' own writer tries a dictionary on every string column of every row
group (a hash of each value: a quarter of the step's CPU) and has no per-column switch; the
staged files are read back only by this project's two engines, whole bucket by whole bucket.
So the rows are written here with pyarrow, which takes the encoding per column: a dictionary
only where values repeat, plain values elsewhere, no statistics (no reader prunes on
them). Polars still reads, validates and hashes the lake; its streaming engine hands each
batch to `KeyBucketWriter`, whose threads split it by bucket and encode while Polars reads on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from adrecon_assets.engines.key_buckets import KEY_BUCKETS, bucket_file_name

BUCKET: Final = "_bucket"
# The one staged column with few distinct values (tens of placements): its dictionary makes
# the column tiny. `emission_id` is mostly distinct within a row group. A dictionary for
# `offer_id` was measured both ways (benchmarks/RESULTS.md, `stage11`): it makes a small
# catalogue's join read cheaper (20M simulated day: 1.3 instead of 1.6 CPU s) but costs the
# 100M high-cardinality day's staging ~5 CPU s and saves no bytes there (4.7 GB either way).
DICTIONARY_COLUMNS: Final = ["placement"]
# Measured on the 100M-row high-cardinality day (benchmarks/RESULTS.md, `stage11`): uncompressed
# files take ~7 CPU s less to stage than LZ4 ones, for 4.7 instead of 2.5 GB a day on disk.
STAGED_COMPRESSION: Final = "none"
# About Polars' own row-group size, so the join's reads split alike.
ROWS_PER_ROW_GROUP: Final = 128 * 1024
# Batches being split and encoded at once: both cores, and a bound on the rows held in memory.
WRITER_THREADS: Final = 2
BATCHES_IN_FLIGHT: Final = 4


class KeyBucketWriter:
    """Writes rows carrying a BUCKET column into one Parquet file per key bucket of `folder`.

    Call it with each batch (it is a `sink_batches` callback), then `close()`. A batch is split
    by bucket on a worker thread; a bucket's rows are buffered until a row group is full, then
    encoded by the thread that filled it. Rows of a bucket keep no particular order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pool = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="key-bucket-writer")
        self._in_flight = threading.BoundedSemaphore(BATCHES_IN_FLIGHT)
        self._futures: list[Future[None]] = []
        self._buffer_lock = threading.Lock()
        self._buffers: dict[int, list[pa.Table]] = {}
        self._buffered_rows: dict[int, int] = {}
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._writer_locks = {bucket: threading.Lock() for bucket in range(KEY_BUCKETS)}

    def __call__(self, batch: pl.DataFrame) -> None:
        self._raise_failure()
        self._in_flight.acquire()
        try:
            future = self._pool.submit(self._split, batch)
        except BaseException:
            self._in_flight.release()
            raise
        future.add_done_callback(lambda _: self._in_flight.release())
        self._futures.append(future)

    def close(self) -> None:
        """Write what is still buffered and complete the files."""
        try:
            for future in self._futures:
                future.result()
            rest = [(bucket, self._take(bucket)) for bucket in list(self._buffers)]
            for written in [self._pool.submit(self._write, *bucket_rows) for bucket_rows in rest]:
                written.result()
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop the threads and close the files as they are (a failed staging discards them)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        # Drop the buffered rows now: a retry of the step must not find them still held by
        # the traceback of the failed attempt.
        self._buffers.clear()
        self._futures.clear()
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _raise_failure(self) -> None:
        """A failed batch stops the query at the next batch, not only at `close`."""
        done = [future for future in self._futures if future.done()]
        for future in done:
            future.result()
        self._futures = [future for future in self._futures if not future.done()]

    def _split(self, batch: pl.DataFrame) -> None:
        """Buffer a batch's rows by bucket; write the buckets that fill a row group."""
        buckets = batch.get_column(BUCKET).to_numpy().astype(np.uint8)
        # A stable radix sort of the small bucket numbers, then one gather of the batch: about
        # half the cost of `partition_by`, which hashes the bucket column to group it.
        order = pl.Series(np.argsort(buckets, kind="stable").astype(np.uint32))
        rows = batch.select(pl.exclude(BUCKET).gather(order)).to_arrow(
            compat_level=pl.CompatLevel.newest()
        )
        full = []
        start = 0
        with self._buffer_lock:
            for bucket, count in enumerate(np.bincount(buckets, minlength=KEY_BUCKETS).tolist()):
                if not count:
                    continue
                self._buffers.setdefault(bucket, []).append(rows.slice(start, count))
                start += count
                self._buffered_rows[bucket] = self._buffered_rows.get(bucket, 0) + count
                if self._buffered_rows[bucket] >= ROWS_PER_ROW_GROUP:
                    full.append((bucket, self._take_locked(bucket)))
        for bucket, tables in full:
            self._write(bucket, tables)

    def _take(self, bucket: int) -> list[pa.Table]:
        with self._buffer_lock:
            return self._take_locked(bucket)

    def _take_locked(self, bucket: int) -> list[pa.Table]:
        self._buffered_rows[bucket] = 0
        return self._buffers.pop(bucket, [])

    def _write(self, bucket: int, tables: list[pa.Table]) -> None:
        if not tables:
            return
        # Valid rows have no nulls (section 7's are quarantined): REQUIRED columns need no
        # definition levels.
        table = pa.concat_tables(tables)
        table = table.cast(pa.schema([field.with_nullable(False) for field in table.schema]))
        with self._writer_locks[bucket]:
            writer = self._writers.get(bucket)
            if writer is None:
                writer = self._writers[bucket] = pq.ParquetWriter(
                    self.folder / bucket_file_name(bucket),
                    table.schema,
                    compression=STAGED_COMPRESSION,
                    use_dictionary=DICTIONARY_COLUMNS,
                    write_statistics=False,
                )
            writer.write_table(table, row_group_size=table.num_rows)


@contextmanager
def key_bucket_writer(folder: Path) -> Iterator[KeyBucketWriter]:
    """A KeyBucketWriter whose files are completed when the block succeeds; if it fails, the
    threads are stopped and the files closed as they are (staging discards its folder)."""
    writer = KeyBucketWriter(folder)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.close()
