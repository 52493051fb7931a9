"""The Dagster definitions of adrecon: `dagster dev -m adrecon_assets.definitions`.

The settings are read and validated once, at load (`Settings.from_env()`: a bad value stops the
code location with a message naming the variable), and reach everything through resources:
`build_definitions(settings)` is the one place that maps them, per engine.
"""

from __future__ import annotations

import dagster as dg

from adrecon_assets.alerts.hooks import with_alert_hooks
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.sensors import build_alert_sensor
from adrecon_assets.assets.monitoring import anomaly_metrics
from adrecon_assets.assets.reconciliation import fraud_flags, joined_clicks, reconciled_statistics
from adrecon_assets.assets.reporting import placement_performance, refund_ledger
from adrecon_assets.assets.staging import LAKE_SOURCES, raw_clicks, raw_emissions
from adrecon_assets.checks.sla import reconciled_by_sla_hour
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.follow_automation import build_follow_sensor, with_follow_condition
from adrecon_assets.jobs import reconcile_days
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.engine import EngineResource, PolarsEngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.spark import SparkEngineResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.secret_masking import install_log_masking, secret_env
from adrecon_assets.sensors.crash_relaunch import build_crash_relaunch_sensor
from adrecon_assets.sensors.dead_run_workers import build_dead_run_worker_sensor
from adrecon_assets.sensors.late_data import build_late_data_sensor
from adrecon_assets.sensors.readiness import build_lake_readiness_sensor
from adrecon_assets.sensors.sla import build_sla_sensor
from adrecon_assets.settings import Engine, Settings, load_settings

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


def engine_resource(settings: Settings) -> EngineResource:
    """The engine chosen by ADRECON_ENGINE."""
    if settings.engine is Engine.SPARK:
        return SparkEngineResource(
            spark_master=settings.spark_master,
            spark_remote=secret_env("ADRECON_SPARK_REMOTE", settings.spark_remote),
        )
    return PolarsEngineResource()


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "storage": StorageResource(lake_root=settings.lake_root, warehouse_root=settings.warehouse),
        # PostgreSQL when ADRECON_SERVING_URL is set, else the DuckDB file. Secret settings go
        # in as EnvVars: the UI's resource config shows their names, never values (contract 1).
        "serving_db": ServingResource(
            database=settings.serving_db,
            url=secret_env("ADRECON_SERVING_URL", settings.serving_url),
        ),
        "check_thresholds": CheckThresholds(),
        "alerts": AlertResource.from_settings(settings),
        "automation": AutomationSettings.from_settings(settings),
        "engine": engine_resource(settings),
    }


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    interval = settings.sensor_interval_seconds
    return [
        build_lake_readiness_sensor(interval),
        build_late_data_sensor(interval),
        build_alert_sensor(interval),
        build_sla_sensor(interval),
        build_follow_sensor(interval),
        build_crash_relaunch_sensor(interval),
        build_dead_run_worker_sensor(interval),
    ]


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        # Each step alerts its own failures (contract 6), also without a daemon.
        # The anomaly windows and reports follow re-reconciled days (follow_automation.py).
        assets=[
            *LAKE_SOURCES,
            *with_follow_condition(with_alert_hooks(ASSETS), settings.late_data_lookback_days),
        ],
        asset_checks=[reconciled_by_sla_hour],
        jobs=[reconcile_days],
        sensors=build_sensors(settings),
        resources=build_resources(settings),
        # One process per run instead of one per step: six steps share the engine's imports and
        # warm-up, which saves ~30 s per partition (see benchmarks/).
        executor=dg.in_process_executor,
    )


# Every process that loads the code (code server, run workers, the CLI) masks secrets in its logs.
install_log_masking()
defs = build_definitions(load_settings())
