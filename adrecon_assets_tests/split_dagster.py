"""Dagster as production runs it (deploy/workspace.yaml): a gRPC code server, a webserver and a
daemon as three processes, here on 127.0.0.1 and free ports without supervisord. Unlike one
`dagster dev`, the daemon restarts alone: the webserver and the code location stay up, so a
test of a daemon restart pays for one process start, not four."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO, Any, Protocol

import dagster as dg
import requests

from adrecon_assets_tests.postgres import free_port
from adrecon_assets_tests.process_group import stop_group

PROJECT = Path(__file__).resolve().parents[1]
WORKSPACE = PROJECT / "deploy" / "workspace.yaml"
BIN = Path(sys.executable).parent


class DagsterServer(Protocol):
    """What the dagster dev tests ask of a running Dagster: its GraphQL, and whether it runs."""

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def assert_running(self) -> None: ...


class SplitDagster:
    """The three processes on the instance and environment `env` (DAGSTER_HOME included); each
    one's output goes to `<name>.log` in the folder `logs` (the daemon's to `daemon-<n>.log`,
    n counting its starts)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        # The instance's storage first, as `dagster dev` creates it before its processes: three
        # processes creating a fresh SQLite storage at once race on its schema version (alembic:
        # "more than one head"), and the daemon then never starts.
        dg.DagsterInstance.from_config(env["DAGSTER_HOME"]).dispose()
        code_port, web_port = free_port(), free_port()
        self.env = {**env, "ADRECON_CODE_SERVER_PORT": str(code_port)}
        self.url = f"http://127.0.0.1:{web_port}/graphql"
        self.files: list[IO[bytes]] = []
        self.code_server = self._start(
            "code_server",
            ["dagster", "code-server", "start", "-m", "adrecon_assets.definitions"]
            + ["-h", "127.0.0.1", "-p", str(code_port), "--location-name", "adrecon"],
        )
        self.webserver = self._start(
            "webserver",
            ["dagster-webserver", "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(web_port)],
        )
        self.daemon_starts = 0
        self.daemon = self.start_daemon()

    @property
    def daemon_log(self) -> Path:
        """The log of the daemon's latest start."""
        return self.logs / f"daemon-{self.daemon_starts}.log"

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        self.files.append(log)
        return subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            cwd=PROJECT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own group: stopping it stops what it spawned (the code server's run workers).
            start_new_session=True,
        )

    def start_daemon(self) -> subprocess.Popen[bytes]:
        self.daemon_starts += 1
        return self._start(
            f"daemon-{self.daemon_starts}", ["dagster-daemon", "run", "-w", str(WORKSPACE)]
        )

    def restart_daemon(self) -> None:
        """Stop the daemon (as `supervisorctl restart daemon` does) and start a new one."""
        stop_group(self.daemon)
        self.daemon = self.start_daemon()

    def assert_running(self) -> None:
        for name, process in (
            ("code server", self.code_server),
            ("webserver", self.webserver),
            ("daemon", self.daemon),
        ):
            assert process.poll() is None, f"the {name} exited"

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, text, variables)

    def log_text(self) -> str:
        """Every process's output so far."""
        return "".join(path.read_text() for path in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for process in (self.daemon, self.webserver, self.code_server):
            stop_group(process)
        for log in self.files:
            log.close()


def graphql(url: str, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of a GraphQL request to `url`; an error answer fails the test."""
    response = requests.post(url, json={"query": text, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])
