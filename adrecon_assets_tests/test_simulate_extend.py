"""Extend mode: a lake extended to later days equals the lake one run writes over all days."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import duckdb
import pytest

from adrecon_assets.rules import Topic
from adrecon_assets_tests.test_simulate import config_for, day_files, read_day
from adrecon_simulate import SimulationConfig, simulate
from adrecon_simulate.cli import main
from adrecon_simulate.writer import read_labels

DAYS = 4
FIRST_RUN_DAYS = 2


def online_rows(config: SimulationConfig, day: date) -> list[tuple[object, ...]]:
    with duckdb.connect(str(config.serving_db), read_only=True) as connection:
        return connection.execute(
            "SELECT offer_id, placement, emissions, clicks, cost_micros, source "
            "FROM offer_placement_stats WHERE date = ? ORDER BY offer_id, placement",
            [day],
        ).fetchall()


def extend_with_cli(config: SimulationConfig) -> int:
    return main(
        [
            *("--lake", str(config.lake), "--serving-db", str(config.serving_db)),
            *("--start", config.start.isoformat(), "--days", str(config.days)),
            *("--emissions-per-day", str(config.emissions_per_day), "--seed", str(config.seed)),
            *("--files-per-day", str(config.files_per_day), "--extend"),
        ]
    )


def test_extending_a_lake_gives_the_days_of_one_run_and_leaves_old_days_alone(
    tmp_path: Path,
) -> None:
    whole = config_for(tmp_path / "whole", days=DAYS)
    simulate(whole)
    extended = config_for(tmp_path / "extended", days=FIRST_RUN_DAYS)
    simulate(extended)
    old_files = {
        path: path.stat().st_mtime_ns
        for day in extended.days_list
        for topic in Topic
        for path in day_files(extended, topic, day)
    }
    # A window that starts later (the last DAYS - 1 days) and ends after the lake's last day.
    later = dataclasses.replace(extended, start=whole.days_list[1], days=DAYS - 1)

    assert extend_with_cli(later) == 0

    for day in whole.days_list:
        for topic in Topic:
            assert read_day(extended, topic, day).equals(read_day(whole, topic, day))
        assert read_labels(extended.labels_root, day).equals(read_labels(whole.labels_root, day))
        assert online_rows(extended, day) == online_rows(whole, day) != []
    assert {path: path.stat().st_mtime_ns for path in old_files} == old_files


def test_extending_a_complete_lake_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, days=FIRST_RUN_DAYS)
    simulate(config)
    before = {path: path.stat().st_mtime_ns for path in config.lake.rglob("*")}

    assert extend_with_cli(config) == 0

    assert {path: path.stat().st_mtime_ns for path in config.lake.rglob("*")} == before
    assert "already has" in capsys.readouterr().out
