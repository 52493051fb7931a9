"""The alert sensor's durable state, kept in its cursor (stored in the Dagster instance, so it
survives daemon restarts): the open conditions, the notifications waiting for the next e-mail
digest, and how far the sensor has read the instance's check executions, runs and
materializations."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from adrecon_assets.alerts.model import Alert


@dataclass(frozen=True)
class OpenCondition:
    alert: Alert
    opened_at: float


@dataclass
class AlertState:
    # Check executions: ids up to `checks_after_id` are done, except `pending_check_ids`,
    # planned but not evaluated then (ids are assigned when a run plans its checks).
    checks_after_id: int = 0
    pending_check_ids: set[int] = field(default_factory=set)
    # Failed runs updated after this (epoch seconds) are new.
    runs_updated_after: float = 0.0
    # Materializations (of duration_seconds) with a storage id above this are new.
    materializations_after_id: int = 0
    open: dict[str, OpenCondition] = field(default_factory=dict)
    digest: list[Alert] = field(default_factory=list)
    last_digest_at: float | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "checks_after_id": self.checks_after_id,
            "pending_check_ids": sorted(self.pending_check_ids),
            "runs_updated_after": self.runs_updated_after,
            "materializations_after_id": self.materializations_after_id,
            "open": {
                key: {"alert": json.loads(c.alert.to_json()), "opened_at": c.opened_at}
                for key, c in sorted(self.open.items())
            },
            "digest": [json.loads(alert.to_json()) for alert in self.digest],
            "last_digest_at": self.last_digest_at,
        }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> AlertState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            checks_after_id=int(data["checks_after_id"]),
            pending_check_ids={int(i) for i in data["pending_check_ids"]},
            runs_updated_after=float(data["runs_updated_after"]),
            materializations_after_id=int(data["materializations_after_id"]),
            open={
                key: OpenCondition(Alert.from_json(json.dumps(c["alert"])), float(c["opened_at"]))
                for key, c in data["open"].items()
            },
            digest=[Alert.from_json(json.dumps(alert)) for alert in data["digest"]],
            last_digest_at=data["last_digest_at"],
        )
