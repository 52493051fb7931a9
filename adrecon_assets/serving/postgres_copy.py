"""Bulk rows in and out of PostgreSQL with COPY in CSV, chunk by chunk.

A serving day has up to millions of rows (issue 24): psycopg's `write_row` per row wrote about
27k rows/s, and fetching a day as Python tuples held it whole. Here Arrow writes each record
batch as CSV in C and PostgreSQL parses it; the other way, COPY's output goes to a file that
Arrow's streaming CSV reader turns into Parquet. CSV's quoting carries any text (quotes, tabs,
newlines, backslashes, unicode) as it is; an unquoted empty field is NULL, a quoted one ''.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from adrecon_assets.serving.tables import ServingTable

# Arrow quotes every string (so an empty string stays '' and never reads as NULL).
WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
# COPY's text is UTF-8 whatever the database's default client encoding.
UTF8 = "SET LOCAL client_encoding = 'UTF8'"


def copy_rows(
    conn: psycopg.Connection[Any], table: ServingTable, batches: Iterable[pa.RecordBatch]
) -> None:
    """COPY `batches` (every column of `table`, in its order) into `table`, one CSV chunk per
    batch, inside the caller's transaction."""
    conn.execute(UTF8)
    columns = ", ".join(table.column_names)
    statement = f"COPY {table.name} ({columns}) FROM STDIN (FORMAT csv)"
    with conn.cursor().copy(statement.encode()) as copy:
        for batch in batches:
            chunk = io.BytesIO()
            pa_csv.write_csv(batch, chunk, WRITE_OPTIONS)
            copy.write(chunk.getvalue())


def copy_out(
    conn: psycopg.Connection[Any], query: str, parameters: Sequence[object], out: BinaryIO
) -> None:
    """The rows of `query` (psycopg placeholders) as CSV into `out`, chunk by chunk, inside the
    caller's transaction."""
    conn.execute(UTF8)
    statement = f"COPY ({query}) TO STDOUT (FORMAT csv)"
    with conn.cursor().copy(statement.encode(), parameters) as copy:
        for chunk in copy:
            out.write(chunk)


def csv_to_parquet(csv_path: Path, schema: pa.Schema, parquet_path: Path) -> None:
    """The headerless CSV of `copy_out` as a Parquet file of `schema`, block by block."""
    if csv_path.stat().st_size == 0:
        pq.write_table(schema.empty_table(), parquet_path)
        return
    reader = pa_csv.open_csv(
        csv_path,
        read_options=pa_csv.ReadOptions(column_names=schema.names),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    with pq.ParquetWriter(parquet_path, schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
