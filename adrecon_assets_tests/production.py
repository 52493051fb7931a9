"""The production processes of deploy/ (supervisord: code server, daemon, webserver) for the
fault tests, on 127.0.0.1 and free ports, with Dagster's storage on PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import psutil
import requests

# The readiness probe asks the code server for its repositories: its proxy answers a ping (and
# `dagster api grpc-health-check`) before the code loaded, and no public API asks more.
from dagster._grpc.client import DagsterGrpcClient  # private-api: no public probe of loaded code

from adrecon_assets_tests.postgres import free_port

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"
BIN = Path(sys.executable).parent
PROGRAMS = ("code_server", "daemon", "webserver")


class ProductionStack:
    """`make prod` as a test fixture: the same supervisord.conf and deploy/dagster.yaml."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True)
        shutil.copy(DEPLOY / "dagster.yaml", self.home / "dagster.yaml")
        # supervisord binds its socket in ADRECON_PROD_DIR under a temporary name (the path plus
        # `.pid`): under pytest-xdist's `popen-gwN/` a tmp_path is too long for a Unix socket's
        # 107 bytes, and supervisord exits at once. So the folder is short, root/prod links to it.
        self.prod_dir = Path(tempfile.mkdtemp(prefix="adrecon-prod-"))
        (root / "prod").symlink_to(self.prod_dir)
        self.port = free_port()
        self.env = {
            **env,
            "DAGSTER_HOME": str(self.home),
            "ADRECON_PROD_DIR": str(self.prod_dir),
            "ADRECON_BIN": str(BIN),
            "ADRECON_DEPLOY": str(DEPLOY),
            "ADRECON_CODE_SERVER_PORT": str(free_port()),
            "ADRECON_WEBSERVER_HOST": "127.0.0.1",
            "ADRECON_WEBSERVER_PORT": str(self.port),
            "ADRECON_METRICS_PORT": str(free_port()),
            # As `make prod` without ADRECON_READONLY_WEBSERVER_PORT: no read-only UI.
            "ADRECON_READONLY_WEBSERVER_HOST": "127.0.0.1",
            "ADRECON_READONLY_WEBSERVER_PORT": "0",
            "ADRECON_READONLY_WEBSERVER_AUTOSTART": "false",
        }
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.supervisord: subprocess.Popen[bytes] | None = None
        self.supervisord_err: BinaryIO | None = None  # its stderr, read if it exits early

    def start(self) -> None:
        self.supervisord_err = (self.root / "supervisord.err").open("wb")
        self.supervisord = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(DEPLOY / "supervisord.conf")],
            env=self.env,
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=self.supervisord_err,
            start_new_session=True,
        )

    def ctl(self, *arguments: str) -> str:
        completed = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(DEPLOY / "supervisord.conf"), *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return completed.stdout.strip()

    def pid(self, program: str) -> int:
        text = self.ctl("pid", program)
        return int(text) if text.isdigit() else 0

    def kill(self, program: str) -> int:
        """SIGKILL one program (supervisor restarts it); returns the killed pid."""
        pid = self.pid(program)
        assert pid > 0, f"{program} is not running: {self.ctl('status')}"
        os.kill(pid, signal.SIGKILL)
        return pid

    def run_workers(self) -> list[psutil.Process]:
        """The run worker processes: multiprocessing children of the code server's gRPC server
        (the code server is a proxy in front of that server, which must not be hit)."""
        pid = self.pid("code_server")
        if not pid:
            return []
        workers = []
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                command = " ".join(child.cmdline())
                if "spawn_main" in command and "resource_tracker" not in command:
                    workers.append(child)
        return workers

    def orphaned_run_workers(self) -> list[psutil.Process]:
        """Run workers of this stack whatever their parent (after a code server restart, the
        running run's worker belongs to no code server)."""
        workers = []
        for process in self.ours():
            with contextlib.suppress(psutil.NoSuchProcess):
                command = " ".join(process.cmdline())
                if "spawn_main" in command and "resource_tracker" not in command:
                    workers.append(process)
        return workers

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A GraphQL request; retried for up to 30 s while the server or its database restarts
        (right after a PostgreSQL restart the webserver's first query can hit a dead pooled
        connection)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.post(
                    self.url, json={"query": text, "variables": variables or {}}, timeout=30
                )
                if response.ok or time.monotonic() > deadline:
                    break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(1)
        assert response.ok, f"{response.status_code}: {response.text[:2000]}"
        body = response.json()
        assert "errors" not in body, body
        return dict(body["data"])

    def ready(self) -> bool:
        if self.supervisord is not None and self.supervisord.poll() is not None:
            error = (self.root / "supervisord.err").read_text(errors="replace")
            raise AssertionError(f"supervisord exited ({self.supervisord.returncode}): {error}")
        try:
            data = self.query(
                "{ workspaceOrError { ... on Workspace { locationEntries {"
                " locationOrLoadError { __typename } } } } }"
            )
        except requests.RequestException:
            return False
        entries = data["workspaceOrError"].get("locationEntries", [])
        loaded = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]]
        return bool(loaded) and all(e["__typename"] == "RepositoryLocation" for e in loaded)

    def code_server_serving(self) -> bool:
        """The code server answers with the location's repositories (the proxy answers pings
        before its gRPC server has loaded the code)."""
        client = DagsterGrpcClient(port=int(self.env["ADRECON_CODE_SERVER_PORT"]), host="127.0.0.1")
        try:
            client.list_repositories()
        except Exception:
            return False
        return True

    def ours(self) -> list[psutil.Process]:
        """Every process of this stack, found by its ADRECON_PROD_DIR (run workers included)."""
        marker = self.env["ADRECON_PROD_DIR"]
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get("ADRECON_PROD_DIR") == marker:
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def stop(self) -> None:
        if self.supervisord is not None and self.supervisord.poll() is None:
            self.ctl("shutdown")
            try:
                self.supervisord.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.supervisord.pid, signal.SIGKILL)
                self.supervisord.wait(timeout=30)
        for process in self.ours():  # orphaned run workers of a killed code server
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if self.supervisord_err is not None:
            self.supervisord_err.close()
        # The logs stay with the test's tmp_path (root/prod-logs) for a post-mortem.
        (self.root / "prod").unlink()
        (self.root / "prod-logs").mkdir()
        for log in self.prod_dir.glob("*.log"):
            shutil.copy(log, self.root / "prod-logs" / log.name)
        shutil.rmtree(self.prod_dir, ignore_errors=True)


def wait_for(what: str, condition: Callable[[], bool], timeout: float, step: float = 1.0) -> float:
    """Seconds until `condition` held (printed with the time of day: the fault tests' timeline,
    shown by `pytest -s`); fails after `timeout`."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            waited = time.monotonic() - began
            print(f"{time.strftime('%H:%M:%S')} {what}: {waited:.1f} s", flush=True)
            return waited
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
