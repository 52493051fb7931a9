"""Rule changes show as stale: each asset's code version hashes its rules and engine sources,
so days computed before a change are stale in Dagster (the UI's "code version changed"), and a
backfill of exactly those days makes them fresh again."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import requests

from adrecon_assets import code_versions
from adrecon_assets.assets.staging import raw_clicks
from adrecon_assets.code_versions import PACKAGE, RULE_SOURCES, source_code_version
from adrecon_assets.definitions import build_resources
from adrecon_assets.settings import Settings
from adrecon_assets_tests.postgres import free_port
from adrecon_assets_tests.sensor_lakes import write_day

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
THRESHOLD = "FLOOD_MIN_EARLIER_CLICKS: Final = 3"
CHANGED_THRESHOLD = "FLOOD_MIN_EARLIER_CLICKS: Final = 4"
D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
STALE_QUERY = """query Stale($partitions: [String!]) {
  assetNodes(assetKeys: [{path: ["raw_clicks"]}]) {
    staleStatusByPartition(partitions: $partitions)
    staleCausesByPartition(partitions: $partitions) { category reason }
  }
}"""


def changed_package(into: Path) -> Path:
    """A copy of the package whose rules.py has one threshold changed."""
    copy = into / "adrecon_assets"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    rules = copy / "rules.py"
    assert THRESHOLD in rules.read_text()
    rules.write_text(rules.read_text().replace(THRESHOLD, CHANGED_THRESHOLD))
    return copy


def test_the_code_version_hashes_the_rules_the_engines_and_the_asset_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = [PACKAGE / name for name in (*RULE_SOURCES, "assets/staging.py")]
    version = source_code_version(own)
    assert raw_clicks.code_versions_by_key[raw_clicks.key] == version
    assert len(version) == 16 and version != source_code_version(own[:-1])
    # The same files elsewhere hash the same; one changed threshold changes the version.
    copy = changed_package(tmp_path)
    monkeypatch.setattr(code_versions, "PACKAGE", copy)
    changed = source_code_version([copy / path.relative_to(PACKAGE) for path in own])
    assert changed != version
    (copy / "rules.py").write_text((PACKAGE / "rules.py").read_text())
    assert source_code_version([copy / path.relative_to(PACKAGE) for path in own]) == version


class Project:
    """The project (or its changed copy) run by Dagster's CLI on one lake and instance."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "dagster_home"
        self.home.mkdir()
        lake = tmp_path / "lake"
        for day in (D1, D2, D3):
            write_day(lake, day)
        self.env = {
            **{
                name: value for name, value in os.environ.items() if not name.startswith("ADRECON_")
            },
            "DAGSTER_HOME": str(self.home),
            "ADRECON_LAKE_ROOT": str(lake),
            "ADRECON_WAREHOUSE": str(tmp_path / "warehouse"),
            "ADRECON_SERVING_DB": str(tmp_path / "serving.duckdb"),
            "ADRECON_START_DATE": D1.isoformat(),
        }

    def materialize_in_process(self, days: list[date]) -> None:
        """raw_clicks of `days` with the code as it is, in this process: the same code versions
        as the CLI records, without a Dagster CLI start-up (the CLI runs the backfill below)."""
        resources = build_resources(Settings.from_env(self.env))
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            for day in days:
                result = dg.materialize(
                    [raw_clicks],
                    partition_key=day.isoformat(),
                    instance=instance,
                    resources=resources,
                )
                assert result.success

    def run(self, source: Path, command: list[str]) -> None:
        result = subprocess.run(
            command,
            cwd=source,
            env={**self.env, "PYTHONPATH": str(source)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def documented_backfill(first: date, last: date) -> list[str]:
    """docs/operating.md's command that backfills the stale days, for the range given."""
    text = (ROOT / "docs" / "operating.md").read_text()
    section = text[text.index("## After a rule change") :]
    (block,) = re.findall(r"```bash\n(.*?)```", section.split("\n## ")[0], flags=re.DOTALL)
    (line,) = [line for line in block.splitlines() if line.startswith(".venv/bin/dagster ")]
    command = shlex.split(line)
    command[0] = str(BIN / "dagster")
    range_at = command.index("--partition-range") + 1
    command[range_at] = f"{first}...{last}"
    return command


@pytest.fixture
def webserver(tmp_path: Path) -> Iterator[tuple[Project, Path, str]]:
    """The project, its changed copy, and a webserver serving the changed copy's definitions."""
    project = Project(tmp_path)
    changed = changed_package(tmp_path / "changed").parent
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-m", "adrecon_assets.definitions"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=changed,
        env={**project.env, "PYTHONPATH": str(changed)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not answers(url):
            assert process.poll() is None and time.monotonic() < deadline, "no webserver"
            time.sleep(1)
        yield project, changed, url
    finally:
        process.terminate()
        process.wait(timeout=60)


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/server_info", timeout=2).ok
    except requests.RequestException:
        return False


def stale_days(url: str) -> dict[date, tuple[str, list[tuple[str, str]]]]:
    """Each day's stale status and the reasons, as the UI reads them (GraphQL)."""
    days = [day.isoformat() for day in (D1, D2, D3)]
    answer = requests.post(
        f"{url}/graphql",
        json={"query": STALE_QUERY, "variables": {"partitions": days}},
        timeout=60,
    ).json()
    (node,) = answer["data"]["assetNodes"]
    return {
        date.fromisoformat(day): (
            status,
            [(cause["category"], cause["reason"]) for cause in causes],
        )
        for day, status, causes in zip(
            days, node["staleStatusByPartition"], node["staleCausesByPartition"], strict=True
        )
    }


@pytest.mark.slow
def test_days_computed_before_a_rule_change_are_stale_until_backfilled(
    webserver: tuple[Project, Path, str],
) -> None:
    project, changed, url = webserver
    # Every day computed by the current rules, then the threshold changed (the webserver serves
    # the changed copy): all three are stale.
    project.materialize_in_process([D1, D2, D3])
    # The UI's "code version changed": Dagster's cause of category CODE.
    code_changed = ("STALE", [("CODE", "has a new code version")])
    assert stale_days(url) == {day: code_changed for day in (D1, D2, D3)}
    # The documented backfill (every asset of the days given), with the changed rules, of D1 and
    # D2: the days it computed after the change are fresh, D3 that it left out is still stale.
    project.run(changed, documented_backfill(D1, D2))
    assert stale_days(url) == {D1: ("FRESH", []), D2: ("FRESH", []), D3: code_changed}
