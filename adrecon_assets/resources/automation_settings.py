"""The sensors' and the SLA check's settings, as a resource (so they reach sensors and checks
the Dagster way, and the launchpad can show them)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from adrecon_assets.settings import Settings


class AutomationSettings(dg.ConfigurableResource):
    """How far back late-data rescans look (readiness looks at every day since the start date),
    how long a lake folder must be quiet before a rerun, and the hour (UTC) by which yesterday
    must be reconciled."""

    late_data_lookback_days: int = Field(ge=1)
    late_data_quiet_seconds: int = Field(ge=0)
    sla_hour_utc: int = Field(ge=0, le=23)

    @classmethod
    def from_settings(cls, settings: Settings) -> AutomationSettings:
        return cls(
            late_data_lookback_days=settings.late_data_lookback_days,
            late_data_quiet_seconds=settings.late_data_quiet_seconds,
            sla_hour_utc=settings.sla_hour_utc,
        )
