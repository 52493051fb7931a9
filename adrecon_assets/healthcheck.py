"""`adrecon-healthcheck`: watch the watcher (for cron or a liveness probe).

Reads the Dagster instance of DAGSTER_HOME and the lake: every required daemon's heartbeat, the
last tick of every running sensor, the newest reconciled day, and every closed day since
ADRECON_START_DATE that is not reconciled (named one per line, stale once its lake closed more
than 2 hours ago). Prints one line per finding and exits 1 if anything is stale. Each stale
finding pages once (a dead daemon otherwise means silently no reconciliation, and the alert
sensor runs in that daemon); when it is fine again, one `resolved` alert follows. The open
findings are kept in the instance's key-value store between runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from adrecon_assets.alerts.hooks import daemon_watching
from adrecon_assets.alerts.model import Alert, AlertKind, Priority, dedup_key
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.assets import RECONCILED_STATISTICS_KEY
from adrecon_assets.day_accounting import unreconciled_closed_days
from adrecon_assets.lake import Lake, LakeNotFoundError
from adrecon_assets.rules import UNRECONCILED_CLOSED_DAY_GRACE
from adrecon_assets.settings import load_settings

# Values of Dagster's (private) InstigatorType and InstigatorStatus enums, by their names.
SENSOR = "SENSOR"
RUNNING_SENSOR_STATUSES = {"RUNNING", "DECLARED_IN_CODE"}
# Findings about the watcher itself: paged here even while a daemon runs alert_sensor.
WATCHER_SUBJECTS = ("daemon ", "sensor")
# The instance key-value entry holding the open findings' alerts (JSON), between cron runs.
OPEN_ALERTS_KEY = "adrecon/healthcheck/open_alerts"


@dataclass(frozen=True)
class Finding:
    subject: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK   ' if self.ok else 'STALE'} {self.subject}: {self.detail}"


def daemon_findings(
    instance: dg.DagsterInstance, now: datetime, tolerance_seconds: float
) -> list[Finding]:
    """One finding per daemon the instance needs: a recent heartbeat without errors."""
    heartbeats = instance.get_daemon_heartbeats()
    findings = []
    for daemon_type in instance.get_required_daemon_types():
        heartbeat = heartbeats.get(daemon_type)
        if heartbeat is None:
            findings.append(Finding(f"daemon {daemon_type}", False, "no heartbeat ever"))
            continue
        age = now.timestamp() - heartbeat.timestamp
        errors = len(heartbeat.errors or [])
        ok = age <= tolerance_seconds and not errors
        detail = f"heartbeat {age:.0f} s ago" + (f", {errors} errors" if errors else "")
        findings.append(Finding(f"daemon {daemon_type}", ok, detail))
    return findings


def sensor_findings(
    instance: dg.DagsterInstance, now: datetime, tolerance_seconds: float
) -> list[Finding]:
    """One finding per running sensor: its last tick (any outcome) is recent."""
    states = [
        state
        for state in instance.all_instigator_state()
        if state.instigator_type.value == SENSOR and state.status.value in RUNNING_SENSOR_STATUSES
    ]
    if not states:
        return [Finding("sensors", False, "no running sensor has ever ticked")]
    findings = []
    for state in sorted(states, key=lambda state: state.instigator_name):
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        subject = f"sensor {state.instigator_name}"
        if not ticks:
            findings.append(Finding(subject, False, "no tick yet"))
            continue
        age = now.timestamp() - ticks[0].timestamp
        detail = f"last tick {age:.0f} s ago ({ticks[0].status.value})"
        findings.append(Finding(subject, age <= tolerance_seconds, detail))
    return findings


def expected_newest_day(now: datetime, sla_hour_utc: int) -> date:
    """Yesterday once today's SLA hour has passed, else the day before yesterday."""
    lag = 1 if now.hour >= sla_hour_utc else 2
    return now.date() - timedelta(days=lag)


def reconciled_finding(instance: dg.DagsterInstance, now: datetime, sla_hour_utc: int) -> Finding:
    materialized = instance.get_materialized_partitions(RECONCILED_STATISTICS_KEY)
    expected = expected_newest_day(now, sla_hour_utc)
    if not materialized:
        return Finding("reconciled_statistics", False, f"no day reconciled, expected {expected}")
    newest = max(date.fromisoformat(key) for key in materialized)
    return Finding(
        "reconciled_statistics",
        newest >= expected,
        f"newest reconciled day {newest} (expected at least {expected})",
    )


def unreconciled_findings(
    instance: dg.DagsterInstance, lake_root: str, now: datetime
) -> list[Finding]:
    """One finding per closed day not reconciled (stale once its lake closed more than
    UNRECONCILED_CLOSED_DAY_GRACE ago), or one saying every closed day is reconciled."""
    try:
        unreconciled = unreconciled_closed_days(instance, Lake(lake_root), now)
    except LakeNotFoundError as error:
        return [Finding("lake", False, f"cannot read the lake: {error}")]
    if not unreconciled:
        return [Finding("closed days", True, "every closed day is reconciled")]
    findings = []
    for entry in unreconciled:
        waiting = now - entry.lake_closed_at
        detail = (
            f"closed, not reconciled (lake closed {entry.lake_closed_at:%Y-%m-%d %H:%M} UTC, "
            f"{waiting.total_seconds() / 3600:.1f} h ago)"
        )
        findings.append(
            Finding(f"day {entry.day}", waiting < UNRECONCILED_CLOSED_DAY_GRACE, detail)
        )
    return findings


def check_instance(
    instance: dg.DagsterInstance,
    now: datetime,
    heartbeat_tolerance_seconds: float,
    sensor_tolerance_seconds: float,
    sla_hour_utc: int,
    lake_root: str | None = None,
) -> list[Finding]:
    """Every finding; the days' accounting only with a lake (ADRECON_LAKE_ROOT) to read."""
    return [
        *daemon_findings(instance, now, heartbeat_tolerance_seconds),
        *sensor_findings(instance, now, sensor_tolerance_seconds),
        reconciled_finding(instance, now, sla_hour_utc),
        *(unreconciled_findings(instance, lake_root, now) if lake_root is not None else []),
    ]


def finding_alert(finding: Finding) -> Alert:
    return Alert(
        kind=AlertKind.HEALTHCHECK,
        asset=None,
        check=finding.subject,
        partition=None,
        severity="ERROR",
        run_id=None,
        message=f"adrecon-healthcheck: {finding.line()}",
        priority=Priority.PAGE,
        dedup_key=dedup_key(AlertKind.HEALTHCHECK, finding.subject),
    )


def health_transitions(
    findings: Sequence[Finding], open_alerts: dict[str, Alert], watched: bool = False
) -> tuple[list[Alert], dict[str, Alert]]:
    """What to send (a page per newly stale finding, a resolution per finding fine again or
    gone) and the open alerts after it. `watched`: a daemon runs alert_sensor, which pages the
    days and the lake itself, so only the watcher's own findings (daemons, sensors) page here."""
    to_send: list[Alert] = []
    still_open: dict[str, Alert] = {}
    for finding in findings:
        alert = finding_alert(finding)
        key = alert.dedup_key
        if finding.ok:
            continue
        if key in open_alerts:
            still_open[key] = open_alerts[key]
        elif not watched or finding.subject.startswith(WATCHER_SUBJECTS):
            still_open[key] = alert
            to_send.append(alert)
    for key, alert in open_alerts.items():
        if key not in still_open:
            to_send.append(alert.resolved(f"adrecon-healthcheck: {alert.check} is fine again"))
    return to_send, still_open


def load_open_alerts(instance: dg.DagsterInstance) -> dict[str, Alert]:
    text = instance.run_storage.get_cursor_values({OPEN_ALERTS_KEY}).get(OPEN_ALERTS_KEY)
    return {key: Alert.from_json(value) for key, value in json.loads(text or "{}").items()}


def save_open_alerts(instance: dg.DagsterInstance, open_alerts: dict[str, Alert]) -> None:
    text = json.dumps({key: alert.to_json() for key, alert in sorted(open_alerts.items())})
    instance.run_storage.set_cursor_values({OPEN_ALERTS_KEY: text})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adrecon-healthcheck", description=__doc__)
    parser.add_argument("--heartbeat-tolerance", type=float, default=120.0, metavar="SECONDS")
    parser.add_argument("--sensor-tolerance", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument("--sla-hour-utc", type=int, default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    sla_hour = args.sla_hour_utc if args.sla_hour_utc is not None else settings.sla_hour_utc
    with dg.DagsterInstance.get() as instance:
        findings = check_instance(
            instance,
            datetime.now(UTC),
            args.heartbeat_tolerance,
            args.sensor_tolerance,
            sla_hour,
            settings.lake_root,
        )
        watched = daemon_watching(instance)
        to_send, still_open = health_transitions(findings, load_open_alerts(instance), watched)
        # Outside Dagster's resource resolution: the EnvVars are read here.
        alerts = AlertResource.from_settings(settings).process_config_and_initialize()
        for alert in to_send:
            alerts.send(alert)
        save_open_alerts(instance, still_open)
    for finding in findings:
        print(finding.line())
    return 0 if all(finding.ok for finding in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
