"""SLA: yesterday's reconciled_statistics by 07:00 UTC, a failed check and one alert per miss."""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.sensors import build_alert_sensors
from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.checks.sla import (
    SLA_CHECK,
    SlaStatus,
    deadline,
    last_due_day,
    reconciled_by_sla_hour,
)
from adrecon_assets.definitions import ASSETS, defs
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import Topic
from adrecon_assets.sensors import sla as sla_sensor_module
from adrecon_assets.sensors.sla import build_sla_sensor
from adrecon_assets.settings import Settings, SettingsError
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.webhook import Webhook, webhook_server

_, asset_check_alert_sensor = build_alert_sensors(interval_seconds=30)
reconciled_statistics_sla_sensor = build_sla_sensor(interval_seconds=30)
# The SLA hour of the default settings (07:00 UTC), as the deployed sensor gets it.
AUTOMATION = AutomationSettings.from_settings(Settings.from_env({}))
# No lake here: the sensor records the miss without the lake's view of the day.
NO_LAKE = StorageResource(lake_root="/nonexistent/lake", warehouse_root="/nonexistent/warehouse")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


class Clock:
    """Ticks the SLA sensor at chosen instants and records its events as the daemon would."""

    def __init__(self, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
        self.instance = instance
        self.monkeypatch = monkeypatch
        self.cursor: str | None = None

    def tick(self, now: str) -> list[dg.AssetCheckEvaluation]:
        self.monkeypatch.setattr(sla_sensor_module, "utc_now", lambda: utc(now))
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"automation": AUTOMATION, "storage": NO_LAKE},
        )
        result = reconciled_statistics_sla_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor or self.cursor
        events = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        for event in events:
            self.instance.report_runless_asset_event(event)
        return events


def reconcile(instance: dg.DagsterInstance, day: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=RECONCILED_STATISTICS_KEY, partition=day)
    )


def tick_alerts(instance: dg.DagsterInstance, url: str, cursor: str | None) -> str | None:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"alerts": AlertResource(webhook_url=url, backoff_seconds=0.01)},
        definitions=defs,
    )
    asset_check_alert_sensor(context)
    return context.cursor


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-01-03T06:59:59.999999", date(2026, 1, 1)),
        ("2026-01-03T07:00:00", date(2026, 1, 2)),
        ("2026-01-03T23:59:59", date(2026, 1, 2)),
    ],
)
def test_last_due_day_turns_at_the_sla_hour(now: str, due: date) -> None:
    assert last_due_day(utc(now), 7) == due


def test_sla_hour_is_configurable() -> None:
    hour = Settings.from_env({"ADRECON_SLA_HOUR_UTC": "9"}).sla_hour_utc
    assert hour == 9
    assert deadline(date(2026, 1, 2), hour) == utc("2026-01-03T09:00:00")
    with pytest.raises(SettingsError, match="ADRECON_SLA_HOUR_UTC='24'.*0-23"):
        Settings.from_env({"ADRECON_SLA_HOUR_UTC": "24"})


def test_status_fails_only_after_the_deadline_without_the_day() -> None:
    day, due = date(2026, 1, 2), utc("2026-01-03T07:00:00")
    assert SlaStatus(day, due, None, utc("2026-01-03T06:59:00")).passed
    missed = SlaStatus(day, due, None, utc("2026-01-03T07:30:00"))
    assert not missed.passed and missed.metadata["minutes_past_deadline"] == 30.0
    assert SlaStatus(day, due, utc("2026-01-03T08:00:00"), utc("2026-01-03T09:00:00")).passed


def test_missed_day_fails_the_check_and_alerts_once(
    instance: dg.DagsterInstance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(instance, monkeypatch)
    reconcile(instance, "2026-01-01")
    (on_time,) = clock.tick("2026-01-03T06:00:00")  # 2026-01-01 is due and was reconciled
    assert on_time.passed and on_time.partition == "2026-01-01"

    (missed,) = clock.tick("2026-01-03T07:00:30")
    assert not missed.passed and missed.partition == "2026-01-02"
    assert missed.check_name == SLA_CHECK and missed.severity == dg.AssetCheckSeverity.ERROR
    assert clock.tick("2026-01-03T07:01:00") == []  # the same day is not recorded twice

    cursor = tick_alerts(instance, webhook.url, None)
    cursor = tick_alerts(instance, webhook.url, cursor)
    (alert,) = webhook.received
    assert alert["kind"] == "asset_check" and alert["check"] == SLA_CHECK
    assert alert["asset"] == "reconciled_statistics" and alert["partition"] == "2026-01-02"
    assert alert["severity"] == "ERROR" and alert["run_id"] is None
    assert "SLA missed" in alert["message"]

    # Late reconciliation: no second evaluation of the day and no alert.
    reconcile(instance, "2026-01-02")
    assert clock.tick("2026-01-03T09:00:00") == []
    tick_alerts(instance, webhook.url, cursor)
    assert len(webhook.received) == 1

    # The next day missed too: one new alert.
    (next_miss,) = clock.tick("2026-01-04T07:00:00")
    assert not next_miss.passed and next_miss.partition == "2026-01-03"
    tick_alerts(instance, webhook.url, cursor)
    assert [a["partition"] for a in webhook.received] == ["2026-01-02", "2026-01-03"]


def test_a_reset_cursor_does_not_record_a_day_twice(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(instance, monkeypatch)
    assert len(clock.tick("2026-01-03T07:00:00")) == 1
    clock.cursor = None
    assert clock.tick("2026-01-03T08:00:00") == []


def test_nothing_is_due_before_the_first_partition(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Clock(instance, monkeypatch).tick("2026-01-01T12:00:00") == []


def test_the_check_passes_in_a_reconciliation_run(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        "2026-01-01",
        [emission("e1", "o1", "top", 5, "2026-01-01T00:00:00")],
    )
    write_topic(
        paths.lake, Topic.CLICKS, "2026-01-01", [click("c1", "e1", "o1", "2026-01-01T00:01:00")]
    )
    result = dg.materialize(
        [*ASSETS, reconciled_by_sla_hour],
        partition_key="2026-01-01",
        resources=polars_resources,
        instance=instance,
    )
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == SLA_CHECK]
    assert evaluation.passed and "materialized at" in (evaluation.description or "")
