"""The SLA (contract 6.1): day D is due by ADRECON_SLA_HOUR_UTC:00 UTC on D+1, judged once, at
its deadline, from its first reconciliation, a miss recorded with its cause."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.sensors import build_alert_sensor
from adrecon_assets.checks.sla import (
    RECONCILED_STATISTICS,
    SLA_CHECK,
    LakeFacts,
    SlaFacts,
    first_reconciled_at,
    judge,
    last_due_day,
    reconciled_by_sla_hour,
)
from adrecon_assets.definitions import ASSETS, defs
from adrecon_assets.jobs import SLA_CHECK_KEY
from adrecon_assets.resources.automation_settings import AutomationSettings
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import SLA_CAUSE_METADATA, SlaMissCause, Topic, sla_deadline
from adrecon_assets.sensors import sla as sla_sensor_module
from adrecon_assets.sensors.sla import build_sla_sensor
from adrecon_assets.settings import Settings, SettingsError
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.instance_runs import add_run
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.sensor_lakes import close_at, days_ago, write_day
from adrecon_assets_tests.webhook import Webhook, webhook_server

alert_sensor = build_alert_sensor(interval_seconds=30)
reconciled_statistics_sla_sensor = build_sla_sensor(interval_seconds=30)
# SLA hour 0 in the instance tests: yesterday is due (and past due) whenever they run.
MIDNIGHT = AutomationSettings(
    late_data_lookback_days=14, late_data_quiet_seconds=600, sla_hour_utc=0
)
NO_LAKE = StorageResource(lake_root="/nonexistent/lake", warehouse_root="/nonexistent/warehouse")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Day D of the pure verdict tests and its default deadline (07:00 on D+1).
DAY, DUE = date(2026, 1, 2), utc("2026-01-03T07:00:00")
CLOSED_IN_TIME = LakeFacts(exists=True, closed_at=utc("2026-01-03T00:20:00"))


def facts(now: str = "2026-01-03T07:00:30", **changes: object) -> SlaFacts:
    """The facts of DAY: lake closed at 00:20, nothing reconciled, no run; `changes` apply."""
    base = SlaFacts(DAY, DUE, utc(now), first_reconciled_at=None, lake=CLOSED_IN_TIME)
    return SlaFacts(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


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
    assert sla_deadline(date(2026, 1, 2), hour) == utc("2026-01-03T09:00:00")
    with pytest.raises(SettingsError, match="ADRECON_SLA_HOUR_UTC='24'.*0-23"):
        Settings.from_env({"ADRECON_SLA_HOUR_UTC": "24"})


def test_no_verdict_before_the_deadline() -> None:
    assert judge(facts(now="2026-01-03T06:59:59")) is None


def test_day_first_reconciled_by_its_deadline_passes() -> None:
    verdict = judge(facts(first_reconciled_at=utc("2026-01-03T06:30:00")))
    assert verdict is not None and verdict.passed
    assert verdict.metadata["minutes_past_deadline"] == 0.0
    assert verdict.metadata[SLA_CAUSE_METADATA] == "none"
    assert "30.0 min early" in verdict.description


def test_day_reconciled_after_its_deadline_is_a_miss_with_the_delay() -> None:
    # Reconciled at 08:15, 75 minutes after 07:00; judged later, at 09:00.
    verdict = judge(facts(now="2026-01-03T09:00:00", first_reconciled_at=utc("2026-01-03T08:15")))
    assert verdict is not None and not verdict.passed
    assert verdict.cause is SlaMissCause.RECONCILED_LATE
    assert verdict.metadata["minutes_past_deadline"] == 75.0
    assert "reconciled at 2026-01-03 08:15 UTC, late by 75.0 min" in verdict.description


def test_run_running_at_the_deadline_is_a_miss() -> None:
    verdict = judge(facts(running_since=utc("2026-01-03T06:50:00")))
    assert verdict is not None and not verdict.passed
    assert verdict.cause is SlaMissCause.RUN_RUNNING
    assert verdict.metadata["minutes_past_deadline"] == 0.5  # judged at 07:00:30
    assert "a run running since 2026-01-03 06:50 UTC" in verdict.description


def test_lake_closing_after_the_deadline_is_lake_closed_late() -> None:
    late_lake = LakeFacts(exists=True, closed_at=utc("2026-01-03T07:40:00"))
    reconciled = judge(
        facts(now="2026-01-03T08:00", lake=late_lake, first_reconciled_at=utc("2026-01-03T07:50"))
    )
    assert reconciled is not None and reconciled.cause is SlaMissCause.LAKE_CLOSED_LATE
    assert reconciled.metadata["minutes_past_deadline"] == 50.0
    assert "the lake closed 2026-01-02 at 2026-01-03 07:40 UTC, after the deadline" in (
        reconciled.description
    )
    still_open = judge(facts(lake=LakeFacts(exists=True, closed_at=None)))
    assert still_open is not None and still_open.cause is SlaMissCause.LAKE_CLOSED_LATE
    assert "the lake has not closed 2026-01-02" in still_open.description


@pytest.mark.parametrize(
    ("changes", "cause", "text"),
    [
        (
            {"lake": LakeFacts(False, None)},
            SlaMissCause.NO_LAKE_DATA,
            "no lake data for 2026-01-02",
        ),
        (
            {"last_run_failed_at": utc("2026-01-03T05:00:00")},
            SlaMissCause.RUN_FAILED,
            "the last run failed at 2026-01-03 05:00 UTC",
        ),
        ({}, SlaMissCause.NOT_RECONCILED, "not reconciled by the deadline"),
        # The lake could not be read: no cause of the lake's is named.
        ({"lake": None}, SlaMissCause.NOT_RECONCILED, "not reconciled by the deadline"),
    ],
)
def test_each_cause_of_a_day_not_reconciled(
    changes: dict[str, object], cause: SlaMissCause, text: str
) -> None:
    verdict = judge(facts(**changes))
    assert verdict is not None and not verdict.passed
    assert verdict.cause is cause and verdict.metadata[SLA_CAUSE_METADATA] == cause.value
    assert text in verdict.description


class Clock:
    """Ticks the SLA sensor at chosen instants and records its events as the daemon would."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        monkeypatch: pytest.MonkeyPatch,
        storage: StorageResource,
    ) -> None:
        self.instance = instance
        self.monkeypatch = monkeypatch
        self.storage = storage
        self.cursor: str | None = None

    def tick(self, now: datetime) -> list[dg.AssetCheckEvaluation]:
        self.monkeypatch.setattr(sla_sensor_module, "utc_now", lambda: now)
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"automation": MIDNIGHT, "storage": self.storage},
        )
        result = reconciled_statistics_sla_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor or self.cursor
        events = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        for event in events:
            self.instance.report_runless_asset_event(event)
        return events


def reconcile(instance: dg.DagsterInstance, day: date) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=RECONCILED_STATISTICS, partition=day.isoformat())
    )


def sla_evaluations(instance: dg.DagsterInstance) -> list[str | None]:
    """The partition of every recorded evaluation of the check, newest first."""
    history = instance.event_log_storage.get_asset_check_execution_history(SLA_CHECK_KEY, 100)
    return [record.partition for record in history]


def test_run_running_at_the_deadline_is_recorded_once_as_a_miss(
    instance: dg.DagsterInstance, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    yesterday = days_ago(1)
    deadline = sla_deadline(yesterday, 0)
    write_day(paths.lake, yesterday)
    for topic in Topic:
        close_at(paths.lake, topic, yesterday, deadline - timedelta(hours=2))
    add_run(
        instance,
        job_name="reconcile_days",
        tags={"dagster/partition": yesterday.isoformat()},
        status=dg.DagsterRunStatus.STARTED,
    )
    storage = StorageResource(lake_root=str(paths.lake), warehouse_root=str(paths.warehouse))
    clock = Clock(instance, monkeypatch, storage)
    now = datetime.now(UTC)

    (missed,) = clock.tick(now)
    assert not missed.passed and missed.partition == yesterday.isoformat()
    assert missed.check_name == SLA_CHECK and missed.severity == dg.AssetCheckSeverity.ERROR
    assert missed.metadata[SLA_CAUSE_METADATA].value == SlaMissCause.RUN_RUNNING.value
    minutes = missed.metadata["minutes_past_deadline"].value
    assert minutes == round((now - deadline).total_seconds() / 60, 1)

    # Recorded once: not at the next tick, not after the day is reconciled, not after a reset.
    assert clock.tick(now + timedelta(minutes=5)) == []
    reconcile(instance, yesterday)
    assert clock.tick(now + timedelta(minutes=10)) == []
    clock.cursor = None
    assert clock.tick(now + timedelta(minutes=15)) == []
    assert sla_evaluations(instance) == [yesterday.isoformat()]


def test_lake_closed_after_the_deadline_is_read_from_the_success_markers(
    instance: dg.DagsterInstance, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    yesterday = days_ago(1)
    deadline = sla_deadline(yesterday, 0)
    write_day(paths.lake, yesterday)
    close_at(paths.lake, Topic.CLICKS, yesterday, deadline - timedelta(hours=1))
    close_at(paths.lake, Topic.EMISSIONS, yesterday, deadline + timedelta(minutes=42))
    storage = StorageResource(lake_root=str(paths.lake), warehouse_root=str(paths.warehouse))
    (missed,) = Clock(instance, monkeypatch, storage).tick(deadline + timedelta(hours=1))
    assert missed.metadata[SLA_CAUSE_METADATA].value == SlaMissCause.LAKE_CLOSED_LATE.value
    closed = deadline + timedelta(minutes=42)
    assert f"at {closed:%Y-%m-%d %H:%M} UTC, after the deadline" in str(missed.description)
    assert missed.metadata["minutes_past_deadline"].value == 60.0


def test_days_due_while_the_daemon_was_down_are_each_judged(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [days_ago(4), days_ago(3), days_ago(2), days_ago(1)]
    reconcile(instance, days[1])  # now: after its deadline (00:00 of the day after)
    clock = Clock(instance, monkeypatch, NO_LAKE)
    clock.cursor = days[0].isoformat()  # the day judged before the outage
    now = datetime.now(UTC)
    verdicts = {e.partition: e for e in clock.tick(now)}
    assert sorted(verdicts) == [day.isoformat() for day in days[1:]]
    late = verdicts[days[1].isoformat()]
    assert late.metadata[SLA_CAUSE_METADATA].value == SlaMissCause.RECONCILED_LATE.value
    reconciled = first_reconciled_at(instance, days[1])
    assert reconciled is not None
    expected = round((reconciled - sla_deadline(days[1], 0)).total_seconds() / 60, 1)
    assert late.metadata["minutes_past_deadline"].value == expected
    for day in days[2:]:
        cause = verdicts[day.isoformat()].metadata[SLA_CAUSE_METADATA].value
        assert cause == SlaMissCause.NOT_RECONCILED.value


def test_first_reconciliation_survives_reruns(instance: dg.DagsterInstance) -> None:
    day = days_ago(2)
    reconcile(instance, day)
    first = first_reconciled_at(instance, day)
    reconcile(instance, day)
    records = instance.fetch_materializations(RECONCILED_STATISTICS, limit=10).records
    assert len(records) == 2 and first == first_reconciled_at(instance, day)
    assert first == datetime.fromtimestamp(min(r.timestamp for r in records), UTC)


def test_nothing_is_due_before_the_first_partition(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Clock(instance, monkeypatch, NO_LAKE).tick(utc("2026-01-01T12:00:00")) == []


def test_reconciliation_runs_leave_the_check_out() -> None:
    job_checks = defs.resolve_job_def("reconcile_days").asset_layer.asset_graph.asset_check_keys
    assert SLA_CHECK_KEY in defs.resolve_asset_graph().asset_check_keys
    assert SLA_CHECK_KEY not in job_checks and len(job_checks) > 0


def test_the_check_run_by_hand_records_a_due_day_once(
    paths: Paths, polars_resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    # 2026-01-01 was due on 2026-01-02 07:00; its lake closes now, long after.
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        "2026-01-01",
        [emission("e1", "o1", "top", 5, "2026-01-01T00:00:00")],
    )
    write_topic(
        paths.lake, Topic.CLICKS, "2026-01-01", [click("c1", "e1", "o1", "2026-01-01T00:01:00")]
    )
    selection = [*ASSETS, reconciled_by_sla_hour]
    first = dg.materialize(
        selection, partition_key="2026-01-01", resources=polars_resources, instance=instance
    )
    (verdict,) = [e for e in first.get_asset_check_evaluations() if e.check_name == SLA_CHECK]
    assert not verdict.passed
    assert verdict.metadata[SLA_CAUSE_METADATA].value == SlaMissCause.LAKE_CLOSED_LATE.value
    again = dg.materialize(
        selection, partition_key="2026-01-01", resources=polars_resources, instance=instance
    )
    assert [e for e in again.get_asset_check_evaluations() if e.check_name == SLA_CHECK] == []


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


def tick_alerts(instance: dg.DagsterInstance, url: str, cursor: str | None) -> str | None:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "alerts": AlertResource(webhook_url=url, backoff_seconds=0.01),
            "storage": NO_LAKE,
        },
        definitions=defs,
    )
    alert_sensor(context)
    return context.cursor


def test_a_miss_pages_once_and_resolves_when_the_day_is_reconciled(
    instance: dg.DagsterInstance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(instance, monkeypatch, NO_LAKE)
    now = datetime.now(UTC)
    (missed,) = clock.tick(now)
    cursor = tick_alerts(instance, webhook.url, None)
    cursor = tick_alerts(instance, webhook.url, cursor)
    (alert,) = webhook.received
    assert alert["kind"] == "sla" and alert["check"] == SLA_CHECK
    assert (alert["priority"], alert["status"]) == ("page", "firing")
    assert alert["dedup_key"] == f"sla:{missed.partition}"
    assert alert["partition"] == missed.partition and "SLA missed" in alert["message"]
    # Reconciled late: no second evaluation of the day; the page resolves, once.
    reconcile(instance, days_ago(1))
    assert clock.tick(now + timedelta(minutes=1)) == []
    cursor = tick_alerts(instance, webhook.url, cursor)
    tick_alerts(instance, webhook.url, cursor)
    assert [(a["status"], a["dedup_key"]) for a in webhook.received] == [
        ("firing", f"sla:{missed.partition}"),
        ("resolved", f"sla:{missed.partition}"),
    ]


def test_day_without_lake_data_is_missed_naming_it(
    instance: dg.DagsterInstance, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The `paths` fixture's lake has both topic folders and no day in them.
    storage = StorageResource(lake_root=str(paths.lake), warehouse_root=str(paths.warehouse))
    (missed,) = Clock(instance, monkeypatch, storage).tick(datetime.now(UTC))
    assert missed.metadata[SLA_CAUSE_METADATA].value == SlaMissCause.NO_LAKE_DATA.value
    assert f"no lake data for {days_ago(1)}" in str(missed.description)
