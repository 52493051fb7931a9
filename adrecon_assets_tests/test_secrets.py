"""Secrets (contract 1): recognisable values planted in every URL and key setting never show,
after a day's run whose failure paths touch each of them, in the event log, the run's logs,
the UI's GraphQL (resource config, run logs) or the alerts that reached the sink.

To cover a new secret setting, add one PlantedSecret to PLANTED: its value is built from the
template (`{secret}` is the planted value; `{closed_port}` a port where nothing listens,
`{webhook}` the test's webhook sink, which is down: it answers 503 and records every body).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from adrecon_assets.definitions import build_definitions
from adrecon_assets.jobs import RECONCILE_DAYS
from adrecon_assets.partitions import first_day
from adrecon_assets.secret_masking import install_log_masking, mask_secrets, masked_url
from adrecon_assets.settings import SECRET_VARIABLES, load_settings
from adrecon_assets_tests.postgres import PostgresServer, free_port
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.webhook import Webhook, webhook_server
from adrecon_assets_tests.webserver import PROJECT, webserver


@dataclass(frozen=True)
class PlantedSecret:
    variable: str
    template: str


PLANTED = [
    # A login that does not exist: every serving access fails (password authentication).
    PlantedSecret(
        "ADRECON_SERVING_URL", "postgresql://adrecon:{secret}@127.0.0.1:{postgres_port}/x"
    ),
    # Dagster's own storage, a real login whose password is the planted value (see dagster_db).
    PlantedSecret(
        "ADRECON_DAGSTER_PG_URL",
        "postgresql+psycopg2://{dagster_user}:{secret}@127.0.0.1:{postgres_port}/{dagster_db}",
    ),
    PlantedSecret("ADRECON_ALERT_WEBHOOK_URL", "{webhook}/{secret}"),
    # Set but unused (the run is on Polars): it must not show merely by being set.
    PlantedSecret("ADRECON_SPARK_REMOTE", "sc://127.0.0.1:{closed_port}/;token={secret}"),
    # The page channels: PagerDuty's endpoint is the sink that is down, so delivery fails too.
    PlantedSecret("ADRECON_PAGERDUTY_ROUTING_KEY", "{secret}"),
    PlantedSecret("ADRECON_PAGERDUTY_EVENTS_URL", "{webhook}/pagerduty/{secret}"),
    # The e-mail channel: nothing listens there.
    PlantedSecret("ADRECON_SMTP_URL", "smtp://alerts:{secret}@127.0.0.1:{closed_port}"),
]


def test_every_planted_setting_is_a_secret_setting() -> None:
    assert {planted.variable for planted in PLANTED} <= set(SECRET_VARIABLES)


def test_mask_secrets_masks_environment_values_and_url_passwords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADRECON_ALERT_WEBHOOK_URL", "https://hooks.example/T0/B0/tok3n")
    monkeypatch.setenv("ADRECON_SERVING_URL", "postgresql://app:pa%40ss@db:5432/serving")
    text = (
        "POST https://hooks.example/T0/B0/tok3n failed; connect to "
        "postgresql://app:pa%40ss@db:5432/serving: password pa@ss wrong; "
        "other dsn smtp://mail:hunter22@smtp.example:25, host=db password=hunter33 port=5432"
    )
    assert mask_secrets(text) == (
        "POST *** failed; connect to postgresql://app:***@db:5432/serving: password *** wrong; "
        "other dsn smtp://mail:***@smtp.example:25, host=db password=*** port=5432"
    )
    assert masked_url("postgresql://app:pw@db/x") == "postgresql://app:***@db/x"


@pytest.fixture
def webhook_down() -> Iterator[Webhook]:
    with webhook_server() as sink:
        sink.failures.extend([503] * 1000)
        yield sink


@pytest.fixture
def planted_env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres: PostgresServer,
    webhook_down: Webhook,
) -> Iterator[dict[str, str]]:
    """The planted secrets (variable -> secret) set in the environment, with a one-day lake,
    DAGSTER_HOME holding deploy/dagster.yaml (Dagster's storage on PostgreSQL)."""
    tag = uuid.uuid4().hex[:8]
    secrets = {p.variable: f"PLANTED{index}x{tag}" for index, p in enumerate(PLANTED)}
    dagster_user, dagster_db = f"dagster_{tag}", f"dagster_{tag}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        password = secrets["ADRECON_DAGSTER_PG_URL"]
        conn.execute(f"CREATE ROLE {dagster_user} LOGIN PASSWORD '{password}'".encode())
        conn.execute(f"CREATE DATABASE {dagster_db} OWNER {dagster_user}".encode())
    fields = {
        "postgres_port": postgres.port,
        "dagster_user": dagster_user,
        "dagster_db": dagster_db,
        "webhook": webhook_down.url,
        "closed_port": free_port(),
    }
    for planted in PLANTED:
        value = planted.template.format(secret=secrets[planted.variable], **fields)
        monkeypatch.setenv(planted.variable, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    build_random_lake(tmp_path / "lake", first_day(), 1, seed=5)
    for name, value in {
        "DAGSTER_HOME": str(home),
        "ADRECON_LAKE_ROOT": str(tmp_path / "lake"),
        "ADRECON_WAREHOUSE": str(tmp_path / "warehouse"),
        "ADRECON_SERVING_DB": str(tmp_path / "serving.duckdb"),
        "ADRECON_ENGINE": "polars",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield secrets
    finally:
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dagster_db} WITH (FORCE)".encode())
            conn.execute(f"DROP ROLE IF EXISTS {dagster_user}".encode())


def alert_text(path: str, body: bytes, secrets: dict[str, str]) -> str:
    """What a sink received, less the one secret a channel must send: a PagerDuty event carries
    its routing key to PagerDuty (checked to be the planted one, then left out of the scan)."""
    if "/pagerduty/" not in path:
        return body.decode()
    event = json.loads(body)
    assert event.pop("routing_key") == secrets["ADRECON_PAGERDUTY_ROUTING_KEY"]
    return json.dumps(event)


def leaked(texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    """Where each planted secret shows: `place: variable`."""
    return [
        f"{place}: {variable}"
        for place, text in texts.items()
        for variable, secret in secrets.items()
        if secret in text
    ]


RESOURCES_QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  allTopLevelResourceDetails { name configuredValues { key value type } } } } } }"""
RUN_LOGS_QUERY = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
  events { __typename ... on MessageEvent { message } } } } }"""


@pytest.mark.slow
def test_planted_secrets_never_show(
    planted_env: dict[str, str],
    webhook_down: Webhook,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    day = first_day().isoformat()
    job = build_definitions(load_settings()).resolve_job_def(RECONCILE_DAYS)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)
        assert not result.success
        run_id = result.run_id
        events = [dg.serialize_value(entry) for entry in instance.all_logs(run_id)]
        run = dg.serialize_value(instance.get_run_by_id(run_id))
    output = capfd.readouterr()
    texts = {
        "event log": "\n".join(events),
        "run record": run,
        "run output (stdout, stderr)": output.out + output.err,
    }
    home = Path(os.environ["DAGSTER_HOME"])
    for path in home.rglob("*"):
        if path.is_file():
            texts[f"file {path.relative_to(home)}"] = path.read_text(errors="replace")
    with webserver(dict(os.environ), tmp_path / "webserver.log", "--read-only") as server:
        resources = server.graphql(RESOURCES_QUERY)
        run_logs = server.graphql(RUN_LOGS_QUERY, {"id": run_id})
    texts["GraphQL resources"] = str(resources)
    texts["GraphQL run logs"] = str(run_logs)
    texts["webserver log"] = (tmp_path / "webserver.log").read_text()
    texts["alerts received"] = "\n".join(
        alert_text(path, body, planted_env) for path, body in webhook_down.attempts
    )

    # Each failure path was taken: the serving store refused the login, the webhook was called
    # (and answered 503), and the UI shows the resources' settings by their variable names.
    assert "password authentication failed" in texts["event log"]
    assert "password authentication failed" in texts["alerts received"]
    assert "503" in texts["event log"]
    assert any("/pagerduty/" in path for path, _ in webhook_down.attempts)
    (node,) = resources["repositoriesOrError"]["nodes"]
    configured = {
        (resource["name"], value["key"]): (value["type"], value["value"])
        for resource in node["allTopLevelResourceDetails"]
        for value in resource["configuredValues"]
    }
    assert configured[("serving_db", "url")] == ("ENV_VAR", "ADRECON_SERVING_URL")
    assert configured[("alerts", "webhook_url")] == ("ENV_VAR", "ADRECON_ALERT_WEBHOOK_URL")
    assert leaked(texts, planted_env) == []


def test_log_records_are_masked_once_installed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ADRECON_ALERT_WEBHOOK_URL", "https://hooks.example/T0/B0/tok3n")
    install_log_masking()
    install_log_masking()  # idempotent: one masking factory
    logger = logging.getLogger("adrecon.test_secrets")
    with caplog.at_level(logging.INFO, logger="adrecon.test_secrets"):
        logger.info("POST %s failed", "https://hooks.example/T0/B0/tok3n")
        try:
            raise ConnectionError("to postgresql://app:hunter22@db/x refused")
        except ConnectionError:
            logger.exception("serving store down")
    (posted, failed) = caplog.records
    assert posted.getMessage() == "POST *** failed"
    assert failed.exc_text is not None and "postgresql://app:***@db/x" in failed.exc_text
    assert "hunter22" not in caplog.text and "tok3n" not in caplog.text
