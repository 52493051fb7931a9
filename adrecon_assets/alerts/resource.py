"""The alert channels (contract 6) as one resource, and which alert goes where.

Pages go to the JSON webhook and to PagerDuty, where configured. Notifications go into the
e-mail digest where SMTP is configured, else to the webhook. Sending never raises: a channel
that is down gets the alert logged, with the channel's name and never its URL or key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import dagster as dg

from adrecon_assets.alerts.email_digest import digest_message
from adrecon_assets.alerts.http_post import LOGGER_NAME, RetryPolicy, post_json
from adrecon_assets.alerts.model import Alert, Priority
from adrecon_assets.alerts.pagerduty import pagerduty_event
from adrecon_assets.alerts.smtp import SmtpServer
from adrecon_assets.secret_masking import secret_env
from adrecon_assets.settings import PAGERDUTY_EVENTS_URL, Settings

# Channel names in logs: the variable that configures each, never its value.
WEBHOOK_CHANNEL = "webhook (ADRECON_ALERT_WEBHOOK_URL)"
PAGERDUTY_CHANNEL = "PagerDuty (ADRECON_PAGERDUTY_EVENTS_URL)"
EMAIL_CHANNEL = "e-mail (ADRECON_SMTP_URL)"


class AlertResource(dg.ConfigurableResource):
    """The channels. Deployed, every URL and key is a `dg.EnvVar` (the UI shows its name)."""

    webhook_url: str = ""
    pagerduty_routing_key: str = ""
    pagerduty_events_url: str = PAGERDUTY_EVENTS_URL
    smtp_url: str = ""
    email_from: str = ""
    email_to: str = ""
    digest_minutes: int = 60
    ui_base_url: str = ""
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertResource:
        """The channels of the settings, every URL and key as an EnvVar (the UI shows the
        variable's name, never its value)."""
        return cls(
            webhook_url=secret_env("ADRECON_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
            pagerduty_routing_key=secret_env(
                "ADRECON_PAGERDUTY_ROUTING_KEY", settings.pagerduty_routing_key
            ),
            # Its default is PagerDuty's public endpoint; another value may be a proxy's URL.
            pagerduty_events_url=secret_env(
                "ADRECON_PAGERDUTY_EVENTS_URL", settings.pagerduty_events_url
            )
            if settings.pagerduty_events_url != PAGERDUTY_EVENTS_URL
            else PAGERDUTY_EVENTS_URL,
            smtp_url=secret_env("ADRECON_SMTP_URL", settings.smtp_url),
            email_from=settings.alert_email_from or "",
            email_to=settings.alert_email_to or "",
            digest_minutes=settings.alert_digest_minutes,
            ui_base_url=settings.ui_base_url or "",
        )

    @property
    def emails_digest(self) -> bool:
        """Whether notifications wait for the e-mail digest (else they go to the webhook)."""
        return bool(self.smtp_url and self.email_to)

    def payload(self, alert: Alert) -> dict[str, str | None]:
        return alert.payload(self.ui_base_url)

    def send(self, alert: Alert) -> bool:
        """Deliver a page, or a notification when there is no e-mail digest, now; True if a
        channel accepted it. (Notifications with a digest go through `send_digest`.)"""
        policy = RetryPolicy(self.timeout_seconds, self.max_attempts, self.backoff_seconds)
        logger = dg.get_dagster_logger(LOGGER_NAME)
        attempted, delivered = [], []
        if self.webhook_url:
            attempted.append(WEBHOOK_CHANNEL)
            if post_json(WEBHOOK_CHANNEL, self.webhook_url, self.payload(alert), policy) is None:
                delivered.append(WEBHOOK_CHANNEL)
        if alert.priority is Priority.PAGE and self.pagerduty_routing_key:
            attempted.append(PAGERDUTY_CHANNEL)
            event = pagerduty_event(alert, self.pagerduty_routing_key, self.ui_base_url)
            if post_json(PAGERDUTY_CHANNEL, self.pagerduty_events_url, event, policy) is None:
                delivered.append(PAGERDUTY_CHANNEL)
        text = json.dumps(self.payload(alert))
        if not attempted:
            logger.warning(f"alert (no channel configured for {alert.priority}): {text}")
        elif len(delivered) < len(attempted):
            logger.error(
                f"alert delivered to {len(delivered)} of {len(attempted)} channels: {text}"
            )
        return bool(delivered)

    def send_digest(self, alerts: Sequence[Alert], now: datetime) -> bool:
        """One e-mail holding `alerts`; True once the server accepted it."""
        recipients = [address.strip() for address in self.email_to.split(",") if address.strip()]
        message = digest_message(alerts, self.email_from, recipients, self.ui_base_url, now)
        try:
            SmtpServer.from_url(self.smtp_url).send(message, self.timeout_seconds)
        except (OSError, ValueError) as error:  # smtplib's errors are OSErrors
            dg.get_dagster_logger(LOGGER_NAME).error(
                f"{EMAIL_CHANNEL} failed ({type(error).__name__}); digest of {len(alerts)} "
                f"alerts: {json.dumps([self.payload(alert) for alert in alerts])}"
            )
            return False
        return True
