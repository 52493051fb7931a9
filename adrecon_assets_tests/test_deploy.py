"""deploy/: the production instance config is the project's dagster.yaml with its storage on
PostgreSQL (contract 5), the workspace points at the code server, supervisor runs the three
processes."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

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
    assert set(commands) == {"code_server", "daemon", "webserver", "metrics"}
    assert "dagster code-server start -m adrecon_assets.definitions" in commands["code_server"]
    assert "dagster-daemon run -w" in commands["daemon"]
    assert "dagster-webserver -w" in commands["webserver"]
    assert commands["metrics"].endswith("/adrecon-metrics")
    assert all(config.get(f"program:{name}", "autorestart") == "true" for name in commands)


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
