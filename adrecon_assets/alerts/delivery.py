"""Applying condition transitions (`Fire`, `Clear`) to the open conditions, and sending what
they mean: a condition already open is not sent again; one that clears sends one `resolved`
alert with its `dedup_key`; notifications wait for the e-mail digest where there is one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from adrecon_assets.alerts.model import Alert, Priority
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.state import AlertState, OpenCondition


@dataclass(frozen=True)
class Fire:
    """A condition holds. `since` is when it began; `sent` when a run's hook already sent it;
    a condition that cannot clear (`lasting=False`) is sent without being kept open."""

    alert: Alert
    since: float
    sent: bool = False
    lasting: bool = True


@dataclass(frozen=True)
class Clear:
    """A condition no longer holds (`run_id`: the run that cleared it, if one did)."""

    key: str
    message: str
    run_id: str | None = None


Transition = Fire | Clear


class AlertDelivery:
    """Applies transitions to the state and sends what they mean, once."""

    def __init__(self, state: AlertState, alerts: AlertResource, now: datetime) -> None:
        self.state, self.alerts, self.now = state, alerts, now
        self.sent: list[Alert] = []

    def deliver(self, alert: Alert) -> None:
        self.sent.append(alert)
        if alert.priority is Priority.NOTIFY and self.alerts.emails_digest:
            self.state.digest.append(alert)
        else:
            self.alerts.send(alert)

    def apply(self, transitions: Iterable[Transition]) -> None:
        for transition in transitions:
            if isinstance(transition, Fire):
                key = transition.alert.dedup_key
                if key in self.state.open:
                    continue
                if transition.lasting:
                    self.state.open[key] = OpenCondition(transition.alert, transition.since)
                if not transition.sent:
                    self.deliver(transition.alert)
            elif transition.key in self.state.open:
                condition = self.state.open.pop(transition.key)
                self.deliver(condition.alert.resolved(transition.message, transition.run_id))

    def flush_digest(self) -> int:
        """Send the waiting notifications if the last digest is old enough; how many."""
        state, minutes = self.state, self.alerts.digest_minutes
        if not state.digest:
            return 0
        last = state.last_digest_at
        if last is not None and self.now.timestamp() - last < minutes * 60:
            return 0
        count = len(state.digest)
        # Sent or logged by send_digest: either way these are done (a channel down is logged).
        self.alerts.send_digest(state.digest, self.now)
        state.digest, state.last_digest_at = [], self.now.timestamp()
        return count
