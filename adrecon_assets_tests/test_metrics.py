"""adrecon-metrics (contract 6.3): the Prometheus metrics computed from the instance and the lake,
a real HTTP scrape of the real process, and the Grafana dashboard that queries them."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adrecon_assets.definitions import defs
from adrecon_assets.jobs import SLA_CHECK_KEY
from adrecon_assets.metrics import METRIC_NAMES, Graph, registry_for
from adrecon_assets.settings import Settings
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.postgres import free_port
from adrecon_assets_tests.sensor_lakes import days_ago, record_materializations, write_day

PROJECT = Path(__file__).resolve().parents[1]
DASHBOARD = PROJECT / "deploy" / "grafana-dashboard.json"
# Five closed days, the three newest reconciled.
DAYS = [days_ago(count) for count in range(5, 0, -1)]
RECONCILED = DAYS[2:]
STATISTICS = dg.AssetKey("reconciled_statistics")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def five_days_three_reconciled(instance: dg.DagsterInstance, lake: Path) -> None:
    for day in DAYS:
        write_day(lake, day)
    record_materializations(instance, lake, RECONCILED)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_each_metric_from_the_instance_and_the_lake(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    five_days_three_reconciled(instance, paths.lake)
    newest = RECONCILED[-1]
    # The newest reconciled day's steps: one with its duration, one recorded without.
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            STATISTICS, partition=newest.isoformat(), metadata={"duration_seconds": 2.5}
        )
    )
    # One SLA miss, one SLA pass; the WARN drift check failed on one day and passed on another.
    # (The instance keeps one runless evaluation per check and day.)
    drift = dg.AssetCheckKey(STATISTICS, "online_layer_drift")
    warn, error = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR
    for partition, passed, check, level in [
        (DAYS[0], False, SLA_CHECK_KEY, error),
        (DAYS[1], True, SLA_CHECK_KEY, error),
        (DAYS[1], False, drift, warn),
        (DAYS[2], True, drift, warn),
    ]:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=check.asset_key,
                check_name=check.name,
                passed=passed,
                severity=level,
                partition=partition.isoformat(),
            )
        )
    graph = Graph.of(defs)
    assert dg.AssetCheckKey(STATISTICS, "online_layer_drift") in graph.check_keys
    values = samples(generate_latest(registry_for(instance, str(paths.lake), graph)).decode())

    assert values[("adrecon_unreconciled_days", ())] == 2
    assert values[("adrecon_newest_reconciled_day_age_days", ())] == 1  # yesterday
    assert values[("adrecon_sla_missed_days", ())] == 1
    assert values[("adrecon_step_duration_seconds", (("asset", "reconciled_statistics"),))] == 2.5
    # Steps of the newest day recorded without a duration are left out, not reported as 0.
    assert ("adrecon_step_duration_seconds", (("asset", "raw_clicks"),)) not in values
    # (check, day) pairs whose latest evaluation failed: the drift of DAYS[1], the SLA of DAYS[0].
    assert values[("adrecon_failed_checks", (("severity", "WARN"),))] == 1
    assert values[("adrecon_failed_checks", (("severity", "ERROR"),))] == 1
    assert values[("adrecon_lake_readable", ())] == 1


def test_an_unreadable_lake_is_reported_not_counted_as_zero(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    registry = registry_for(instance, str(tmp_path / "missing-lake"), Graph.of(defs))
    values = samples(generate_latest(registry).decode())
    assert values[("adrecon_lake_readable", ())] == 0
    assert ("adrecon_unreconciled_days", ()) not in values


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert expressions, "the dashboard queries nothing"
    return {name for expr in expressions for name in re.findall(r"\badrecon_[a-z_]+", expr)}


def test_the_grafana_dashboard_queries_only_served_metrics(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    five_days_three_reconciled(instance, paths.lake)
    text = generate_latest(registry_for(instance, str(paths.lake), Graph.of(defs))).decode()
    served = {family.name for family in text_string_to_metric_families(text)}
    assert served == set(METRIC_NAMES)
    queried = dashboard_metrics()
    # Every contract metric has a panel, and every panel's metric is served.
    assert queried == served


def test_the_metrics_settings_default_to_loopback_9464() -> None:
    settings = Settings.from_env({})
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)
    assert Settings.from_env({"ADRECON_METRICS_PORT": "9999"}).metrics_port == 9999


def doc_blocks(language: str) -> list[str]:
    """The fenced blocks of docs/monitoring.md in `language`, in order."""
    text = (PROJECT / "docs" / "monitoring.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_documented_scrape_config_targets_the_default_endpoint() -> None:
    (block,) = doc_blocks("yaml")
    (job,) = yaml.safe_load(block)["scrape_configs"]
    settings = Settings.from_env({})
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [
        {"targets": [f"{settings.metrics_host}:{settings.metrics_port}"]}
    ]


@pytest.mark.slow
def test_a_real_scrape_reports_two_unreconciled_days(
    paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands of docs/monitoring.md, run as written (on a free port instead of 9464)."""
    healthcheck, serve, curl = doc_blocks("sh")
    assert (healthcheck, serve) == ("adrecon-healthcheck\n", "adrecon-metrics\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        five_days_three_reconciled(instance, paths.lake)
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DAGSTER_HOME": str(home),
        "ADRECON_METRICS_PORT": str(port),
        "ADRECON_ALERT_WEBHOOK_URL": "",
    }
    log = (tmp_path / "metrics.log").open("w")
    process = subprocess.Popen(
        shlex.split(serve), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/metrics", process)
        scraped = subprocess.run(
            ["bash", "-c", curl.replace("9464", str(port))],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    text = scraped.stdout
    assert re.search(r"^adrecon_unreconciled_days 2(\.0)?$", text, flags=re.MULTILINE), text
    assert samples(text)[("adrecon_unreconciled_days", ())] == 2
    # The healthcheck names the two closed days not reconciled (closed moments ago: OK); it
    # exits 1 because no daemon ever ran against this instance.
    checked = subprocess.run(
        ["bash", "-c", healthcheck], env=env, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 1, checked.stderr
    for day in DAYS[:2]:
        assert f"OK    day {day}: closed, not reconciled" in checked.stdout


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> str:
    """The endpoint's text once the process serves it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "adrecon-metrics exited"
        try:
            response = requests.get(url, timeout=10)
        except requests.ConnectionError:
            time.sleep(0.5)
            continue
        response.raise_for_status()
        return response.text
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def test_scrapes_are_computed_at_scrape_time(instance: dg.DagsterInstance, paths: Paths) -> None:
    five_days_three_reconciled(instance, paths.lake)
    registry = registry_for(instance, str(paths.lake), Graph.of(defs))
    assert samples(generate_latest(registry).decode())[("adrecon_unreconciled_days", ())] == 2
    record_materializations(instance, paths.lake, DAYS[:1])
    assert samples(generate_latest(registry).decode())[("adrecon_unreconciled_days", ())] == 1
