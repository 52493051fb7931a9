"""The notification digest: many lower-priority alerts in one e-mail, as plain text and HTML.

Each entry names the day, the asset, the check, the numbers (the alert's message carries the
check's metadata) and a link to the UI.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

from adrecon_assets.alerts.model import Alert, AlertStatus

STAMP = "%Y-%m-%d %H:%M UTC"
COLUMNS = ("status", "day", "asset", "check", "severity", "what happened")


def subject(alerts: Sequence[Alert]) -> str:
    firing = sum(alert.status is AlertStatus.FIRING for alert in alerts)
    resolved = len(alerts) - firing
    return f"[adrecon] {firing} notifications, {resolved} resolved"


def _cells(alert: Alert) -> tuple[str, ...]:
    return (
        alert.status.value,
        alert.partition or "-",
        alert.asset or "-",
        alert.check or alert.kind.value,
        alert.severity,
        alert.message,
    )


def plain_text(alerts: Sequence[Alert], ui_base_url: str, now: datetime) -> str:
    lines = [f"adrecon notifications up to {now:{STAMP}} (lower priority: no page was sent)", ""]
    for alert in alerts:
        status, day, asset, check, severity, message = _cells(alert)
        lines.append(f"- [{status}] {day} {asset} / {check} ({severity})")
        lines.append(f"  {message}")
        if ui_base_url:
            lines.append(f"  {alert.ui_url(ui_base_url.rstrip('/'))}")
    return "\n".join(lines) + "\n"


def html_text(alerts: Sequence[Alert], ui_base_url: str, now: datetime) -> str:
    header = "".join(f"<th>{html.escape(column)}</th>" for column in COLUMNS)
    rows = []
    for alert in alerts:
        cells = [html.escape(cell) for cell in _cells(alert)]
        if ui_base_url:
            link = html.escape(alert.ui_url(ui_base_url.rstrip("/")), quote=True)
            cells[2] = f'<a href="{link}">{cells[2]}</a>'
        colour = "#b45309" if alert.status is AlertStatus.FIRING else "#15803d"
        cells[0] = f'<b style="color:{colour}">{cells[0]}</b>'
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    style = (
        "body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "th{background:#f3f4f6}td:nth-child(2){white-space:nowrap}"
    )
    return (
        f"<html><head><style>{style}</style></head><body>"
        f"<h2>adrecon notifications</h2><p>Up to {now:{STAMP}}. Lower priority: no page was "
        f"sent for these.</p><table><tr>{header}</tr>{''.join(rows)}</table></body></html>"
    )


def digest_message(
    alerts: Sequence[Alert], sender: str, recipients: Sequence[str], ui_base_url: str, now: datetime
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject(alerts)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(plain_text(alerts, ui_base_url, now))
    message.add_alternative(html_text(alerts, ui_base_url, now), subtype="html")
    return message
