"""The alert channels against real local servers: the JSON webhook, a PagerDuty-compatible
sink, and SMTP (plain with AUTH, STARTTLS, implicit TLS); a channel that is down is logged by
its name, never with its URL, key or password."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adrecon_assets.alerts.model import Alert, AlertKind, AlertStatus, Priority
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.alerts.smtp import SmtpServer, SmtpUrlError
from adrecon_assets.definitions import build_definitions
from adrecon_assets.settings import Settings
from adrecon_assets_tests.smtp_sink import HOST, self_signed_certificate, smtp_server
from adrecon_assets_tests.webhook import Webhook, closed_port_url, free_port, webhook_server

UI = "http://dagster.example:3000"
NOW = datetime(2026, 1, 3, 8, 0, tzinfo=UTC)
TOKEN, ROUTING_KEY, SMTP_PASSWORD = "hook-token-s3cr3t", "rk-s3cr3t-0123", "pw-s3cr3t"

PAGE = Alert(
    kind=AlertKind.ASSET_CHECK,
    asset="raw_emissions",
    check="no_quarantined_rows",
    partition="2026-01-02",
    severity="ERROR",
    run_id="r-1",
    message="1 bad rows quarantined (negative_click_cost_micros: 1)",
    priority=Priority.PAGE,
    dedup_key="asset_check:raw_emissions:no_quarantined_rows:2026-01-02",
)
NOTE = Alert(
    kind=AlertKind.ASSET_CHECK,
    asset="fraud_flags",
    check="fraud_rate_within_bounds",
    partition="2026-01-02",
    severity="WARN",
    run_id="r-2",
    message="fraud rate 0.0000 outside [0.0005, 0.2] (fraud_rate=0.0, matched_clicks=1)",
    priority=Priority.NOTIFY,
    dedup_key="asset_check:fraud_flags:fraud_rate_within_bounds:2026-01-02",
)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server(f"hooks/{TOKEN}") as server:
        yield server


@pytest.fixture
def pagerduty() -> Iterator[Webhook]:
    with webhook_server("v2/enqueue") as server:
        yield server


def channels(webhook_url: str, events_url: str, smtp_url: str = "") -> AlertResource:
    return AlertResource(
        webhook_url=webhook_url,
        pagerduty_routing_key=ROUTING_KEY,
        pagerduty_events_url=events_url,
        smtp_url=smtp_url,
        email_from="adrecon@example.com",
        email_to="oncall@example.com, data@example.com",
        ui_base_url=UI,
        timeout_seconds=2,
        backoff_seconds=0.01,
    )


def test_a_page_reaches_the_webhook_and_pagerduty_with_one_dedup_key(
    webhook: Webhook, pagerduty: Webhook
) -> None:
    alerts = channels(webhook.url, pagerduty.url)
    assert alerts.send(PAGE)
    assert alerts.send(PAGE.resolved("raw_emissions no_quarantined_rows passed for 2026-01-02"))
    firing, resolved = webhook.received
    assert firing == {
        "kind": "asset_check",
        "asset": "raw_emissions",
        "check": "no_quarantined_rows",
        "partition": "2026-01-02",
        "severity": "ERROR",
        "run_id": "r-1",
        "message": "1 bad rows quarantined (negative_click_cost_micros: 1)",
        "priority": "page",
        "status": "firing",
        "dedup_key": "asset_check:raw_emissions:no_quarantined_rows:2026-01-02",
        "ui_url": f"{UI}/assets/raw_emissions?view=checks",
    }
    assert resolved == {
        **firing,
        "status": "resolved",
        "message": "raw_emissions no_quarantined_rows passed for 2026-01-02",
    }
    trigger, resolve = pagerduty.received
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == firing["dedup_key"]
    assert trigger["payload"]["severity"] == "error" and trigger["payload"]["source"] == "adrecon"
    assert trigger["payload"]["summary"] == (
        "adrecon asset_check: raw_emissions no_quarantined_rows 2026-01-02: "
        "1 bad rows quarantined (negative_click_cost_micros: 1)"
    )
    assert trigger["payload"]["custom_details"] == firing
    assert trigger["links"] == [{"href": firing["ui_url"], "text": "Dagster UI"}]
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": firing["dedup_key"],
    }


def test_a_notification_never_reaches_pagerduty(webhook: Webhook, pagerduty: Webhook) -> None:
    assert channels(webhook.url, pagerduty.url).send(NOTE)
    assert [alert["priority"] for alert in webhook.received] == ["notify"]
    assert pagerduty.received == []


def test_a_flaky_sink_gets_the_alert_after_backoff(webhook: Webhook) -> None:
    webhook.failures = [503, 429]
    assert channels(webhook.url, closed_port_url()).send(NOTE)
    assert len(webhook.received) == 1 and webhook.failures == []


def test_sinks_that_are_down_are_logged_by_name_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook_url, events_url = closed_port_url(f"hooks/{TOKEN}"), closed_port_url("v2/enqueue")
    smtp_url = f"smtp://adrecon:{SMTP_PASSWORD}@127.0.0.1:{free_port()}"
    alerts = channels(hook_url, events_url, smtp_url)
    with caplog.at_level(logging.ERROR):
        assert not alerts.send(PAGE)
        assert not alerts.send_digest([NOTE], NOW)
    log = caplog.text
    assert "webhook (ADRECON_ALERT_WEBHOOK_URL) failed after 3 attempts (ConnectionError)" in log
    assert "PagerDuty (ADRECON_PAGERDUTY_EVENTS_URL) failed after 3 attempts" in log
    assert "e-mail (ADRECON_SMTP_URL) failed (ConnectionRefusedError)" in log
    # The alerts themselves are in the log, so nothing is lost.
    assert PAGE.dedup_key in log and NOTE.message in log
    for secret in (TOKEN, ROUTING_KEY, SMTP_PASSWORD, hook_url, events_url, smtp_url):
        assert secret not in log


def test_a_rejected_alert_is_not_retried(webhook: Webhook) -> None:
    webhook.failures = [400, 400]
    assert not channels(webhook.url, closed_port_url()).send(NOTE)
    assert webhook.failures == [400]


def test_no_channel_configured_logs_the_alert(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert not AlertResource().send(PAGE)
    assert "no channel configured for page" in caplog.text and PAGE.dedup_key in caplog.text


def test_digest_over_smtp_with_auth_is_plain_text_and_html() -> None:
    with smtp_server(password=SMTP_PASSWORD) as sink:
        url = f"smtp://adrecon:{SMTP_PASSWORD}@{HOST}:{sink.port}"
        resolved = PAGE.resolved("raw_emissions no_quarantined_rows passed for 2026-01-02")
        assert channels("", "", url).send_digest([NOTE, resolved], NOW)
    (message,) = sink.messages
    assert sink.logins == ["adrecon"]
    assert message["Subject"] == "[adrecon] 1 notifications, 1 resolved"
    assert message["To"] == "oncall@example.com, data@example.com"
    text = message.get_body(("plain",)).get_content()
    assert "- [firing] 2026-01-02 fraud_flags / fraud_rate_within_bounds (WARN)" in text
    assert "fraud_rate=0.0, matched_clicks=1" in text
    assert f"{UI}/assets/fraud_flags?view=checks" in text
    assert "- [resolved] 2026-01-02 raw_emissions / no_quarantined_rows (ERROR)" in text
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{UI}/assets/fraud_flags?view=checks">fraud_flags</a>' in html
    assert "<td>fraud_rate_within_bounds</td>" in html and "matched_clicks=1" in html


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_digest_over_tls(tls: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = self_signed_certificate(tmp_path)
    # The client verifies the server as any client would: the test CA is the trusted one.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with smtp_server(password=SMTP_PASSWORD, tls=tls, certificate=certificate) as sink:
        scheme, query = ("smtps", "") if tls == "implicit" else ("smtp", "?starttls=true")
        url = f"{scheme}://adrecon:{SMTP_PASSWORD}@{HOST}:{sink.port}{query}"
        assert channels("", "", url).send_digest([NOTE], NOW)
    assert len(sink.messages) == 1 and sink.logins == ["adrecon"]


def test_smtp_url_forms() -> None:
    assert SmtpServer.from_url("smtps://u%40x:p%2F1@mail.example") == SmtpServer(
        "mail.example", 465, implicit_tls=True, starttls=False, user="u@x", password="p/1"
    )
    plain = SmtpServer.from_url("smtp://mail.example:2525?starttls=true")
    assert (plain.port, plain.starttls, plain.user) == (2525, True, None)
    with pytest.raises(SmtpUrlError) as error:
        SmtpServer.from_url(f"http://u:{SMTP_PASSWORD}@mail.example")
    assert SMTP_PASSWORD not in str(error.value)


def test_the_deployed_resource_holds_variable_names_not_secrets() -> None:
    """What the UI shows of the resource's config: each secret as its EnvVar's name."""
    settings = Settings.from_env(
        {
            "ADRECON_ALERT_WEBHOOK_URL": f"https://hooks.example/{TOKEN}",
            "ADRECON_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "ADRECON_PAGERDUTY_EVENTS_URL": f"https://proxy.example/{TOKEN}",
            "ADRECON_SMTP_URL": f"smtps://u:{SMTP_PASSWORD}@mail.example",
            "ADRECON_ALERT_EMAIL_TO": "oncall@example.com",
            "ADRECON_ALERT_DIGEST_MINUTES": "15",
        }
    )
    resource = build_definitions(settings).resources["alerts"]
    assert isinstance(resource, AlertResource)
    assert resource.webhook_url == "ADRECON_ALERT_WEBHOOK_URL"
    assert resource.pagerduty_routing_key == "ADRECON_PAGERDUTY_ROUTING_KEY"
    assert resource.pagerduty_events_url == "ADRECON_PAGERDUTY_EVENTS_URL"
    assert resource.smtp_url == "ADRECON_SMTP_URL"
    assert resource.digest_minutes == 15 and resource.email_to == "oncall@example.com"
    # Unset, the endpoint is PagerDuty's own (not a secret) and the channels are off.
    default = build_definitions(Settings.from_env({})).resources["alerts"]
    assert isinstance(default, AlertResource)
    assert default.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    assert (default.webhook_url, default.pagerduty_routing_key, default.smtp_url) == ("", "", "")


def test_status_values_are_the_contracts() -> None:
    assert [status.value for status in AlertStatus] == ["firing", "resolved"]
    assert [priority.value for priority in Priority] == ["page", "notify"]


def test_the_payload_examples_in_docs_are_what_the_channels_send() -> None:
    """docs/alerts.md's JSON examples: two webhook alerts with every contract field, firing
    then resolved with one key, and PagerDuty's trigger and resolve of that key."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "alerts.md").read_text()
    blocks = [json.loads(block.split("```", 1)[0]) for block in text.split("```json\n")[1:]]
    firing, resolved, trigger, resolve = blocks
    fields = {
        "kind", "asset", "check", "partition", "severity", "run_id", "message",
        "priority", "status", "dedup_key",
    }  # fmt: skip
    assert firing.keys() >= fields and resolved.keys() >= fields
    assert (firing["status"], resolved["status"]) == ("firing", "resolved")
    assert firing["dedup_key"] == resolved["dedup_key"] == trigger["dedup_key"]
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert resolve["dedup_key"] == firing["dedup_key"]
    assert trigger["payload"]["custom_details"] == firing
