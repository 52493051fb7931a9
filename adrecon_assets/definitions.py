"""The Dagster definitions of adrecon: `dagster dev -m adrecon_assets.definitions`.

Resources are chosen per environment in one place: `RESOURCES_BY_ENGINE[ADRECON_ENGINE]`.
"""

from __future__ import annotations

import dagster as dg

from adrecon_assets import settings
from adrecon_assets.alerts.hooks import with_alert_hooks
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.sensors import ALERT_SENSORS
from adrecon_assets.assets.lake import raw_clicks, raw_emissions
from adrecon_assets.assets.monitoring import anomaly_metrics
from adrecon_assets.assets.reconciliation import fraud_flags, joined_clicks, reconciled_statistics
from adrecon_assets.assets.reporting import placement_performance, refund_ledger
from adrecon_assets.checks.sla import reconciled_by_sla_hour
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.jobs import reconcile_days
from adrecon_assets.resources.engine import PolarsEngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.spark import SparkEngineResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.sensors.late_data import late_data_sensor
from adrecon_assets.sensors.readiness import lake_readiness_sensor
from adrecon_assets.sensors.sla import reconciled_statistics_sla_sensor

settings.apply_defaults()

SHARED_RESOURCES = {
    "storage": StorageResource(
        lake_root=dg.EnvVar("ADRECON_LAKE_ROOT"), warehouse_root=dg.EnvVar("ADRECON_WAREHOUSE")
    ),
    "serving_db": ServingResource(database=dg.EnvVar("ADRECON_SERVING_DB")),
    "check_thresholds": CheckThresholds(),
    "alerts": AlertResource(
        webhook_url=dg.EnvVar("ADRECON_ALERT_WEBHOOK_URL"),
        ui_base_url=dg.EnvVar("ADRECON_UI_BASE_URL"),
    ),
}

RESOURCES_BY_ENGINE = {
    "polars": {**SHARED_RESOURCES, "engine": PolarsEngineResource()},
    "spark": {
        **SHARED_RESOURCES,
        "engine": SparkEngineResource(spark_master=dg.EnvVar("ADRECON_SPARK_MASTER")),
    },
}

ASSETS = [
    raw_clicks,
    raw_emissions,
    joined_clicks,
    fraud_flags,
    reconciled_statistics,
    anomaly_metrics,
    placement_performance,
    refund_ledger,
]

SENSORS = [
    lake_readiness_sensor,
    late_data_sensor,
    *ALERT_SENSORS,
    reconciled_statistics_sla_sensor,
]

# Runs print their steps' INFO lines (what was staged, replaced, skipped) to the terminal of
# `make run`, not every DEBUG event of a month-long catch-up; the UI keeps the full event log.
RUN_CONSOLE_LOGGERS = {"console": dg.colored_console_logger.configured({"log_level": "INFO"})}

defs = dg.Definitions(
    # Each step alerts its own failures (contract 6), also without a daemon.
    assets=with_alert_hooks(ASSETS),
    asset_checks=[reconciled_by_sla_hour],
    jobs=[reconcile_days],
    sensors=SENSORS,
    resources=RESOURCES_BY_ENGINE[settings.engine_name()],
    # One process per run instead of one per step: six steps share the engine's imports and
    # warm-up, which saves ~30 s per partition (see benchmarks/).
    executor=dg.in_process_executor,
    loggers=RUN_CONSOLE_LOGGERS,
)
