"""The contract's settings (DATA_CONTRACT.md section 1) as one typed object, validated at load.

`Settings.from_env()` reads every variable once, applies the documented defaults and rejects a
bad value with a message naming the variable and what it allows, so a typo such as
`ADRECON_ENGINE=sparc` stops the code location at load instead of failing a run hours later.
The environment is only read, never written: `definitions.py` passes the values to the
resources, and the sensors and checks read them from the `AutomationSettings` resource.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from enum import StrEnum
from typing import Any

# PagerDuty's Events API v2 endpoint (ADRECON_PAGERDUTY_EVENTS_URL's default).
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class Engine(StrEnum):
    POLARS = "polars"
    SPARK = "spark"


class SettingsError(ValueError):
    """A setting whose value is not one it allows (the message names both)."""


def _text(value: str) -> str:
    return value


def _optional(value: str) -> str | None:
    return value or None


def _engine(value: str) -> Engine:
    return Engine(value.lower())


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)
        if number < low or (high is not None and number > high):
            raise ValueError(value)
        return number

    return parse


def _day(value: str) -> date:
    return date.fromisoformat(value)


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field, default, parser and what it allows (for errors)."""

    variable: str
    default: str
    parse: Callable[[str], Any]
    allowed: str
    # A URL or key (contract 1): reaches resources as dg.EnvVar, masked in logs and errors.
    secret: bool = False


@dataclass(frozen=True)
class Settings:
    """Every setting, typed (defaults in SETTINGS below). Fields follow the contract's table."""

    lake_root: str
    warehouse: str
    serving_db: str
    serving_url: str | None
    dagster_pg_url: str | None
    engine: Engine
    spark_master: str
    spark_remote: str | None
    start_date: date
    late_data_quiet_seconds: int
    late_data_lookback_days: int
    alert_webhook_url: str | None
    pagerduty_routing_key: str | None
    pagerduty_events_url: str
    smtp_url: str | None
    alert_email_from: str | None
    alert_email_to: str | None
    alert_digest_minutes: int
    sensor_interval_seconds: int
    sla_hour_utc: int
    ui_base_url: str | None
    metrics_host: str
    metrics_port: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from `environ` (default: the process environment); an unset or empty
        variable takes its default. Raises SettingsError on the first bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            spec = SETTINGS[field.name]
            raw = env.get(spec.variable) or spec.default
            try:
                values[field.name] = spec.parse(raw.strip())
            except ValueError:
                raise SettingsError(
                    f"{spec.variable}={raw!r} is not valid: allowed values are {spec.allowed}"
                ) from None
        return cls(**values)


SETTINGS: Mapping[str, Setting] = {
    "lake_root": Setting("ADRECON_LAKE_ROOT", "data/lake", _text, "a path or s3://bucket/prefix"),
    "warehouse": Setting("ADRECON_WAREHOUSE", "data/warehouse", _text, "a path"),
    "serving_db": Setting("ADRECON_SERVING_DB", "data/serving.duckdb", _text, "a path"),
    "serving_url": Setting(
        "ADRECON_SERVING_URL",
        "",
        _optional,
        "unset or postgresql://user:password@host:port/db",
        secret=True,
    ),
    "dagster_pg_url": Setting(
        "ADRECON_DAGSTER_PG_URL", "", _optional, "unset or a postgresql:// URL", secret=True
    ),
    "engine": Setting("ADRECON_ENGINE", "polars", _engine, ", ".join(Engine)),
    "spark_master": Setting("ADRECON_SPARK_MASTER", "local[*]", _text, "a spark.master URL"),
    # A Spark Connect URL may carry a token (`sc://host:port/;token=...`).
    "spark_remote": Setting(
        "ADRECON_SPARK_REMOTE", "", _optional, "unset or sc://host:port", secret=True
    ),
    "start_date": Setting("ADRECON_START_DATE", "2026-01-01", _day, "a date YYYY-MM-DD"),
    "late_data_quiet_seconds": Setting(
        "ADRECON_LATE_DATA_QUIET_SECONDS", "600", _int_in(0), "an integer >= 0"
    ),
    "late_data_lookback_days": Setting(
        "ADRECON_LATE_DATA_LOOKBACK_DAYS", "14", _int_in(1), "an integer >= 1"
    ),
    "alert_webhook_url": Setting(
        "ADRECON_ALERT_WEBHOOK_URL", "", _optional, "unset or an http(s) URL", secret=True
    ),
    "pagerduty_routing_key": Setting(
        "ADRECON_PAGERDUTY_ROUTING_KEY",
        "",
        _optional,
        "unset or an Events API v2 routing key",
        secret=True,
    ),
    "pagerduty_events_url": Setting(
        "ADRECON_PAGERDUTY_EVENTS_URL", PAGERDUTY_EVENTS_URL, _text, "an http(s) URL", secret=True
    ),
    "smtp_url": Setting(
        "ADRECON_SMTP_URL",
        "",
        _optional,
        "unset or smtp://user:password@host:port, smtps://..., ?starttls=true",
        secret=True,
    ),
    "alert_email_from": Setting("ADRECON_ALERT_EMAIL_FROM", "", _optional, "an e-mail address"),
    "alert_email_to": Setting(
        "ADRECON_ALERT_EMAIL_TO", "", _optional, "comma-separated e-mail addresses"
    ),
    "alert_digest_minutes": Setting(
        "ADRECON_ALERT_DIGEST_MINUTES", "60", _int_in(1), "an integer >= 1"
    ),
    "sensor_interval_seconds": Setting(
        "ADRECON_SENSOR_INTERVAL_SECONDS", "30", _int_in(1), "an integer >= 1"
    ),
    "sla_hour_utc": Setting("ADRECON_SLA_HOUR_UTC", "7", _int_in(0, 23), "an integer 0-23"),
    "ui_base_url": Setting("ADRECON_UI_BASE_URL", "", _optional, "unset or an http(s) URL"),
    # adrecon-metrics (contract 6.3): loopback by default, a scraper on another host needs it
    # set to an address of this one.
    "metrics_host": Setting("ADRECON_METRICS_HOST", "127.0.0.1", _text, "a host or address"),
    "metrics_port": Setting("ADRECON_METRICS_PORT", "9464", _int_in(1, 65535), "a port 1-65535"),
}


# Secrets the process may hold besides the settings above: the S3 lake's key (contract 2.1) and
# libpq's password variable (the PostgreSQL URLs may leave the password to it).
OTHER_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "PGPASSWORD")
# Every variable whose value is masked wherever it could show (secret_masking.py).
SECRET_VARIABLES = (
    *(setting.variable for setting in SETTINGS.values() if setting.secret),
    *OTHER_SECRET_VARIABLES,
)


def load_settings() -> Settings:
    """The settings of this process's environment (read anew: tests change the environment)."""
    return Settings.from_env()
