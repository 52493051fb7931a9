"""Declarative automation: the anomaly windows and the reports follow every re-reconciled day.

`anomaly_metrics`, `placement_performance` (both read a trailing week of reconciled days) and
`refund_ledger` of day D are recomputed by Dagster's automation daemon whenever a day they read
was materialized again after them (a late-data rerun, a backfill, a manual run), once per
change, after the upstream runs finished, within the lookback window. A partition never
materialized is left alone: a new day is the readiness sensor's (it reconciles the whole day,
reports included), and a day without its own inputs cannot be computed.

Why the readiness and late-data logic stays in sensors is stated in docs/operating.md (Operations).
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from adrecon_assets.assets.monitoring import anomaly_metrics
from adrecon_assets.assets.reporting import placement_performance, refund_ledger

FOLLOWERS = [anomaly_metrics, placement_performance, refund_ledger]
FOLLOWER_KEYS = [key for asset in FOLLOWERS for key in asset.keys]


def follow_upstream(lookback_days: int) -> dg.AutomationCondition:
    """Rerun a materialized partition of the last `lookback_days` days once after any day it
    reads was updated by another run, when nothing upstream or of its own is in progress."""
    return (
        dg.AutomationCondition.in_latest_time_window(timedelta(days=lookback_days))
        & ~dg.AutomationCondition.missing()
        & dg.AutomationCondition.any_deps_updated().since(
            dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated()
        )
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("follow re-reconciled days")


def with_follow_condition(
    assets: list[dg.AssetsDefinition], lookback_days: int
) -> list[dg.AssetsDefinition]:
    """`assets` with the follow condition on the anomaly windows and the reports."""
    condition = follow_upstream(lookback_days)
    return [
        asset.map_asset_specs(
            lambda spec: (
                spec.replace_attributes(automation_condition=condition)
                if spec.key in FOLLOWER_KEYS
                else spec
            )
        )
        for asset in assets
    ]


def build_follow_sensor(interval_seconds: int) -> dg.AutomationConditionSensorDefinition:
    """The automation sensor that evaluates the follow condition, running by default."""
    return dg.AutomationConditionSensorDefinition(
        "follow_reconciled_days",
        target=dg.AssetSelection.assets(*FOLLOWER_KEYS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description=(
            "Recomputes the anomaly windows and the reports of every materialized day whose "
            "inputs were materialized again after them (declarative automation)."
        ),
    )
