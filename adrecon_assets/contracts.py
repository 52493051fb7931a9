"""File-level input contract: every lake file's Parquet schema is checked from its footer
before an engine reads it, so a bad file fails the run with its path and column named. A
footer that cannot be read because of the storage (an I/O error, a timeout, a 5xx answer) is
retried within the contract's budget, never reported as a bad file (`transient.py`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from adrecon_assets.rules import ColumnKind, TopicSchema
from adrecon_assets.transient import StorageFaultError, is_transient, retry_transient


class LakeInputError(ValueError):
    """Bad input that cannot be quarantined row by row (contract section 7)."""


def _accepts(kind: ColumnKind, arrow_type: pa.DataType) -> bool:
    if kind is ColumnKind.STRING:
        if pa.types.is_dictionary(arrow_type):
            arrow_type = arrow_type.value_type
        return (
            pa.types.is_string(arrow_type)
            or pa.types.is_large_string(arrow_type)
            or pa.types.is_string_view(arrow_type)
        )
    if kind is ColumnKind.INT64:
        # Narrower integers widen losslessly; uint64 could overflow, floats could be fractional.
        return pa.types.is_integer(arrow_type) and arrow_type != pa.uint64()
    return pa.types.is_timestamp(arrow_type)


def read_file_schema(
    path: Path | str, schema: TopicSchema, footer_reader: Callable[[str], bytes] | None = None
) -> pa.Schema:
    """The file's Arrow schema, or LakeInputError naming the file (its path, or its
    `s3://bucket/key` whose end `footer_reader` reads) and the offending column."""

    def read_footer() -> pa.Schema:
        try:
            if footer_reader is None:
                return pq.read_schema(path)
            return pq.read_schema(pa.BufferReader(footer_reader(str(path))))
        except FileNotFoundError as error:
            if footer_reader is None:
                raise LakeInputError(f"{path}: not a readable Parquet file ({error})") from error
            # The object was listed a moment ago and lake files are immutable: a store that
            # cannot find it now is failing, not the file.
            raise StorageFaultError(f"{path}: listed but not found now") from error
        except Exception as error:  # pyarrow raises several types for corrupt or truncated files
            if is_transient(error):
                raise  # the storage, not the file: retried below
            raise LakeInputError(f"{path}: not a readable Parquet file ({error})") from error

    file_schema = retry_transient(read_footer, f"reading the footer of {path}")
    for column in schema.columns:
        index = file_schema.get_field_index(column.name)
        if index < 0:
            raise LakeInputError(
                f"{path}: missing column '{column.name}' required by the {schema.topic} contract"
            )
        arrow_type = file_schema.field(index).type
        if not _accepts(column.kind, arrow_type):
            raise LakeInputError(
                f"{path}: column '{column.name}' has type {arrow_type}, "
                f"expected {column.kind.value}"
            )
    return file_schema
