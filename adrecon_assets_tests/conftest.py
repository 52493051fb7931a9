"""Shared fixtures: every test gets its own lake, warehouse and serving DB under tmp_path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.resources.engine import PolarsEngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.storage import StorageResource


@dataclass(frozen=True)
class Paths:
    lake: Path
    warehouse: Path
    serving_db: Path


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    result = Paths(tmp_path / "lake", tmp_path / "warehouse", tmp_path / "serving.duckdb")
    monkeypatch.setenv("ADRECON_LAKE_ROOT", str(result.lake))
    monkeypatch.setenv("ADRECON_WAREHOUSE", str(result.warehouse))
    monkeypatch.setenv("ADRECON_SERVING_DB", str(result.serving_db))
    return result


@pytest.fixture
def polars_resources(paths: Paths) -> dict[str, object]:
    """Resources for `dagster.materialize` on the Polars engine, pointed at the temp paths."""
    return {
        "storage": StorageResource(lake_root=str(paths.lake), warehouse_root=str(paths.warehouse)),
        "serving_db": ServingResource(database=str(paths.serving_db)),
        "engine": PolarsEngineResource(),
        "check_thresholds": CheckThresholds(),
    }
