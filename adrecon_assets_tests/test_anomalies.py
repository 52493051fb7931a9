"""The placement anomaly rule (contract 4) on the Polars engine: a fall to a tenth of a steady
7-day history, or a tenfold rise, is an anomaly; hand-computed baselines and z-scores."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from adrecon_assets import rules
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.warehouse import Dataset, Warehouse

DAY = date(2026, 1, 10)


def write_statistics(warehouse: Warehouse, day: date, clicks_by_placement: dict[str, int]) -> Path:
    """A reconciled_statistics folder of `day`: clicks split over two offers per placement."""
    rows = [
        (day, offer, placement, 10, share, 100 * share, 0, 0)
        for placement, clicks in clicks_by_placement.items()
        for offer, share in (("o1", clicks // 2), ("o2", clicks - clicks // 2))
    ]
    folder = warehouse.folder(Dataset.RECONCILED_STATISTICS, day)
    folder.mkdir(parents=True)
    pl.DataFrame(rows, schema=list(rules.STATS_COLUMNS), orient="row").write_parquet(
        folder / "part-0.parquet"
    )
    return folder


def anomalies(
    tmp_path: Path, history: list[dict[str, int]], today: dict[str, int]
) -> dict[str, dict[str, object]]:
    """Run the rule for DAY with `history` as the days just before it (oldest first)."""
    warehouse = Warehouse(tmp_path)
    folders = {DAY: write_statistics(warehouse, DAY, today)}
    for offset, clicks in enumerate(reversed(history), start=1):
        day = DAY - timedelta(days=offset)
        folders[day] = write_statistics(warehouse, day, clicks)
    out = tmp_path / "anomalies"
    report = PolarsEngine().placement_anomalies(DAY, folders, out)
    rows = pl.read_parquet(out / "*.parquet")
    assert report.placements == rows.height
    assert report.history_days == len(history)
    return {row["placement"]: row for row in rows.iter_rows(named=True)}


@pytest.mark.parametrize(
    ("clicks", "zscore", "is_anomaly"),
    [
        pytest.param(10, -9.0, True, id="fall_to_a_tenth"),
        pytest.param(11, -8.9, False, id="just_above_a_tenth"),
        pytest.param(1000, 90.0, True, id="tenfold_rise"),
        pytest.param(999, 89.9, False, id="just_below_tenfold"),
        pytest.param(50, -5.0, False, id="halved"),
    ],
)
def test_steady_history_of_100_clicks(
    tmp_path: Path, clicks: int, zscore: float, is_anomaly: bool
) -> None:
    """Baseline 100, stddev 0 -> Poisson floor sqrt(100) = 10, so z = (clicks - 100) / 10."""
    row = anomalies(tmp_path, [{"top": 100}] * 7, {"top": clicks})["top"]
    assert row["clicks"] == clicks and row["baseline"] == 100.0
    assert row["zscore"] == pytest.approx(zscore)
    assert row["is_anomaly"] is is_anomaly


def test_a_history_day_without_the_placement_counts_as_zero(tmp_path: Path) -> None:
    """History 70, 70, 70, 0 (other placement only): baseline 52.5; 5 <= 5.25 is a fall."""
    history = [{"top": 70}, {"top": 70}, {"top": 70}, {"side": 3}]
    row = anomalies(tmp_path, history, {"top": 5})["top"]
    assert row["baseline"] == pytest.approx(52.5)
    assert row["is_anomaly"] is True


def test_fewer_than_three_history_days_is_never_an_anomaly(tmp_path: Path) -> None:
    row = anomalies(tmp_path, [{"top": 100}] * 2, {"top": 1})["top"]
    assert row["history_days"] == 2 and row["is_anomaly"] is False


def test_tiny_volumes_are_noise_not_anomalies(tmp_path: Path) -> None:
    """Baseline 4 and today 0: below the minimum volume of 5 on both sides."""
    row = anomalies(tmp_path, [{"top": 4}] * 7, {"top": 0})["top"]
    assert row["is_anomaly"] is False


def test_first_day_has_no_baseline(tmp_path: Path) -> None:
    row = anomalies(tmp_path, [], {"top": 100})["top"]
    assert row["baseline"] is None and row["zscore"] is None and row["is_anomaly"] is False
