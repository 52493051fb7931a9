"""Writing a simulated day: contract Parquet files, `_SUCCESS`, late files, labels.

Paths come from `Lake`, column types from `rules.SCHEMAS`, so the simulator cannot drift from
the layout the pipeline reads.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from adrecon_assets.lake import PARTITION_PREFIX, SUCCESS_MARKER, LocalLake
from adrecon_assets.rules import SCHEMAS, ColumnKind, Topic, TopicSchema
from adrecon_simulate.catalogue import DATA_CENTRE_CIDRS
from adrecon_simulate.labels import LABEL_COLUMNS, LABELS_FILE, SUMMARY_FILE

ARROW_TYPES: Final = {
    ColumnKind.STRING: pa.string(),
    ColumnKind.INT64: pa.int64(),
    ColumnKind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}
LATE_FILE: Final = "late-00000.parquet"
# Optional columns of a topic day's rows: resent rows, and when the persister received them.
RESENT_COLUMN: Final = "_resent"
ARRIVAL_COLUMN: Final = "_arrival"


def arrow_schema(schema: TopicSchema) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.kind], nullable=False) for c in schema.columns]
    )


def write_denylist(lake: LocalLake) -> Path:
    path = lake.denylist_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("cidr\n" + "".join(f"{cidr}\n" for cidr in DATA_CENTRE_CIDRS))
    return path


def _write(frame: pl.DataFrame, schema: TopicSchema, path: Path) -> None:
    table = frame.select(schema.column_names).to_arrow().cast(arrow_schema(schema))
    pq.write_table(table, path)


def _on_time_parts(rows: pl.DataFrame, files: int) -> list[pl.DataFrame]:
    """The on-time rows in `files` parts cut in order. Rows marked RESENT_COLUMN join the part
    whose span holds their ARRIVAL_COLUMN, after its in-order rows: the few copies are placed
    without reordering the many rows (a 20M-row gather of strings is slow)."""
    on_time = ~pl.col("late")
    resent = pl.col(RESENT_COLUMN) if RESENT_COLUMN in rows.columns else pl.lit(False)
    in_order = rows.filter(on_time & ~resent)
    bounds = np.linspace(0, in_order.height, files + 1).astype(np.int64)
    parts = [
        in_order.slice(int(bounds[part]), int(bounds[part + 1] - bounds[part]))
        for part in range(files)
    ]
    late_arrivals = rows.filter(on_time & resent)
    if late_arrivals.height == 0:
        return parts
    # A part spans from the arrival of its first row to that of the next part's first row.
    part_starts = in_order[ARRIVAL_COLUMN].to_numpy()[
        np.minimum(bounds[1:-1], max(in_order.height - 1, 0))
    ]
    part_of = np.searchsorted(part_starts, late_arrivals[ARRIVAL_COLUMN].to_numpy(), side="right")
    return [
        pl.concat([rows_of_part, late_arrivals.filter(pl.Series(part_of == part))])
        for part, rows_of_part in enumerate(parts)
    ]


def write_topic_day(
    lake: LocalLake, topic: Topic, day: date, rows: pl.DataFrame, files: int
) -> int:
    """Write the day's on-time rows in `files` time-ordered parts, close the day with
    `_SUCCESS`, then write the late rows after it. Returns the number of late files (0 or 1).

    `rows` are in event-time order and carry a boolean `late` column; rows marked in an optional
    RESENT_COLUMN may come in any order and go to the part of their ARRIVAL_COLUMN (micros),
    so that a resent row lands in a later file than its original. The day's folder is replaced:
    a rerun of the simulator never mixes two runs' files."""
    schema = SCHEMAS[topic]
    folder = lake.folder(topic, day)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    parts = _on_time_parts(rows, files)
    # Parquet encoding releases the GIL: writing the parts side by side uses every core.
    with ThreadPoolExecutor(max_workers=min(files, os.cpu_count() or 1)) as pool:
        list(
            pool.map(
                lambda part: _write(parts[part], schema, folder / f"part-{part:05d}.parquet"),
                range(files),
            )
        )
    success = folder / SUCCESS_MARKER
    success.touch()
    late = rows.filter(pl.col("late"))
    if late.height == 0:
        return 0
    late_path = folder / LATE_FILE
    _write(late, schema, late_path)
    # Coarse file-system clocks can give both the same mtime: the late file must be newer.
    success_ns = success.stat().st_mtime_ns
    if late_path.stat().st_mtime_ns <= success_ns:
        newer = success_ns + 1_000_000
        os.utime(late_path, ns=(newer, newer))
    return 1


def labels_folder(labels_root: Path, day: date) -> Path:
    return labels_root / f"{PARTITION_PREFIX}{day.isoformat()}"


def label_frame(clicks: pl.DataFrame) -> pl.DataFrame:
    """One label row per click_id: the original row's truth and how many copies were resent."""
    copies = (
        clicks.filter(pl.col("is_copy"))
        .group_by("click_id")
        .agg(pl.len().cast(pl.Int64).alias("duplicate_copies"))
    )
    return (
        clicks.filter(~pl.col("is_copy"))
        .join(copies, on="click_id", how="left")
        .with_columns(pl.col("duplicate_copies").fill_null(0))
        .select(LABEL_COLUMNS)
        .sort("click_id")
    )


def write_labels(
    labels_root: Path, day: date, labels: pl.DataFrame, summary: dict[str, object]
) -> Path:
    folder = labels_folder(labels_root, day)
    folder.mkdir(parents=True, exist_ok=True)
    labels.write_parquet(folder / LABELS_FILE)
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return folder


def read_labels(labels_root: Path, day: date) -> pl.DataFrame:
    return pl.read_parquet(labels_folder(labels_root, day) / LABELS_FILE)
