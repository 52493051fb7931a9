"""`alert_sensor`: every condition of contract 6, fired once and resolved once.

Each tick reads what is new in the instance (check evaluations, failed runs, step durations)
and what holds now (closed days not reconciled, failing sensors), turns it into transitions of
conditions (`Fire`, `Clear`) and applies them to the open conditions kept in the sensor's
cursor: a condition already open is not sent again, a condition that clears sends one
`resolved` alert with its `dedup_key`. The cursor is durable in the instance, so a daemon
restart neither repeats nor forgets an alert.

A failed non-blocking check (WARN, or an ERROR that is not blocking) does not fail its run, so
run-failure sensors never see it (Dagster issue 29896): evaluations are read from the instance's
asset-check executions instead. A run's own hooks (alerts/hooks.py) page only when no daemon
watches; they tag the run with the keys they sent, which this sensor adopts without resending.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from adrecon_assets.alerts.delivery import AlertDelivery
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.state import AlertState
from adrecon_assets.alerts.transitions import (
    check_transitions,
    duration_transitions,
    missing_day_transitions,
    reconciled_transitions,
    run_transitions,
    sensor_transitions,
)
from adrecon_assets.lake import Lake, LakeNotFoundError
from adrecon_assets.resources.storage import StorageResource

SENSOR_NAME = "alert_sensor"


def evaluate_alerts(
    context: dg.SensorEvaluationContext,
    alerts: AlertResource,
    lake: Lake,
    now: datetime,
) -> dg.SkipReason:
    assert context.repository_def is not None, "the sensor reads its code location's checks"
    graph = context.repository_def.asset_graph
    state = AlertState.from_json(context.cursor)
    delivery = AlertDelivery(state, alerts, now)
    delivery.apply(check_transitions(context.instance, sorted(graph.asset_check_keys), state))
    delivery.apply(run_transitions(context.instance, state))
    delivery.apply(reconciled_transitions(context.instance, state))
    try:
        delivery.apply(missing_day_transitions(context.instance, lake, state, now))
    except LakeNotFoundError as error:
        # The readiness sensor fails on a misconfigured lake: its failing ticks page.
        context.log.error(f"missing days not evaluated: {error}")
    delivery.apply(sensor_transitions(context.instance, state, now))
    asset_keys = sorted(graph.materializable_asset_keys)
    delivery.apply(duration_transitions(context.instance, asset_keys, state))
    digested = delivery.flush_digest()
    # Saved after sending: a crash mid-tick may repeat an alert, never lose one.
    context.update_cursor(state.to_json())
    return dg.SkipReason(
        f"sent {len(delivery.sent)} alerts ({digested} in an e-mail digest); "
        f"{len(state.open)} conditions open; {len(state.digest)} notifications wait for the "
        "next digest"
    )


def build_alert_sensor(interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description=(
            "Fires each alert condition of contract 6 once (page or notification) and sends "
            "one resolved alert when it clears; the open conditions live in this cursor."
        ),
    )
    def alert_sensor(
        context: dg.SensorEvaluationContext,
        alerts: AlertResource,
        storage: StorageResource,
    ) -> dg.SkipReason:
        return evaluate_alerts(context, alerts, storage.lake, datetime.now(UTC))

    return alert_sensor
