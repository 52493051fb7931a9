"""On-call alerts (DATA_CONTRACT.md section 6): a JSON webhook with a log fallback.

Sending never raises: an alerting outage must not fail or slow down the pipeline beyond the
bounded retries, so a sink that stays down gets the alert written to the log instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from urllib.parse import quote

import dagster as dg
import requests

from adrecon_assets.run_tags import ALERTED_CHECKS_TAG


class AlertKind(StrEnum):
    RUN_FAILURE = "run_failure"
    ASSET_CHECK = "asset_check"


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

    def payload(self, ui_base_url: str) -> dict[str, str | None]:
        fields: dict[str, str | None] = {**asdict(self), "kind": self.kind.value}
        if ui_base_url:
            fields["ui_url"] = self.ui_url(ui_base_url.rstrip("/"))
        return fields

    def ui_url(self, base: str) -> str:
        """The run's page for a run failure, else the asset's checks tab."""
        if self.kind is AlertKind.RUN_FAILURE and self.run_id:
            return f"{base}/runs/{self.run_id}"
        if self.asset:
            return f"{base}/assets/{quote(self.asset)}?view=checks"
        return f"{base}/runs/{self.run_id}" if self.run_id else base


class AlertResource(dg.ConfigurableResource):
    """POSTs alerts as JSON to `webhook_url` (empty: log only), retrying with backoff."""

    webhook_url: str = ""
    ui_base_url: str = ""
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 0.5

    def send(self, alert: Alert) -> bool:
        """Deliver `alert`; True if the webhook accepted it, False if it was only logged."""
        payload = self.payload(alert)
        logger = dg.get_dagster_logger("adrecon.alerts")
        if not self.webhook_url:
            logger.warning(f"alert (no webhook configured): {json.dumps(payload)}")
            return False
        problem = ""
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = requests.post(
                    self.webhook_url, json=payload, timeout=self.timeout_seconds
                )
            except requests.RequestException as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.ok:
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # The sink rejected this alert; sending it again will not help.
        logger.error(
            f"alert webhook {self.webhook_url} failed after {attempt + 1} attempts ({problem}); "
            f"alert: {json.dumps(payload)}"
        )
        return False

    def payload(self, alert: Alert) -> dict[str, str | None]:
        return alert.payload(self.ui_base_url)


def check_identity(asset_key: dg.AssetKey, check_name: str) -> str:
    return f"{asset_key.to_user_string()}:{check_name}"


def alerted_checks(run_tags: Mapping[str, str]) -> set[str]:
    """The checks of a run already alerted by its hooks (see ALERTED_CHECKS_TAG)."""
    value = run_tags.get(ALERTED_CHECKS_TAG, "")
    return set(value.split(",")) if value else set()


def check_alert(
    evaluation: dg.AssetCheckEvaluation, run_id: str | None, partition: str | None
) -> Alert:
    """A failed check's alert; its metadata numbers go into the message."""
    summary = evaluation.description or f"check {evaluation.check_name} failed"
    numbers = ", ".join(
        f"{key}={value.value}" for key, value in evaluation.metadata.items() if key != "path"
    )
    return Alert(
        kind=AlertKind.ASSET_CHECK,
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        partition=evaluation.partition or partition,
        severity=evaluation.severity.value,
        run_id=run_id or None,
        message=f"{summary} ({numbers})" if numbers else summary,
    )
