"""serving.replace_day: one transaction per day, other days untouched, reruns identical."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from adrecon_assets import serving

DAY = date(2026, 1, 2)
OTHER_DAY = date(2026, 1, 3)
MEASURES = ("emissions", "clicks", "cost_micros", "fraud_clicks", "refund_micros")


def stats(day: date, offers: list[str], clicks: int) -> pa.Table:
    """One row per offer on placement p1 with `clicks` valid clicks of 100 micros each."""
    count = len(offers)
    return pa.table(
        {
            "date": pa.array([day] * count, pa.date32()),
            "offer_id": pa.array(offers, pa.string()),
            "placement": pa.array(["p1"] * count, pa.string()),
            "emissions": pa.array([10] * count, pa.int64()),
            "clicks": pa.array([clicks] * count, pa.int64()),
            "cost_micros": pa.array([100 * clicks] * count, pa.int64()),
            "fraud_clicks": pa.array([1] * count, pa.int64()),
            "refund_micros": pa.array([100] * count, pa.int64()),
        }
    )


def rows_of(connection: duckdb.DuckDBPyConnection, day: date) -> list[tuple[object, ...]]:
    return connection.execute(
        f"SELECT offer_id, placement, {', '.join(MEASURES)}, source, updated_at "
        "FROM offer_placement_stats WHERE date = ? ORDER BY offer_id",
        [day],
    ).fetchall()


def replace(connection: duckdb.DuckDBPyConnection, day: date, rows: pa.Table, source: str) -> int:
    return serving.replace_day(
        connection, serving.OFFER_PLACEMENT_STATS, day, rows, {"source": source}
    )


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(tmp_path / "serving.duckdb")) as opened:
        yield opened


def test_offline_rows_replace_every_online_row_of_the_day(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    replace(connection, DAY, stats(DAY, ["o1", "o2", "o3"], 5), serving.ONLINE_SOURCE)
    written = replace(connection, DAY, stats(DAY, ["o2", "o4"], 7), serving.OFFLINE_SOURCE)
    assert written == 2
    rows = rows_of(connection, DAY)
    assert [row[:8] for row in rows] == [
        ("o2", "p1", 10, 7, 700, 1, 100, "offline"),
        ("o4", "p1", 10, 7, 700, 1, 100, "offline"),
    ]


def test_replacing_a_day_leaves_other_days_untouched(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    replace(connection, OTHER_DAY, stats(OTHER_DAY, ["o1", "o2"], 3), serving.ONLINE_SOURCE)
    other_before = rows_of(connection, OTHER_DAY)
    replace(connection, DAY, stats(DAY, ["o1"], 5), serving.OFFLINE_SOURCE)
    replace(connection, DAY, stats(DAY, [], 5), serving.OFFLINE_SOURCE)
    assert rows_of(connection, DAY) == []
    assert rows_of(connection, OTHER_DAY) == other_before


def test_rerun_gives_identical_rows_except_updated_at(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    replace(connection, DAY, stats(DAY, ["o1", "o2"], 5), serving.OFFLINE_SOURCE)
    first = rows_of(connection, DAY)
    replace(connection, DAY, stats(DAY, ["o1", "o2"], 5), serving.OFFLINE_SOURCE)
    second = rows_of(connection, DAY)
    assert [row[:-1] for row in second] == [row[:-1] for row in first]
    # One updated_at per replace, shared by every row of the day.
    assert len({row[-1] for row in second}) == 1


def null_offer(rows: pa.Table) -> pa.Table:
    index = rows.column_names.index("offer_id")
    return rows.set_column(index, "offer_id", pa.array(["o1", None], pa.string()))


@pytest.mark.parametrize(
    "bad_rows",
    [
        pytest.param(stats(DAY, ["o1", "o1"], 9), id="duplicate_primary_key"),
        pytest.param(null_offer(stats(DAY, ["o1", "o2"], 9)), id="null_in_not_null_column"),
        pytest.param(stats(DAY, ["o1"], 9).drop_columns(["clicks"]), id="missing_column"),
    ],
)
def test_failed_replace_keeps_the_whole_old_day(
    connection: duckdb.DuckDBPyConnection, bad_rows: pa.Table
) -> None:
    """The DELETE has run when the INSERT fails: the rollback must restore every old row."""
    replace(connection, DAY, stats(DAY, ["o1", "o2", "o3"], 5), serving.ONLINE_SOURCE)
    before = rows_of(connection, DAY)
    with pytest.raises((duckdb.Error, KeyError)):
        replace(connection, DAY, bad_rows, serving.OFFLINE_SOURCE)
    assert rows_of(connection, DAY) == before
    # The connection is usable afterwards (no transaction left open).
    replace(connection, DAY, stats(DAY, ["o9"], 1), serving.OFFLINE_SOURCE)
    assert [row[0] for row in rows_of(connection, DAY)] == ["o9"]


def test_rows_of_another_day_are_refused_before_anything_is_written(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    replace(connection, DAY, stats(DAY, ["o1"], 5), serving.ONLINE_SOURCE)
    before = rows_of(connection, DAY)
    with pytest.raises(ValueError, match="2026-01-03"):
        replace(connection, DAY, stats(OTHER_DAY, ["o1"], 5), serving.OFFLINE_SOURCE)
    assert rows_of(connection, DAY) == before
    assert rows_of(connection, OTHER_DAY) == []


def test_reader_on_another_connection_sees_the_old_day_until_commit(tmp_path: Path) -> None:
    database = str(tmp_path / "serving.duckdb")
    with duckdb.connect(database) as writer:
        replace(writer, DAY, stats(DAY, ["o1", "o2"], 5), serving.ONLINE_SOURCE)
        reader = writer.cursor()  # a second connection to the same database
        writer.execute("BEGIN TRANSACTION")
        writer.execute("DELETE FROM offer_placement_stats WHERE date = ?", [DAY])
        assert len(rows_of(reader, DAY)) == 2
        writer.execute("ROLLBACK")
        replace(writer, DAY, stats(DAY, ["o3"], 5), serving.OFFLINE_SOURCE)
        assert [row[0] for row in rows_of(reader, DAY)] == ["o3"]
        reader.close()


def test_an_offline_replace_marks_the_day_reconciled_in_the_same_transaction(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    replace(connection, DAY, stats(DAY, ["o1"], 5), serving.ONLINE_SOURCE)
    assert serving.reconciled_entry(connection, DAY) is None
    serving.replace_day(
        connection,
        serving.OFFER_PLACEMENT_STATS,
        DAY,
        stats(DAY, ["o2"], 7),
        {"source": serving.OFFLINE_SOURCE},
        run_id="run-1",
    )
    entry = serving.reconciled_entry(connection, DAY)
    assert entry is not None and entry[0] == DAY and entry[2] == "run-1"
    # The marker's time is the rows' updated_at: both come from the one transaction.
    assert entry[1] == rows_of(connection, DAY)[0][8]
    replace(connection, DAY, stats(DAY, ["o2"], 7), serving.OFFLINE_SOURCE)
    assert serving.reconciled_entry(connection, DAY)[2] == serving.NO_RUN_ID  # type: ignore[index]
    assert connection.execute("SELECT count(*) FROM reconciled_days").fetchone() == (1,)
    assert serving.reconciled_entry(connection, OTHER_DAY) is None


def test_a_failed_replace_leaves_the_reconciled_marker_as_it_was(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    serving.replace_day(
        connection,
        serving.OFFER_PLACEMENT_STATS,
        DAY,
        stats(DAY, ["o1"], 5),
        {"source": serving.OFFLINE_SOURCE},
        run_id="good",
    )
    before = rows_of(connection, DAY), serving.reconciled_entry(connection, DAY)
    duplicate_keys = stats(DAY, ["o1", "o1"], 9)  # violates the primary key inside the transaction
    with pytest.raises(duckdb.ConstraintException):
        serving.replace_day(
            connection,
            serving.OFFER_PLACEMENT_STATS,
            DAY,
            duplicate_keys,
            {"source": serving.OFFLINE_SOURCE},
            run_id="bad",
        )
    assert (rows_of(connection, DAY), serving.reconciled_entry(connection, DAY)) == before
