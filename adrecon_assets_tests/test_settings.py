"""Typed settings: defaults, validation at load, nothing written to the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from adrecon_assets.settings import SETTINGS, Engine, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_contract_table() -> None:
    settings = Settings.from_env({})
    assert settings.lake_root == "data/lake"
    assert settings.warehouse == "data/warehouse"
    assert settings.serving_db == "data/serving.duckdb"
    assert settings.serving_url is None and settings.dagster_pg_url is None
    assert settings.engine is Engine.POLARS
    assert settings.spark_master == "local[*]" and settings.spark_remote is None
    assert settings.start_date == date(2026, 1, 1)
    assert settings.late_data_quiet_seconds == 600
    assert settings.late_data_lookback_days == 14
    assert settings.alert_webhook_url is None and settings.ui_base_url is None
    assert settings.sensor_interval_seconds == 30 and settings.sla_hour_utc == 7


def test_values_are_typed() -> None:
    settings = Settings.from_env(
        {
            "ADRECON_ENGINE": "Spark",
            "ADRECON_SPARK_REMOTE": "sc://127.0.0.1:15002",
            "ADRECON_SERVING_URL": "postgresql://u:p@127.0.0.1:5432/db",
            "ADRECON_START_DATE": "2025-12-30",
            "ADRECON_LATE_DATA_LOOKBACK_DAYS": "3",
            "ADRECON_SLA_HOUR_UTC": "0",
            "ADRECON_ALERT_WEBHOOK_URL": "",  # empty means unset
        }
    )
    assert settings.engine is Engine.SPARK
    assert settings.spark_remote == "sc://127.0.0.1:15002"
    assert settings.serving_url == "postgresql://u:p@127.0.0.1:5432/db"
    assert settings.start_date == date(2025, 12, 30)
    assert settings.late_data_lookback_days == 3 and settings.sla_hour_utc == 0
    assert settings.alert_webhook_url is None


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("ADRECON_ENGINE", "sparc", "polars, spark"),
        ("ADRECON_SLA_HOUR_UTC", "25", "an integer 0-23"),
        ("ADRECON_SLA_HOUR_UTC", "seven", "an integer 0-23"),
        ("ADRECON_LATE_DATA_LOOKBACK_DAYS", "0", "an integer >= 1"),
        ("ADRECON_LATE_DATA_QUIET_SECONDS", "-1", "an integer >= 0"),
        ("ADRECON_SENSOR_INTERVAL_SECONDS", "0", "an integer >= 1"),
        ("ADRECON_START_DATE", "2026-13-01", "a date YYYY-MM-DD"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_allowed_values(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert str(error.value) == f"{variable}={value!r} is not valid: allowed values are {allowed}"


def test_every_field_has_one_variable() -> None:
    variables = [spec.variable for spec in SETTINGS.values()]
    assert len(set(variables)) == len(variables) == len(Settings.__dataclass_fields__)


def test_loading_the_definitions_leaves_the_environment_alone() -> None:
    """In a fresh interpreter (the test process has imported them already). Only the
    project's variables are compared: Polars sets its allocator's variable at import."""
    code = (
        "import os; mine = lambda: {k: v for k, v in os.environ.items() if 'ADRECON' in k}; "
        "before = mine(); import adrecon_assets.definitions; assert mine() == before, mine()"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADRECON_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)


def test_a_bad_setting_stops_the_code_location_at_load(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ADRECON_ENGINE": "sparc"}
    result = subprocess.run(
        [sys.executable, "-c", "import adrecon_assets.definitions"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ADRECON_ENGINE='sparc' is not valid: allowed values are polars, spark" in result.stderr
