"""deploy/: the production instance config is the project's dagster.yaml with its storage on
PostgreSQL (contract 5), the workspace points at the code server, supervisor runs the code
server, daemon, webserver and adrecon-metrics, plus the read-only webserver when its port is set."""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from supervisor.options import ServerOptions

PROJECT = Path(__file__).resolve().parents[1]


def test_production_instance_differs_only_in_storage() -> None:
    local = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    production = yaml.safe_load((PROJECT / "deploy" / "dagster.yaml").read_text())
    assert production.pop("storage") == {
        "postgres": {"postgres_url": {"env": "ADRECON_DAGSTER_PG_URL"}}
    }
    # Locally Dagster's default storage: SQLite under $DAGSTER_HOME, or a temporary folder.
    assert "storage" not in local
    assert production == local


def test_workspace_loads_the_code_server_over_grpc() -> None:
    workspace = yaml.safe_load((PROJECT / "deploy" / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    assert location["grpc_server"]["location_name"] == "adrecon"
    assert location["grpc_server"]["port"] == {"env": "ADRECON_CODE_SERVER_PORT"}


def test_supervisor_runs_code_server_daemon_webserver_and_metrics_separately() -> None:
    config = configparser.RawConfigParser()
    config.read(PROJECT / "deploy" / "supervisord.conf")
    commands = {
        section.split(":", 1)[1]: config.get(section, "command")
        for section in config.sections()
        if section.startswith("program:")
    }
    assert set(commands) == {"code_server", "daemon", "webserver", "metrics", "readonly_webserver"}
    assert "dagster code-server start -m adrecon_assets.definitions" in commands["code_server"]
    assert "dagster-daemon run -w" in commands["daemon"]
    assert "dagster-webserver -w" in commands["webserver"]
    assert commands["metrics"].endswith("/adrecon-metrics")
    assert "--read-only" not in commands["webserver"]
    assert "--read-only" in commands["readonly_webserver"]
    assert all(config.get(f"program:{name}", "autorestart") == "true" for name in commands)


def prod_programs(monkeypatch: pytest.MonkeyPatch, make_arguments: list[str]) -> dict[str, str]:
    """What supervisord would start under `make prod` (its environment read from `make -n`):
    each program's command, or `not started` for one that does not start by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADRECON_")}
    dry_run = subprocess.run(
        ["make", "-n", "-s", "prod-status", *make_arguments],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in shlex.split(dry_run):
        name, _, value = word.partition("=")
        if name.startswith(("ADRECON_", "DAGSTER_HOME")):
            monkeypatch.setenv(name, value)
    options = ServerOptions()
    options.realize(args=["-c", str(PROJECT / "deploy" / "supervisord.conf")])
    return {
        program.name: program.command if program.autostart else "not started"
        for group in options.process_group_configs
        for program in group.process_configs
    }


def test_operator_ui_binds_loopback_and_the_read_only_ui_starts_only_with_its_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    programs = prod_programs(monkeypatch, [f"PROD_DIR={tmp_path}"])
    assert programs["webserver"].split()[-4:] == ["-h", "127.0.0.1", "-p", "3000"]
    assert programs["readonly_webserver"] == "not started"
    programs = prod_programs(
        monkeypatch, [f"PROD_DIR={tmp_path}", "ADRECON_READONLY_WEBSERVER_PORT=3001"]
    )
    assert programs["webserver"].split()[-4:] == ["-h", "127.0.0.1", "-p", "3000"]
    assert programs["readonly_webserver"].split()[-5:] == [
        "--read-only",
        "-h",
        "0.0.0.0",
        "-p",
        "3001",
    ]


def test_a_code_server_restart_signals_the_code_server_only() -> None:
    """Run workers are in the code server's process group: a deploy's `supervisorctl restart
    code_server` must not signal the group (it killed every running run); supervisor never gives
    up restarting a process (its default gives up after 3 quick exits, as during an outage)."""
    config = configparser.RawConfigParser()
    config.read(PROJECT / "deploy" / "supervisord.conf")
    assert config.get("program:code_server", "stopasgroup") == "false"
    assert config.get("program:code_server", "killasgroup") == "false"
    programs = [section for section in config.sections() if section.startswith("program:")]
    assert all(int(config.get(program, "startretries")) >= 1000 for program in programs)
