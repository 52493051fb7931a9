"""The alert conditions as plain functions: priorities, thresholds at their edges, and the
healthcheck's fire-once-then-resolve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pytest

from adrecon_assets.alerts.conditions import (
    check_alert,
    duration_overrun,
    failing_since,
    missing_day_alerts,
    sensor_alert,
    sla_priority,
)
from adrecon_assets.alerts.delivery import Clear, Fire
from adrecon_assets.alerts.model import Alert, AlertKind, AlertStatus, Priority
from adrecon_assets.alerts.state import AlertState, OpenCondition
from adrecon_assets.alerts.transitions import error_text, sensor_transitions
from adrecon_assets.healthcheck import (
    Finding,
    health_transitions,
    load_open_alerts,
    save_open_alerts,
)
from adrecon_assets.rules import SLA_CAUSE_METADATA, SlaMissCause

NOW = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cause", "priority"),
    [
        (SlaMissCause.LAKE_CLOSED_LATE, Priority.NOTIFY),
        (SlaMissCause.NO_LAKE_DATA, Priority.PAGE),
        (SlaMissCause.RUN_RUNNING, Priority.PAGE),
        (SlaMissCause.RUN_FAILED, Priority.PAGE),
        (SlaMissCause.NOT_RECONCILED, Priority.PAGE),
        (SlaMissCause.RECONCILED_LATE, Priority.PAGE),
        (None, Priority.PAGE),
    ],
)
def test_only_a_lake_closed_late_sla_miss_is_a_notification(
    cause: SlaMissCause | None, priority: Priority
) -> None:
    assert sla_priority(cause.value if cause else None) is priority


def test_sla_evaluation_is_an_sla_alert_keyed_by_day() -> None:
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("reconciled_statistics"),
        check_name="reconciled_by_sla_hour",
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="SLA missed: the lake closed at 08:10 UTC, after the deadline",
        metadata={SLA_CAUSE_METADATA: "lake_closed_late", "minutes_past_deadline": 70.0},
        partition="2026-01-02",
    )
    alert = check_alert(evaluation, None, None)
    assert (alert.kind, alert.priority, alert.dedup_key) == (
        AlertKind.SLA,
        Priority.NOTIFY,
        "sla:2026-01-02",
    )
    assert alert.message == (
        "SLA missed: the lake closed at 08:10 UTC, after the deadline "
        "(cause=lake_closed_late, minutes_past_deadline=70.0)"
    )


def test_a_closed_day_pages_from_exactly_two_hours_after_its_lake_closed() -> None:
    pairs = [
        (date(2026, 1, 1), NOW - timedelta(hours=2)),
        (date(2026, 1, 2), NOW - timedelta(hours=2) + timedelta(seconds=1)),
    ]
    (alert,) = missing_day_alerts(pairs, NOW)
    assert (alert.kind, alert.partition, alert.priority) == (
        AlertKind.MISSING_DAYS,
        "2026-01-01",
        Priority.PAGE,
    )
    assert alert.dedup_key == "missing_days:2026-01-01"
    assert (
        alert.message
        == "2026-01-01 is not reconciled 2.0 h after its lake closed at 2026-01-03 10:00 UTC"
    )


def test_a_sensor_pages_after_ten_minutes_of_failed_ticks_only() -> None:
    ticks = [
        (NOW, False),
        (NOW - timedelta(minutes=5), False),
        (NOW - timedelta(minutes=10), False),
        (NOW - timedelta(minutes=15), True),
        (NOW - timedelta(minutes=20), False),
    ]
    since = failing_since(ticks)
    assert since == NOW - timedelta(minutes=10)
    alert = sensor_alert("lake_readiness_sensor", since, NOW, "lake root missing")
    assert alert is not None and alert.dedup_key == "sensor:lake_readiness_sensor"
    assert sensor_alert("s", NOW - timedelta(minutes=9, seconds=59), NOW, "e") is None
    # The latest tick succeeded: not failing.
    assert failing_since([(NOW, True), *ticks]) is None


@pytest.mark.parametrize(
    ("seconds", "history", "median"),
    [
        (100.0, [10, 10, 12, 9, 10, 11, 10], 10.0),  # 10x and 90 s longer
        (70.0, [10] * 7, None),  # 7x but exactly 60 s longer: not over a minute
        (71.0, [10] * 7, 10.0),
        (299.0, [100] * 3, None),  # 199 s longer but under 3x
        (301.0, [100] * 3, 100.0),
        (500.0, [], None),  # no history, no median
    ],
)
def test_duration_over_three_times_the_median_and_a_minute_longer(
    seconds: float, history: list[float], median: float | None
) -> None:
    assert duration_overrun(seconds, history) == median


def test_healthcheck_pages_each_stale_finding_once_then_resolves_it() -> None:
    stale = Finding("daemon SENSOR", False, "heartbeat 300 s ago")
    fine = Finding("daemon SENSOR", True, "heartbeat 5 s ago")
    sent, still_open = health_transitions([stale], {})
    assert [(a.status, a.priority, a.dedup_key) for a in sent] == [
        (AlertStatus.FIRING, Priority.PAGE, "healthcheck:daemon SENSOR")
    ]
    again, still_open = health_transitions([stale], still_open)
    assert again == []
    resolved, still_open = health_transitions([fine], still_open)
    assert [(a.status, a.dedup_key) for a in resolved] == [
        (AlertStatus.RESOLVED, "healthcheck:daemon SENSOR")
    ]
    assert still_open == {}


def test_while_a_daemon_watches_the_healthcheck_pages_only_the_watchers_findings() -> None:
    findings = [
        Finding("daemon SENSOR", False, "heartbeat 300 s ago"),
        Finding("sensor alert_sensor", False, "last tick 900 s ago (SUCCESS)"),
        Finding("day 2026-01-02", False, "closed, not reconciled, 3.0 h ago"),
    ]
    sent, _ = health_transitions(findings, {}, watched=True)
    assert [alert.dedup_key for alert in sent] == [
        "healthcheck:daemon SENSOR",
        "healthcheck:sensor alert_sensor",
    ]
    unwatched, _ = health_transitions(findings, {}, watched=False)
    assert len(unwatched) == 3


def test_healthcheck_open_alerts_survive_in_the_instance() -> None:
    alert = health_transitions([Finding("sensors", False, "no tick")], {})[0][0]
    with dg.instance_for_test() as instance:
        assert load_open_alerts(instance) == {}
        save_open_alerts(instance, {alert.dedup_key: alert})
        assert load_open_alerts(instance) == {alert.dedup_key: alert}


def test_alert_json_round_trips() -> None:
    alert = missing_day_alerts([(date(2026, 1, 1), NOW - timedelta(hours=3))], NOW)[0]
    assert Alert.from_json(alert.to_json()) == alert


@dataclass(frozen=True)
class Named:
    """An enum member as the instance returns it (only `.value` is read)."""

    value: str


@dataclass(frozen=True)
class Tick:
    timestamp: float
    status: Named
    error: Any = None


class TickHistory:
    """The two instance calls `sensor_transitions` makes, over one sensor's ticks."""

    def __init__(self, ticks: list[Tick]) -> None:
        self.ticks = ticks

    def all_instigator_state(self) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(
                instigator_type=Named("SENSOR"),
                status=Named("DECLARED_IN_CODE"),
                instigator_name="lake_readiness_sensor",
                instigator_origin_id="origin",
                selector_id="selector",
            )
        ]

    def get_ticks(self, origin_id: str, selector_id: str, limit: int) -> list[Tick]:
        return self.ticks[:limit]


def test_sensor_transitions_fire_after_ten_failing_minutes_and_clear_on_a_success() -> None:
    error = SimpleNamespace(message="lake root /lake does not exist\n")
    failing = [
        Tick((NOW - timedelta(minutes=minutes)).timestamp(), Named("FAILURE"), error)
        for minutes in (0, 4, 8, 11)
    ]
    state = AlertState()
    history: Any = TickHistory(failing)
    (fire,) = sensor_transitions(history, state, NOW)
    assert isinstance(fire, Fire) and fire.alert.dedup_key == "sensor:lake_readiness_sensor"
    assert fire.alert.message == (
        "sensor lake_readiness_sensor: every tick failed since 2026-01-03 11:49 UTC: "
        "lake root /lake does not exist"
    )
    state.open[fire.alert.dedup_key] = OpenCondition(fire.alert, fire.since)
    recovered: Any = TickHistory([Tick(NOW.timestamp(), Named("SKIPPED")), *failing])
    assert sensor_transitions(recovered, state, NOW) == [
        Clear("sensor:lake_readiness_sensor", "sensor lake_readiness_sensor ticks again")
    ]


def test_a_run_failure_message_drops_the_exception_class_path() -> None:
    text = "dagster._core.definitions.events.Failure: bad lake input: f.parquet: not Parquet"
    assert error_text(text, "Failure") == "bad lake input: f.parquet: not Parquet"
    assert error_text("OSError: disk full\n", "OSError") == "disk full"
    assert error_text("Failure without a prefix", "Failure") == "Failure without a prefix"
