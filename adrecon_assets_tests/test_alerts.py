"""Alerts reach a real webhook once per failed run and per failed check; a dead sink is logged."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets.alerts.hooks import with_alert_hooks
from adrecon_assets.alerts.resource import Alert, AlertKind, AlertResource
from adrecon_assets.alerts.sensors import (
    CheckAlertCursor,
    build_alert_sensors,
)
from adrecon_assets.definitions import ASSETS, defs
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.webhook import Webhook, closed_port_url, webhook_server

DAY = date(2026, 1, 2)
CONTRACT_FIELDS = {"kind", "asset", "check", "partition", "severity", "run_id", "message"}
UI = "http://dagster.example:3000"
run_failure_alert_sensor, asset_check_alert_sensor = build_alert_sensors(interval_seconds=30)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def fast_alerts(url: str) -> AlertResource:
    return AlertResource(webhook_url=url, ui_base_url=UI, timeout_seconds=2, backoff_seconds=0.01)


def write_day(paths: Paths, bad_click: bool) -> None:
    write_topic(
        paths.lake, Topic.EMISSIONS, DAY, [emission("e1", "o1", "top", 100, "2026-01-02T00:00:00")]
    )
    clicks = [click("c1", "e1", "o1", "2026-01-02T01:00:00")]
    if bad_click:
        clicks.append(click("c2", "e1", "o1", "2026-01-05T01:00:00"))  # outside the day
    write_topic(paths.lake, Topic.CLICKS, DAY, clicks)


def run_day(
    instance: dg.DagsterInstance,
    resources: dict[str, object],
    assets: list[dg.AssetsDefinition] = ASSETS,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        partition_key=DAY.isoformat(),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def tick_run_failure_sensor(
    instance: dg.DagsterInstance, run_id: str, alerts: AlertResource
) -> None:
    """Evaluate the run-failure sensor for a failed run, as the daemon would."""
    (failure,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    run = instance.get_run_by_id(run_id)
    assert failure.dagster_event is not None and run is not None
    run_failure_alert_sensor(
        dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=failure.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"alerts": alerts},
        ).for_run_failure()
    )


def tick_check_sensor(
    instance: dg.DagsterInstance, alerts: AlertResource, cursor: str | None
) -> str | None:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": alerts}, definitions=defs
    )
    asset_check_alert_sensor(context)
    return context.cursor


def test_webhook_receives_the_contract_fields_and_ui_link(webhook: Webhook) -> None:
    alert = Alert(AlertKind.RUN_FAILURE, "raw_clicks", None, "2026-01-02", "ERROR", "r-1", "boom")
    assert fast_alerts(webhook.url).send(alert)
    assert webhook.received == [
        {
            "kind": "run_failure",
            "asset": "raw_clicks",
            "check": None,
            "partition": "2026-01-02",
            "severity": "ERROR",
            "run_id": "r-1",
            "message": "boom",
            "ui_url": f"{UI}/runs/r-1",
        }
    ]


def test_a_flaky_sink_gets_the_alert_after_backoff(webhook: Webhook) -> None:
    webhook.failures = [503, 503]
    alert = Alert(AlertKind.ASSET_CHECK, "fraud_flags", "x", None, "WARN", None, "m")
    assert fast_alerts(webhook.url).send(alert)
    assert len(webhook.received) == 1 and webhook.failures == []


def test_a_sink_that_is_down_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    alert = Alert(AlertKind.ASSET_CHECK, "fraud_flags", "x", None, "WARN", None, "rate 0.9")
    with caplog.at_level(logging.ERROR):
        assert not fast_alerts(closed_port_url()).send(alert)
    assert "failed after 3 attempts" in caplog.text and '"message": "rate 0.9"' in caplog.text


def test_no_webhook_configured_logs_the_alert(caplog: pytest.LogCaptureFixture) -> None:
    alert = Alert(AlertKind.ASSET_CHECK, "fraud_flags", "x", None, "WARN", None, "m")
    with caplog.at_level(logging.WARNING):
        assert not AlertResource().send(alert)
    assert "no webhook configured" in caplog.text


def test_quarantine_run_alerts_the_failed_run_and_check_once(
    paths: Paths,
    polars_resources: dict[str, object],
    instance: dg.DagsterInstance,
    webhook: Webhook,
) -> None:
    write_day(paths, bad_click=True)
    result = run_day(instance, polars_resources)
    assert not result.success
    alerts = fast_alerts(webhook.url)

    tick_run_failure_sensor(instance, result.run_id, alerts)
    (run_alert,) = webhook.received
    assert run_alert.keys() >= CONTRACT_FIELDS
    assert run_alert["kind"] == "run_failure" and run_alert["asset"] == "raw_clicks"
    assert run_alert["partition"] == "2026-01-02" and run_alert["run_id"] == result.run_id
    assert (
        "no_quarantined_rows: 1 bad rows quarantined (clicked_at_outside_partition_day: 1)"
        in run_alert["message"]
    )
    assert run_alert["ui_url"] == f"{UI}/runs/{result.run_id}"

    webhook.received.clear()
    cursor = tick_check_sensor(instance, alerts, None)
    (check_alert,) = webhook.received
    assert check_alert == {
        "kind": "asset_check",
        "asset": "raw_clicks",
        "check": "no_quarantined_rows",
        "partition": "2026-01-02",
        "severity": "ERROR",
        "run_id": result.run_id,
        "message": check_alert["message"],
        "ui_url": f"{UI}/assets/raw_clicks?view=checks",
    }
    assert "1 bad rows quarantined (clicked_at_outside_partition_day: 1)" in check_alert["message"]
    assert "quarantined_clicked_at_outside_partition_day=1" in check_alert["message"]

    # Later ticks with nothing new send nothing: the cursor already passed these evaluations.
    assert tick_check_sensor(instance, alerts, cursor) == cursor
    assert len(webhook.received) == 1


def test_warn_check_of_a_successful_run_alerts_once_across_ticks(
    paths: Paths,
    polars_resources: dict[str, object],
    instance: dg.DagsterInstance,
    webhook: Webhook,
) -> None:
    # A clean day whose single click is not fraud: fraud_rate_within_bounds (WARN) fails, the
    # run succeeds, so only the check sensor can tell on-call.
    write_day(paths, bad_click=False)
    assert run_day(instance, polars_resources).success
    alerts = fast_alerts(webhook.url)
    cursor = tick_check_sensor(instance, alerts, None)
    assert [(a["asset"], a["check"], a["severity"]) for a in webhook.received] == [
        ("fraud_flags", "fraud_rate_within_bounds", "WARN")
    ]
    # A second run of the day fails the same check again: a new evaluation, one new alert.
    assert run_day(instance, polars_resources).success
    cursor = tick_check_sensor(instance, alerts, cursor)
    tick_check_sensor(instance, alerts, cursor)
    assert len(webhook.received) == 2


def test_check_sensor_with_a_dead_sink_still_advances(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    write_day(paths, bad_click=False)
    assert run_day(instance, polars_resources).success
    cursor = tick_check_sensor(instance, fast_alerts(closed_port_url()), None)
    assert CheckAlertCursor.from_json(cursor).after_id > 0


def test_alert_sensors_run_by_default() -> None:
    for name in ("run_failure_alert_sensor", "asset_check_alert_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


# In-run alerts: the deployed assets carry hooks, so a run alerts without any daemon.


def test_hooks_alert_a_quarantine_run_once_and_sensors_skip_it(
    paths: Paths,
    polars_resources: dict[str, object],
    instance: dg.DagsterInstance,
    webhook: Webhook,
) -> None:
    write_day(paths, bad_click=True)
    alerts = fast_alerts(webhook.url)
    resources = {**polars_resources, "alerts": alerts}
    result = run_day(instance, resources, with_alert_hooks(ASSETS))
    assert not result.success
    assert [(a["kind"], a["asset"], a["check"]) for a in webhook.received] == [
        ("asset_check", "raw_clicks", "no_quarantined_rows"),
        ("run_failure", "raw_clicks", None),
    ]
    assert all(a.keys() >= CONTRACT_FIELDS for a in webhook.received)
    assert all(a["partition"] == "2026-01-02" for a in webhook.received)
    # Both alerts name the reason (with its column) and its count, not only a folder.
    reason = "1 bad rows quarantined (clicked_at_outside_partition_day: 1)"
    assert all(reason in alert["message"] for alert in webhook.received)
    assert "raw_clicks 2026-01-02 not published" in webhook.received[1]["message"]

    tick_run_failure_sensor(instance, result.run_id, alerts)
    tick_check_sensor(instance, alerts, None)
    assert len(webhook.received) == 2


@pytest.mark.slow
def test_cli_materialize_alerts_the_webhook_without_a_daemon(
    paths: Paths, webhook: Webhook, tmp_path: Path
) -> None:
    write_day(paths, bad_click=True)
    environment = {
        **os.environ,
        "ADRECON_ALERT_WEBHOOK_URL": webhook.url,
        "ADRECON_UI_BASE_URL": UI,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize"]
    command += ["-m", "adrecon_assets.definitions", "--select", "*", "--partition", "2026-01-02"]
    completed = subprocess.run(command, env=environment, capture_output=True, timeout=300)
    assert completed.returncode != 0
    kinds = sorted((a["kind"], a["check"] or "") for a in webhook.received)
    assert kinds == [("asset_check", "no_quarantined_rows"), ("run_failure", "")]
    assert all(a["ui_url"].startswith(UI) for a in webhook.received)
