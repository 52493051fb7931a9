"""PagerDuty Events API v2: a page is a `trigger`, its resolution a `resolve` with the same
`dedup_key`, so PagerDuty opens one incident per condition and closes it by itself.

dagster-pagerduty is not used: its `PagerDutyService` goes through the `pypd` client, whose
endpoint is fixed to events.pagerduty.com (no ADRECON_PAGERDUTY_EVENTS_URL, so no local sink
in tests or a proxy in production).
"""

from __future__ import annotations

from typing import Any

from adrecon_assets.alerts.model import Alert, AlertStatus

# PagerDuty's payload severities for the alert's severity (check severities are ERROR/WARN).
PAGERDUTY_SEVERITY = {"ERROR": "error", "WARN": "warning"}
SOURCE = "adrecon"
# PagerDuty truncates a summary at 1024 characters.
SUMMARY_LIMIT = 1024


def pagerduty_event(alert: Alert, routing_key: str, ui_base_url: str) -> dict[str, Any]:
    """The Events API v2 body for `alert` (the caller never logs it: it holds the key)."""
    if alert.status is AlertStatus.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedup_key}
    subject = " ".join(part for part in (alert.asset, alert.check, alert.partition) if part)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": f"adrecon {alert.kind.value}: {subject}: {alert.message}"[:SUMMARY_LIMIT],
            "source": SOURCE,
            "severity": PAGERDUTY_SEVERITY.get(alert.severity, "critical"),
            "component": alert.asset,
            "group": alert.partition,
            "class": alert.kind.value,
            "custom_details": alert.payload(ui_base_url),
        },
    }
    if ui_base_url:
        event["links"] = [{"href": alert.ui_url(ui_base_url.rstrip("/")), "text": "Dagster UI"}]
    return event
