"""The alert (contract 6): what every channel receives, one JSON object per alert.

A condition (one check of one day, one unreconciled day, one sensor...) has one `dedup_key`; it
fires once while it lasts and is followed by one `resolved` alert with the same key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import quote


class AlertKind(StrEnum):
    RUN_FAILURE = "run_failure"
    ASSET_CHECK = "asset_check"
    SLA = "sla"
    MISSING_DAYS = "missing_days"
    HEALTHCHECK = "healthcheck"
    SENSOR = "sensor"
    # Not in the contract's list: a step over 3x its median duration is its own condition.
    DURATION = "duration"


class Priority(StrEnum):
    """`page` wakes the on-call developer; `notify` waits for the e-mail digest."""

    PAGE = "page"
    NOTIFY = "notify"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def dedup_key(kind: AlertKind, *parts: str | None) -> str:
    """One key per condition, e.g. `asset_check:raw_clicks:no_quarantined_rows:2026-01-02`."""
    return ":".join([kind.value, *(part or "-" for part in parts)])


@dataclass(frozen=True)
class Alert:
    """One alert with the contract's fields (None where a kind lacks one, e.g. a run's check)."""

    kind: AlertKind
    asset: str | None
    check: str | None
    partition: str | None
    severity: str
    run_id: str | None
    message: str
    priority: Priority
    dedup_key: str
    status: AlertStatus = AlertStatus.FIRING

    def resolved(self, message: str, run_id: str | None = None) -> Alert:
        """The alert that closes this condition (same key, priority and subject), with the run
        that cleared it if one did."""
        return replace(
            self, status=AlertStatus.RESOLVED, message=message, run_id=run_id or self.run_id
        )

    def payload(self, ui_base_url: str) -> dict[str, str | None]:
        fields: dict[str, str | None] = {
            **asdict(self),
            "kind": self.kind.value,
            "priority": self.priority.value,
            "status": self.status.value,
        }
        if ui_base_url:
            fields["ui_url"] = self.ui_url(ui_base_url.rstrip("/"))
        return fields

    def ui_url(self, base: str) -> str:
        """The run's page for a run failure, else the asset's checks tab, else the overview."""
        if self.kind is AlertKind.RUN_FAILURE and self.run_id:
            return f"{base}/runs/{self.run_id}"
        if self.kind is AlertKind.SENSOR and self.asset is None:
            return f"{base}/automation"
        if self.asset:
            return f"{base}/assets/{quote(self.asset)}?view=checks"
        return f"{base}/runs/{self.run_id}" if self.run_id else base

    def to_json(self) -> str:
        return json.dumps(self.payload(""), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data: dict[str, Any] = json.loads(text)
        data.pop("ui_url", None)
        return cls(
            **{
                **data,
                "kind": AlertKind(data["kind"]),
                "priority": Priority(data["priority"]),
                "status": AlertStatus(data["status"]),
            }
        )
