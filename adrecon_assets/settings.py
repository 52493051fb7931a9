"""The contract's settings (DATA_CONTRACT.md section 1), read in this one place."""

from __future__ import annotations

import os
from typing import Final

DEFAULTS: Final = {
    "ADRECON_LAKE_ROOT": "data/lake",
    "ADRECON_WAREHOUSE": "data/warehouse",
    "ADRECON_SERVING_DB": "data/serving.duckdb",
    "ADRECON_ENGINE": "polars",
    "ADRECON_SPARK_MASTER": "local[*]",
    "ADRECON_SPARK_REMOTE": "",
    "ADRECON_START_DATE": "2026-01-01",
    "ADRECON_LATE_DATA_QUIET_SECONDS": "600",
    "ADRECON_ALERT_WEBHOOK_URL": "",
    "ADRECON_LATE_DATA_LOOKBACK_DAYS": "14",
    "ADRECON_SENSOR_INTERVAL_SECONDS": "30",
    "ADRECON_SLA_HOUR_UTC": "7",
    "ADRECON_UI_BASE_URL": "",
}


def setting(name: str) -> str:
    """The value of a contract setting, or its documented default (empty means unset)."""
    value = os.environ.get(name)
    return value if value not in (None, "") else DEFAULTS[name]


def start_date() -> str:
    return setting("ADRECON_START_DATE")


def engine_name() -> str:
    name = setting("ADRECON_ENGINE").lower()
    if name not in ("polars", "spark"):
        raise ValueError(f"ADRECON_ENGINE must be 'polars' or 'spark', not {name!r}")
    return name


def apply_defaults() -> None:
    """Put the documented defaults into the environment for unset settings, so that resources
    configured with `dg.EnvVar` resolve the same way in the webserver, daemon and run workers."""
    for name, default in DEFAULTS.items():
        if not os.environ.get(name):
            os.environ[name] = default
