"""The writer of staged emissions files each row under its key bucket, across batches, with the
encodings chosen for staging (plain ids, a dictionary for placements, no statistics, REQUIRED
columns); a failed write is raised, not lost. Buckets are given by hand
(the writer only routes rows by the BUCKET column; `emission_bucket` is tested with the join
rounds)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from adrecon_assets.engines import key_bucket_writer
from adrecon_assets.engines.key_bucket_writer import BUCKET, KeyBucketWriter

EMITTED_AT = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)


def batch(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """Emission rows (emission_id, placement, bucket), every other column alike."""
    return pl.DataFrame(
        {
            "emission_id": [emission_id for emission_id, _, _ in rows],
            "offer_id": ["o1"] * len(rows),
            "placement": [placement for _, placement, _ in rows],
            "click_cost_micros": [100] * len(rows),
            "emitted_at": [EMITTED_AT] * len(rows),
            BUCKET: [bucket for _, _, bucket in rows],
        },
        schema_overrides={"emitted_at": pl.Datetime("us", "UTC")},
    )


def ids_by_file(folder: Path) -> dict[str, list[str]]:
    return {
        path.name: sorted(pl.read_parquet(path).get_column("emission_id").to_list())
        for path in sorted(folder.glob("*.parquet"))
    }


def test_rows_of_every_batch_go_to_the_file_of_their_bucket(tmp_path: Path) -> None:
    with key_bucket_writer.key_bucket_writer(tmp_path) as writer:
        writer(batch([("e1", "pA", 3), ("e2", "pA", 0), ("e3", "pB", 3)]))
        writer(batch([("e4", "pA", 31), ("e5", "pB", 3)]))

    assert ids_by_file(tmp_path) == {
        "part-k000.parquet": ["e2"],
        "part-k003.parquet": ["e1", "e3", "e5"],
        "part-k031.parquet": ["e4"],
    }
    row = pl.read_parquet(tmp_path / "part-k031.parquet").row(0, named=True)
    assert row == {
        "emission_id": "e4",
        "offer_id": "o1",
        "placement": "pA",
        "click_cost_micros": 100,
        "emitted_at": EMITTED_AT,
    }


def test_staged_columns_are_required_plain_ids_and_a_placement_dictionary(
    tmp_path: Path,
) -> None:
    with key_bucket_writer.key_bucket_writer(tmp_path) as writer:
        writer(batch([(f"e{n}", "pA", 7) for n in range(10)]))

    metadata = pq.ParquetFile(tmp_path / "part-k007.parquet").metadata
    columns = {
        metadata.row_group(0).column(index).path_in_schema: metadata.row_group(0).column(index)
        for index in range(metadata.num_columns)
    }
    assert "RLE_DICTIONARY" not in columns["emission_id"].encodings
    assert "PLAIN" in columns["emission_id"].encodings
    assert "RLE_DICTIONARY" in columns["placement"].encodings
    assert "RLE_DICTIONARY" not in columns["offer_id"].encodings
    assert {column.compression for column in columns.values()} == {"UNCOMPRESSED"}
    assert not any(column.is_stats_set for column in columns.values())
    schema = metadata.schema.to_arrow_schema()
    assert not any(field.nullable for field in schema)
    assert BUCKET not in schema.names


def test_a_bucket_is_written_in_row_groups_of_at_least_the_set_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_bucket_writer, "ROWS_PER_ROW_GROUP", 3)
    with key_bucket_writer.key_bucket_writer(tmp_path) as writer:
        for start in range(0, 8, 2):  # 4 batches of 2 rows of bucket 5, 1 row of bucket 6
            writer(
                batch([(f"e{start}", "pA", 5), (f"e{start + 1}", "pA", 5), (f"x{start}", "pB", 6)])
            )

    bucket_5 = pq.ParquetFile(tmp_path / "part-k005.parquet").metadata
    # Buffered to 4 rows (two batches) before each write: 2 row groups of 4 rows.
    assert [bucket_5.row_group(n).num_rows for n in range(bucket_5.num_row_groups)] == [4, 4]
    assert ids_by_file(tmp_path)["part-k006.parquet"] == ["x0", "x2", "x4", "x6"]


def test_a_failed_write_is_raised_by_close(tmp_path: Path) -> None:
    missing = tmp_path / "not-created"
    writer = KeyBucketWriter(missing)
    writer(batch([("e1", "pA", 1)]))
    with pytest.raises(OSError):
        writer.close()
    assert not missing.exists()


def test_a_failure_in_the_block_is_raised_and_leaves_no_thread_behind(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="lake read failed"),
        key_bucket_writer.key_bucket_writer(tmp_path) as writer,
    ):
        writer(batch([("e1", "pA", 1)]))
        threads_while_writing = writer_thread_names()
        raise RuntimeError("lake read failed")
    assert threads_while_writing != []
    assert writer_thread_names() == []


def writer_thread_names() -> list[str]:
    return [thread.name for thread in threading.enumerate() if "key-bucket-writer" in thread.name]
