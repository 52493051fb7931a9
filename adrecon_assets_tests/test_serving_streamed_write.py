"""The serving write streamed from Parquet (issue 24) on both stores: a day given as a staged
folder goes in chunk by chunk (PostgreSQL: CSV COPY chunks, here of 3 rows) and comes back
exactly, hostile strings included, and `export_day_rows` writes back what the store holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adrecon_assets import rules, serving
from adrecon_assets.serving import ServingStore
from adrecon_assets.serving.store import DAY_ROWS_SCHEMA

DAY = date(2026, 1, 2)
# Everything CSV or COPY's text format treat specially, and more than one chunk of them.
HOSTILE = [
    'double "quoted" ""',
    "single 'quoted'",
    "tab\tseparated",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash \\N \\t",
    "\\.",
    "before\n\\.\nafter",
    "NULL",
    "",
    " padded ",
    ",comma,",
    "ünïcødé ☃ 😀 \u202e",
]
PLACEMENTS = ["top", 'p"|\\\n\t']


def day_rows() -> list[tuple[str, str, int, int, int, int, int]]:
    """One row per hostile offer and placement; the measures tell the rows apart."""
    return [
        (offer, placement, n, 2 * n, 1_000 * n, n % 3, 250 * (n % 3))
        for n, (offer, placement) in enumerate(
            ((offer, placement) for offer in HOSTILE for placement in PLACEMENTS), start=1
        )
    ]


def staged_folder(root: Path, rows: list[tuple[str, str, int, int, int, int, int]]) -> Path:
    """The rows as reconciled_statistics stages them: two Parquet files of a folder."""
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {"date": pa.array([DAY] * len(rows), pa.date32())}
        | {
            name: pa.array(values, pa.string() if name in rules.STATS_KEY else pa.int64())
            for name, values in zip(
                [*rules.STATS_KEY, *serving.STATS_MEASURES], columns, strict=True
            )
        }
    )
    folder = root / "staged"
    folder.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "part-1.parquet")
    return folder


def columns_of(table: pa.Table) -> list[tuple[str, pa.DataType]]:
    """Names and types (DuckDB also marks the columns NOT NULL)."""
    return [(field.name, field.type) for field in table.schema]


def served(store: ServingStore) -> list[tuple[object, ...]]:
    return sorted(
        store.fetch(
            "SELECT offer_id, placement, emissions, clicks, cost_micros, fraud_clicks, "
            "refund_micros FROM offer_placement_stats WHERE date = ?",
            [DAY],
        )
    )


def test_a_staged_folder_is_served_exactly_chunk_by_chunk(
    store: ServingStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "SERVING_CHUNK_ROWS", 3)
    rows = day_rows()
    # An online row of a key that the replace drops, so the day is really replaced.
    store.add_online(
        pa.table(
            {
                "date": pa.array([DAY], pa.date32()),
                "offer_id": ["gone"],
                "placement": ["top"],
                "emissions": [9],
                "clicks": [9],
                "cost_micros": [9],
            }
        )
    )
    written = store.replace_day(
        serving.OFFER_PLACEMENT_STATS,
        DAY,
        staged_folder(tmp_path, rows),
        {"source": serving.OFFLINE_SOURCE},
        run_id="run-1",
    )
    assert written == len(rows) == 26
    assert served(store) == sorted(rows)
    assert store.reconciled_days() == {DAY: "run-1"}

    exported = tmp_path / "previous_rows.parquet"
    store.export_day_rows(DAY, exported)
    table = pq.read_table(exported)
    assert columns_of(table) == columns_of(DAY_ROWS_SCHEMA.empty_table())
    assert sorted(
        (*row[:7], row[7]) for row in zip(*table.to_pydict().values(), strict=True)
    ) == sorted((*row, serving.OFFLINE_SOURCE) for row in rows)


def test_an_empty_day_exports_an_empty_file(store: ServingStore, tmp_path: Path) -> None:
    exported = tmp_path / "previous_rows.parquet"
    store.export_day_rows(DAY, exported)
    table = pq.read_table(exported)
    assert table.num_rows == 0
    assert columns_of(table) == columns_of(DAY_ROWS_SCHEMA.empty_table())
    assert serving.totals_of(exported) == serving.DayTotals(None, 0, 0, 0, 0, 0, 0)
