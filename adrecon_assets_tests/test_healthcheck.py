"""adrecon-healthcheck against a test instance: heartbeats, sensor ticks, newest reconciled day."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import pytest

# The health check reads the daemons' heartbeats; only the daemon itself writes one through
# public code, and running it would make this a slow test of Dagster rather than of the check.
from dagster._daemon.types import DaemonHeartbeat  # private-api: no public heartbeat writer

from adrecon_assets import healthcheck
from adrecon_assets.healthcheck import Finding, check_instance, expected_newest_day
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.sensor_lakes import days_ago, record_materializations

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def beat(instance: dg.DagsterInstance, seconds_ago: float) -> None:
    for daemon_type in instance.get_required_daemon_types():
        heartbeat = DaemonHeartbeat(time.time() - seconds_ago, daemon_type, "d1", errors=[])
        instance.add_daemon_heartbeat(heartbeat)


def by_subject(findings: list[Finding]) -> dict[str, bool]:
    return {finding.subject: finding.ok for finding in findings}


def test_expected_newest_day_moves_to_yesterday_at_the_sla_hour() -> None:
    assert expected_newest_day(datetime(2026, 3, 10, 6, 59, tzinfo=UTC), 7) == date(2026, 3, 8)
    assert expected_newest_day(datetime(2026, 3, 10, 7, 0, tzinfo=UTC), 7) == date(2026, 3, 9)


def test_empty_instance_is_stale_everywhere(instance: dg.DagsterInstance) -> None:
    findings = check_instance(instance, NOW, 120, 600, 7)
    assert findings and not any(finding.ok for finding in findings)
    assert "sensors" in by_subject(findings)


def test_fresh_heartbeats_and_yesterday_reconciled_are_healthy(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    beat(instance, seconds_ago=10)
    record_materializations(instance, paths.lake, [days_ago(1)])
    # SLA hour 0: yesterday is due whatever the time of day.
    ok = by_subject(check_instance(instance, datetime.now(UTC), 120, 600, 0))
    assert all(ok[f"daemon {kind}"] for kind in instance.get_required_daemon_types())
    assert ok["reconciled_statistics"] is True
    assert ok["sensors"] is False  # no daemon ever ticked a sensor in this instance


def test_old_heartbeat_and_missing_day_are_stale(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    beat(instance, seconds_ago=121)
    record_materializations(instance, paths.lake, [days_ago(2)])
    # SLA hour 0: yesterday is due whatever the time of day.
    ok = by_subject(check_instance(instance, datetime.now(UTC), 120, 600, 0))
    assert not any(ok[f"daemon {kind}"] for kind in instance.get_required_daemon_types())
    assert ok["reconciled_statistics"] is False


def test_main_exits_non_zero_and_alerts_when_stale(
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(lambda: instance))
    monkeypatch.setenv("ADRECON_ALERT_WEBHOOK_URL", "")
    with caplog.at_level(logging.WARNING):
        assert healthcheck.main([]) == 1
    assert "STALE daemon SENSOR: no heartbeat ever" in capsys.readouterr().out
    assert '"kind": "healthcheck"' in caplog.text
