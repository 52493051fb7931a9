"""Alerts end to end under Dagster's daemon, with the code server, the webserver and the daemon
as three processes as production runs them (deploy/workspace.yaml), against a local webhook
sink, a PagerDuty-compatible sink and a real SMTP server: a closed day with a negative cost
pages once on both page channels, a restart of the daemon (the process that sends alerts; the
webserver and the code server stay up) sends nothing again, the fixed day's rerun resolves the
page with the same key and its WARN check reaches only the e-mail digest; no secret shows in
the UI's resource config, the logs or the instance's storage."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets.rules import SLA_CHECK_NAME, Topic
from adrecon_assets.run_tags import ALERTED_KEYS_TAG
from adrecon_assets_tests.dev_instance import write_dev_instance
from adrecon_assets_tests.lakes import click, emission, write_topic
from adrecon_assets_tests.sensor_lakes import days_ago
from adrecon_assets_tests.smtp_sink import HOST, SmtpSink, smtp_server
from adrecon_assets_tests.split_dagster import DagsterServer, SplitDagster
from adrecon_assets_tests.test_dagster_dev_e2e import (
    graphql_up,
    launch_day_run,
    run_done,
    wait_for,
)
from adrecon_assets_tests.webhook import webhook_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAY = days_ago(1)
TOKEN, ROUTING_KEY, SMTP_PASSWORD = "hook-t0ken-e2e", "rk-e2e-s3cr3t", "smtp-pw-e2e"
KEY = f"asset_check:raw_emissions:no_quarantined_rows:{DAY}"
RESOURCES_QUERY = """
query($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
  }
}"""
WORKSPACE_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { ... on RepositoryLocation { repositories { name } } } } } } }"""


def write_day(lake: Path, click_cost: int) -> None:
    """One emission and its valid click, closed; a negative cost is bad input (quarantined)."""
    emissions = [emission("e1", "o1", "top", click_cost, f"{DAY}T10:00:00")]
    write_topic(lake, Topic.EMISSIONS, DAY, emissions)
    write_topic(lake, Topic.CLICKS, DAY, [click("c1", "e1", "o1", f"{DAY}T10:00:05")])


def digest_lines(smtp: SmtpSink) -> list[str]:
    """The alert lines of every e-mail digest received, SLA verdicts left out: yesterday's SLA
    falls due while the test runs if it runs after ADRECON_SLA_HOUR_UTC (23:00 UTC)."""
    bodies = [message.get_body(("plain",)) for message in smtp.messages]
    return [
        line
        for body in bodies
        for line in (body.get_content() if body else "").splitlines()
        if line.startswith("- [") and f"/ {SLA_CHECK_NAME} (" not in line
    ]


def alert_ticks(log: Path) -> int:
    """How many alert_sensor ticks a daemon's log shows so far."""
    return log.read_text().count("Sensor alert_sensor skipped: sent")


def alert_resource_config(dev: DagsterServer) -> dict[str, tuple[str, str]]:
    """The `alerts` resource's config as the UI's resources page shows it."""
    (entry,) = dev.query(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
    (repository,) = entry["locationOrLoadError"]["repositories"]
    selector = {"repositoryLocationName": entry["name"], "repositoryName": repository["name"]}
    results = dev.query(RESOURCES_QUERY, {"selector": selector})
    resources = results["allTopLevelResourceDetailsOrError"]["results"]
    (alerts,) = [resource for resource in resources if resource["name"] == "alerts"]
    return {value["key"]: (value["type"], value["value"]) for value in alerts["configuredValues"]}


def test_a_bad_day_pages_once_survives_a_restart_and_resolves_on_the_fixed_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    write_dev_instance(home)
    lake = tmp_path / "lake"
    write_day(lake, click_cost=-5)
    with (
        webhook_server(f"hooks/{TOKEN}") as webhook,
        webhook_server("v2/enqueue") as pagerduty,
        smtp_server(password=SMTP_PASSWORD) as smtp,
    ):
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "ADRECON_LAKE_ROOT": str(lake),
            "ADRECON_WAREHOUSE": str(tmp_path / "warehouse"),
            "ADRECON_SERVING_DB": str(tmp_path / "serving.duckdb"),
            "ADRECON_START_DATE": DAY.isoformat(),
            "ADRECON_ENGINE": "polars",
            "ADRECON_SENSOR_INTERVAL_SECONDS": "4",
            # Yesterday's SLA falls due at 23:00 UTC today, not during this test (see below).
            "ADRECON_SLA_HOUR_UTC": "23",
            "ADRECON_ALERT_WEBHOOK_URL": webhook.url,
            "ADRECON_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "ADRECON_PAGERDUTY_EVENTS_URL": pagerduty.url,
            "ADRECON_SMTP_URL": f"smtp://adrecon:{SMTP_PASSWORD}@{HOST}:{smtp.port}",
            "ADRECON_ALERT_EMAIL_FROM": "adrecon@example.com",
            "ADRECON_ALERT_EMAIL_TO": "oncall@example.com",
            "ADRECON_ALERT_DIGEST_MINUTES": "1",
        }
        secrets = [TOKEN, ROUTING_KEY, SMTP_PASSWORD, webhook.url, pagerduty.url]

        def page_keys() -> list[tuple[str, str]]:
            # An SLA page only if the test straddles 23:00 UTC: not this test's subject.
            return [(a["status"], a["dedup_key"]) for a in webhook.received if a["kind"] != "sla"]

        def pagerduty_keys() -> list[tuple[str, str]]:
            events = pagerduty.received
            return [(e["event_action"], e["dedup_key"]) for e in events if e["dedup_key"] == KEY]

        # 1. The readiness sensor launches the closed day; its negative cost fails the run.
        dev = SplitDagster(env, tmp_path / "logs")
        try:
            wait_for("the webserver", lambda: graphql_up(dev), 180, dev)
            wait_for("the page", lambda: bool(pagerduty_keys()), 300, dev)
            ticks = alert_ticks(dev.daemon_log)
            wait_for("two more ticks", lambda: alert_ticks(dev.daemon_log) >= ticks + 2, 60, dev)
            assert page_keys() == [("firing", KEY)]
            assert pagerduty_keys() == [("trigger", KEY)]
            (page,) = [a for a in webhook.received if a["dedup_key"] == KEY]
            assert (page["kind"], page["priority"], page["partition"]) == (
                "asset_check",
                "page",
                DAY.isoformat(),
            )
            assert "negative_click_cost_micros: 1" in page["message"]
            config = alert_resource_config(dev)
            assert config["webhook_url"] == ("ENV_VAR", "ADRECON_ALERT_WEBHOOK_URL")
            assert config["pagerduty_routing_key"] == ("ENV_VAR", "ADRECON_PAGERDUTY_ROUTING_KEY")
            assert config["smtp_url"] == ("ENV_VAR", "ADRECON_SMTP_URL")
            config_text = str(config)

            # 2. A daemon restart between firing and resolving sends nothing again.
            dev.restart_daemon()
            restarted = dev.daemon_log
            wait_for("two ticks after the restart", lambda: alert_ticks(restarted) >= 2, 120, dev)
            assert page_keys() == [("firing", KEY)] and pagerduty_keys() == [("trigger", KEY)]
            assert digest_lines(smtp) == []

            # 3. The fixed day's rerun: the page resolves on both channels with its key, and
            # the day's WARN (its one click is no fraud) goes to the e-mail digest only.
            write_day(lake, click_cost=100)
            rerun = launch_day_run(dev, DAY)
            wait_for("the rerun", lambda: run_done(dev, rerun), 300, dev)
            wait_for("the resolution", lambda: len(pagerduty_keys()) == 2, 120, dev)
            wait_for("the digest", lambda: bool(digest_lines(smtp)), 120, dev)
            assert page_keys() == [("firing", KEY), ("resolved", KEY)]
            assert pagerduty_keys() == [("trigger", KEY), ("resolve", KEY)]
            assert digest_lines(smtp) == [
                f"- [firing] {DAY} fraud_flags / fraud_rate_within_bounds (WARN)"
            ]
            assert set(smtp.logins) == {"adrecon"}
        finally:
            dev.stop()

    # Under the daemon the runs' hooks sent nothing: alert_sensor was the one sender.
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) >= 2 and not any(ALERTED_KEYS_TAG in run.tags for run in runs)

    # No secret in the logs, the UI's config, or anything the instance stored (runs, events,
    # sensor cursors, compute logs).
    logs = dev.log_text()
    assert dev.daemon_starts == 2 and "alert_sensor" in logs
    stored = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    for secret in secrets:
        assert secret not in logs and secret not in config_text
        assert secret.encode() not in stored
