"""alert_sensor and the in-run hooks against real sinks (webhook, PagerDuty-compatible, SMTP):
each condition fires once, on the channels of its priority, and resolves once with its key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets.alerts.delivery import AlertDelivery, Fire
from adrecon_assets.alerts.hooks import with_alert_hooks
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.sensors import evaluate_alerts
from adrecon_assets.alerts.state import AlertState
from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.checks.sla import SLA_CHECK
from adrecon_assets.definitions import ASSETS, defs
from adrecon_assets.lake import Lake
from adrecon_assets.rules import DURATION_METADATA, SLA_CAUSE_METADATA, Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.sensor_lakes import days_ago
from adrecon_assets_tests.sensor_lakes import write_day as write_closed_day
from adrecon_assets_tests.smtp_sink import HOST, SmtpSink, smtp_server
from adrecon_assets_tests.webhook import Webhook, closed_port_url, webhook_server

DAY = date(2026, 1, 2)
NOW = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
UI = "http://dagster.example:3000"
ROUTING_KEY = "rk-0123"
CONTRACT_FIELDS = {
    "kind",
    "asset",
    "check",
    "partition",
    "severity",
    "run_id",
    "message",
    "priority",
    "status",
    "dedup_key",
}
NEGATIVE_COST_KEY = "asset_check:raw_emissions:no_quarantined_rows:2026-01-02"


@dataclass
class Sinks:
    webhook: Webhook
    pagerduty: Webhook
    smtp: SmtpSink

    def alerts(self, email: bool = True) -> AlertResource:
        return AlertResource(
            webhook_url=self.webhook.url,
            pagerduty_routing_key=ROUTING_KEY,
            pagerduty_events_url=self.pagerduty.url,
            smtp_url=f"smtp://{HOST}:{self.smtp.port}" if email else "",
            email_from="adrecon@example.com",
            email_to="oncall@example.com",
            ui_base_url=UI,
            timeout_seconds=2,
            backoff_seconds=0.01,
        )

    def pages(self) -> list[tuple[str, str]]:
        return [(a["status"], a["dedup_key"]) for a in self.webhook.received]

    def pagerduty_events(self) -> list[tuple[str, str]]:
        return [(e["event_action"], e["dedup_key"]) for e in self.pagerduty.received]


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    with (
        webhook_server() as webhook,
        webhook_server("v2/enqueue") as pagerduty,
        smtp_server() as smtp,
    ):
        yield Sinks(webhook, pagerduty, smtp)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def write_lake_day(lake: Path, click_cost: int = 100, corrupt_clicks: bool = False) -> None:
    """One emission and its valid click (so fraud_rate_within_bounds, WARN, fails: no fraud);
    a negative cost is quarantined and fails no_quarantined_rows (ERROR, blocking)."""
    emissions = [emission("e1", "o1", "top", click_cost, "2026-01-02T00:00:00")]
    write_topic(lake, Topic.EMISSIONS, DAY, emissions)
    path = write_topic(lake, Topic.CLICKS, DAY, [click("c1", "e1", "o1", "2026-01-02T01:00:00")])
    if corrupt_clicks:
        path.write_bytes(b"not parquet")


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


def tick(
    instance: dg.DagsterInstance,
    alerts: AlertResource,
    cursor: str | None,
    lake: Path,
    now: datetime = NOW,
) -> str:
    """One evaluation of alert_sensor at `now`, as the daemon would run it; the new cursor."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    evaluate_alerts(context, alerts, Lake(str(lake)), now)
    assert context.cursor is not None
    return context.cursor


def test_negative_costs_page_once_on_both_channels_and_the_fixed_rerun_resolves_them(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    write_lake_day(paths.lake, click_cost=-5)
    assert not run_day(instance, polars_resources).success
    alerts = sinks.alerts()
    cursor = tick(instance, alerts, None, paths.lake)
    (page,) = sinks.webhook.received
    assert page.keys() >= CONTRACT_FIELDS
    assert (page["kind"], page["priority"], page["status"], page["severity"]) == (
        "asset_check",
        "page",
        "firing",
        "ERROR",
    )
    assert page["dedup_key"] == NEGATIVE_COST_KEY and page["partition"] == "2026-01-02"
    assert "negative_click_cost_micros: 1" in page["message"]
    # The run failed because of that check: its failure is the same page, not a second one.
    assert sinks.pagerduty_events() == [("trigger", NEGATIVE_COST_KEY)]

    # The same condition again (a second failed run) and later ticks: nothing new.
    assert not run_day(instance, polars_resources).success
    cursor = tick(instance, alerts, cursor, paths.lake)
    # A restarted daemon: new resource objects, only the cursor the instance stored.
    cursor = tick(instance, sinks.alerts(), cursor, paths.lake)
    assert len(sinks.webhook.received) == 1 and len(sinks.pagerduty.received) == 1

    write_lake_day(paths.lake, click_cost=100)
    assert run_day(instance, polars_resources).success
    cursor = tick(instance, alerts, cursor, paths.lake)
    tick(instance, alerts, cursor, paths.lake)
    assert sinks.pages() == [("firing", NEGATIVE_COST_KEY), ("resolved", NEGATIVE_COST_KEY)]
    assert sinks.webhook.received[1]["message"] == (
        "raw_emissions no_quarantined_rows passed for 2026-01-02"
    )
    assert sinks.pagerduty_events() == [
        ("trigger", NEGATIVE_COST_KEY),
        ("resolve", NEGATIVE_COST_KEY),
    ]
    # The fixed day's WARN (its one click is no fraud) went to the e-mail digest only.
    (digest,) = sinks.smtp.messages
    text = digest.get_body(("plain",)).get_content()
    assert "[firing] 2026-01-02 fraud_flags / fraud_rate_within_bounds (WARN)" in text


def test_a_warn_check_reaches_only_the_digest_batched_per_interval(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    write_lake_day(paths.lake)
    assert run_day(instance, polars_resources).success
    alerts = sinks.alerts()
    cursor = tick(instance, alerts, None, paths.lake)
    assert sinks.webhook.received == [] and sinks.pagerduty.received == []
    (first,) = sinks.smtp.messages
    assert first["Subject"] == "[adrecon] 1 notifications, 0 resolved"
    assert "fraud_rate_within_bounds" in first.get_body(("plain",)).get_content()

    # Another notification 10 minutes later waits; the next digest goes out 60 minutes after
    # the first (ADRECON_ALERT_DIGEST_MINUTES' default), with it.
    state = AlertState.from_json(cursor)
    later = AlertDelivery(state, alerts, NOW + timedelta(minutes=10))
    note = state.open["asset_check:fraud_flags:fraud_rate_within_bounds:2026-01-02"].alert
    other_day = replace(
        note, partition="2026-01-03", dedup_key=note.dedup_key.replace("01-02", "01-03")
    )
    later.apply([Fire(other_day, 0)])
    assert later.flush_digest() == 0 and len(sinks.smtp.messages) == 1
    assert AlertDelivery(state, alerts, NOW + timedelta(minutes=59)).flush_digest() == 0
    assert AlertDelivery(state, alerts, NOW + timedelta(minutes=60)).flush_digest() == 1
    assert len(sinks.smtp.messages) == 2 and state.digest == []
    # Without e-mail, a notification goes to the webhook (never to PagerDuty).
    tick(instance, sinks.alerts(email=False), None, paths.lake)
    assert [(a["priority"], a["check"]) for a in sinks.webhook.received] == [
        ("notify", "fraud_rate_within_bounds")
    ]
    assert sinks.pagerduty.received == []


def record_sla_miss(instance: dg.DagsterInstance, day: str, cause: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=RECONCILED_STATISTICS_KEY,
            check_name=SLA_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"SLA missed: {cause}",
            metadata={SLA_CAUSE_METADATA: cause},
            partition=day,
        )
    )


def test_an_sla_miss_of_a_late_lake_notifies_and_one_of_the_pipeline_pages(
    paths: Paths, instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    record_sla_miss(instance, "2026-01-01", "lake_closed_late")
    record_sla_miss(instance, "2026-01-02", "run_failed")
    cursor = tick(instance, sinks.alerts(), None, paths.lake)
    assert sinks.pages() == [("firing", "sla:2026-01-02")]
    assert sinks.webhook.received[0]["kind"] == "sla"
    assert sinks.pagerduty_events() == [("trigger", "sla:2026-01-02")]
    (digest,) = sinks.smtp.messages
    text = digest.get_body(("plain",)).get_content()
    assert "[firing] 2026-01-01 reconciled_statistics / reconciled_by_sla_hour" in text
    assert "cause=lake_closed_late" in text and "2026-01-02" not in text.split("\n", 2)[2]

    # Reconciled (late): the page resolves; no other alert.
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=RECONCILED_STATISTICS_KEY, partition="2026-01-02")
    )
    tick(instance, sinks.alerts(), cursor, paths.lake)
    assert sinks.pagerduty_events() == [
        ("trigger", "sla:2026-01-02"),
        ("resolve", "sla:2026-01-02"),
    ]


def test_a_failed_run_pages_its_unreconciled_day_until_a_rerun_reconciles_it(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    write_lake_day(paths.lake, corrupt_clicks=True)
    failed = run_day(instance, polars_resources)
    assert not failed.success
    cursor = tick(instance, sinks.alerts(), None, paths.lake)
    (page,) = sinks.webhook.received
    assert (page["kind"], page["dedup_key"], page["run_id"]) == (
        "run_failure",
        "run_failure:2026-01-02",
        failed.run_id,
    )
    assert page["asset"] == "raw_clicks" and "not a readable Parquet file" in page["message"]
    assert page["ui_url"] == f"{UI}/runs/{failed.run_id}"

    write_lake_day(paths.lake)
    assert run_day(instance, polars_resources).success
    tick(instance, sinks.alerts(), cursor, paths.lake)
    assert sinks.pages() == [
        ("firing", "run_failure:2026-01-02"),
        ("resolved", "run_failure:2026-01-02"),
    ]


def test_without_a_daemon_the_hooks_page_and_the_sensor_neither_repeats_nor_forgets(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    write_lake_day(paths.lake, click_cost=-5)
    alerts = sinks.alerts()
    resources = {**polars_resources, "alerts": alerts}
    assert not run_day(instance, resources, with_alert_hooks(ASSETS)).success
    assert sinks.pages() == [("firing", NEGATIVE_COST_KEY)]
    assert sinks.pagerduty_events() == [("trigger", NEGATIVE_COST_KEY)]

    cursor = tick(instance, alerts, None, paths.lake)
    assert len(sinks.webhook.received) == 1  # adopted, not sent again

    write_lake_day(paths.lake)
    assert run_day(instance, resources, with_alert_hooks(ASSETS)).success
    tick(instance, alerts, cursor, paths.lake)
    assert sinks.pages() == [("firing", NEGATIVE_COST_KEY), ("resolved", NEGATIVE_COST_KEY)]


def test_sinks_that_are_down_never_fail_a_run_or_a_tick(
    paths: Paths,
    polars_resources: dict[str, object],
    instance: dg.DagsterInstance,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = AlertResource(
        webhook_url=closed_port_url(),
        pagerduty_routing_key=ROUTING_KEY,
        pagerduty_events_url=closed_port_url("v2/enqueue"),
        backoff_seconds=0.01,
    )
    write_lake_day(paths.lake, click_cost=-5)
    resources = {**polars_resources, "alerts": down}
    with caplog.at_level(logging.ERROR):
        failed = run_day(instance, resources, with_alert_hooks(ASSETS))
    # It fails on its bad row, and on nothing else: no hook errored.
    assert not failed.success
    hooks = [e.event_type_value for e in failed.all_events if "HOOK" in e.event_type_value]
    assert "HOOK_COMPLETED" in hooks and "HOOK_ERRORED" not in hooks
    assert "webhook (ADRECON_ALERT_WEBHOOK_URL) failed" in caplog.text
    cursor = tick(instance, down, None, paths.lake)
    assert NEGATIVE_COST_KEY in AlertState.from_json(cursor).open

    write_lake_day(paths.lake)
    assert run_day(instance, resources, with_alert_hooks(ASSETS)).success


def report_duration(instance: dg.DagsterInstance, day: date, seconds: float) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=RECONCILED_STATISTICS_KEY,
            partition=day.isoformat(),
            metadata={DURATION_METADATA: seconds},
        )
    )


def test_a_step_over_three_times_its_median_notifies_once_and_resolves(
    paths: Paths, instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    for offset, seconds in enumerate([10, 12, 9, 10, 11, 10, 30]):  # median 10
        report_duration(instance, date(2026, 1, 1) + timedelta(days=offset), seconds)
    report_duration(instance, date(2026, 1, 8), 100.0)  # 10x, 90 s over: slow
    alerts = sinks.alerts(email=False)
    cursor = tick(instance, alerts, None, paths.lake)
    (note,) = sinks.webhook.received
    assert (note["kind"], note["priority"], note["dedup_key"], note["partition"]) == (
        "duration",
        "notify",
        "duration:reconciled_statistics",
        "2026-01-08",
    )
    assert note["message"] == (
        "reconciled_statistics 2026-01-08 took 100 s, 10.0x the median 10 s of its previous days"
    )
    report_duration(instance, date(2026, 1, 9), 12.0)
    tick(instance, alerts, cursor, paths.lake)
    assert sinks.pages() == [
        ("firing", "duration:reconciled_statistics"),
        ("resolved", "duration:reconciled_statistics"),
    ]
    assert sinks.pagerduty.received == []


def test_a_closed_day_unreconciled_for_two_hours_pages_and_resolves(
    paths: Paths, instance: dg.DagsterInstance, sinks: Sinks
) -> None:
    day = days_ago(2)
    write_closed_day(paths.lake, day)
    now = datetime.now(UTC)
    alerts = sinks.alerts()
    cursor = tick(instance, alerts, None, paths.lake, now)
    assert sinks.webhook.received == []  # closed moments ago
    cursor = tick(instance, alerts, cursor, paths.lake, now + timedelta(hours=2, minutes=1))
    assert sinks.pages() == [("firing", f"missing_days:{day}")]
    assert sinks.pagerduty_events() == [("trigger", f"missing_days:{day}")]
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=RECONCILED_STATISTICS_KEY, partition=day.isoformat())
    )
    tick(instance, alerts, cursor, paths.lake, now + timedelta(hours=2, minutes=2))
    assert sinks.pages() == [("firing", f"missing_days:{day}"), ("resolved", f"missing_days:{day}")]


def test_the_alert_sensor_runs_by_default() -> None:
    sensor = defs.resolve_sensor_def("alert_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
