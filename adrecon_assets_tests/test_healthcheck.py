"""adrecon-healthcheck against a test instance: heartbeats, sensor ticks, newest reconciled day."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

# The health check reads the daemons' heartbeats; only the daemon itself writes one through
# public code, and running it would make this a slow test of Dagster rather than of the check.
from dagster._daemon.types import DaemonHeartbeat  # private-api: no public heartbeat writer

from adrecon_assets import healthcheck
from adrecon_assets.healthcheck import Finding, check_instance, expected_newest_day
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.sensor_lakes import close_at, days_ago, record_materializations, write_day

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
    assert '"dedup_key": "healthcheck:daemon SENSOR"' in caplog.text
    # Still stale at the next run: exit 1 again, but each finding was already paged.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert healthcheck.main([]) == 1
    assert '"kind": "healthcheck"' not in caplog.text


def test_unreconciled_closed_days_are_each_named(
    instance: dg.DagsterInstance,
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, recent, reconciled, open_day = days_ago(40), days_ago(3), days_ago(2), days_ago(1)
    for day in (old, recent, reconciled):
        write_day(paths.lake, day)
    write_day(paths.lake, open_day, closed=False)
    now = datetime.now(UTC)
    for topic in Topic:
        close_at(paths.lake, topic, old, now - timedelta(hours=3))
        close_at(paths.lake, topic, recent, now - timedelta(minutes=10))
    record_materializations(instance, paths.lake, [reconciled])
    findings = check_instance(instance, now, 120, 600, 0, str(paths.lake))
    days = {f.subject: f for f in findings if f.subject.startswith("day ")}
    # The day 40 days back (beyond the 14-day lookback) is named and stale after 3 h; the day
    # closed 10 minutes ago is being reconciled; the reconciled and the open day are not named.
    assert sorted(days) == [f"day {old}", f"day {recent}"]
    assert not days[f"day {old}"].ok and days[f"day {recent}"].ok
    assert "3.0 h ago" in days[f"day {old}"].detail

    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(lambda: instance))
    monkeypatch.setenv("ADRECON_ALERT_WEBHOOK_URL", "")
    assert healthcheck.main([]) == 1
    out = capsys.readouterr().out
    assert f"STALE day {old}: closed, not reconciled" in out
    assert f"OK    day {recent}: closed, not reconciled" in out


def test_every_closed_day_reconciled_is_one_ok_finding(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    write_day(paths.lake, days_ago(1))
    record_materializations(instance, paths.lake, [days_ago(1)])
    findings = check_instance(instance, datetime.now(UTC), 120, 600, 0, str(paths.lake))
    assert [f.line() for f in findings if f.subject == "closed days"] == [
        "OK    closed days: every closed day is reconciled"
    ]
