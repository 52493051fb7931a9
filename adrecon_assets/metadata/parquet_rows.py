"""Row counts of written warehouse folders, for the rows_in / rows_out metadata."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from adrecon_assets.warehouse import Warehouse


def parquet_rows(folder: Path) -> int:
    """Rows of a written warehouse folder, from the Parquet footers (no data read)."""
    return sum(pq.read_metadata(path).num_rows for path in Warehouse.files(folder))
