"""The commands Dagster's documentation teaches first work in the repository root with nothing
set: no DAGSTER_HOME (Dagster then uses a temporary folder) and no ADRECON_* variable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from adrecon_assets.assets import CONTRACT_ASSET_NAMES
from adrecon_assets_tests.postgres import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a fresh clone's root holds that these commands read.
ROOT_FILES = ("pyproject.toml", "dagster.yaml", "workspace.yaml")
DEV_STARTUP_SECONDS = 180


@pytest.fixture
def bare_root(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the repository root, and an environment without DAGSTER_HOME or ADRECON_*."""
    root = tmp_path / "adrecon"
    root.mkdir()
    for name in ROOT_FILES:
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "adrecon_assets", root / "adrecon_assets")
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "DAGSTER_HOME" and not name.startswith("ADRECON_")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    return root, env


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["dg", "list", "defs"], "reconciled_statistics"),
        (["dg", "check", "defs"], "All definitions loaded successfully"),
        (["dagster", "definitions", "validate"], "All code locations passed validation"),
        (
            ["dagster", "definitions", "validate", "-m", "adrecon_assets.definitions"],
            "All code locations passed validation",
        ),
    ],
    ids=["dg-list-defs", "dg-check-defs", "definitions-validate", "definitions-validate-m"],
)
def test_standard_command_runs_clean_in_the_root_with_nothing_set(
    bare_root: tuple[Path, dict[str, str]], command: list[str], says: str
) -> None:
    root, env = bare_root
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert says in output
    assert "Traceback" not in output
    if command[:2] == ["dg", "list"]:
        assert all(name in output for name in CONTRACT_ASSET_NAMES)


@pytest.mark.slow
def test_dagster_dev_serves_the_code_location_from_the_root_with_nothing_set(
    bare_root: tuple[Path, dict[str, str]],
) -> None:
    root, env = bare_root
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + DEV_STARTUP_SECONDS
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        entries: list[dict[str, str]] = []
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=5
                )
                entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                    break
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            time.sleep(2)
        assert process.poll() is None, "dagster dev exited"
        assert [entry["name"] for entry in entries] == ["adrecon"], entries
        assert all(entry["loadStatus"] == "LOADED" for entry in entries), entries
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    # The instance and the code location load; the sensors' ticks may still fail in the log,
    # naming the lake that a bare root lacks (ADRECON_LAKE_ROOT), which is theirs to report.
    assert "DagsterInvalidConfigError" not in output, output[-3000:]
    assert "PostProcessingError" not in output, output[-3000:]
