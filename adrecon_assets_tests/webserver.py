"""A `dagster-webserver` for the tests: the project's workspace, a temp instance, 127.0.0.1 and
a free port; its process group is stopped when the block ends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from adrecon_assets_tests.postgres import free_port
from adrecon_assets_tests.process_group import stop_group

PROJECT = Path(__file__).resolve().parents[1]
START_SECONDS = 120


@dataclass
class Webserver:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def graphql(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer (GraphQL-level errors fail the test)."""
        response = requests.post(
            f"{self.url}/graphql", json={"query": text, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return dict(body["data"])

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/server_info", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise TimeoutError(f"dagster-webserver not up:\n{self.log.read_text()[-3000:]}")


@contextmanager
def webserver(env: dict[str, str], log: Path, *options: str) -> Iterator[Webserver]:
    """`dagster-webserver -w workspace.yaml` with `options` (e.g. `--read-only`), up and
    answering; `env` must name its DAGSTER_HOME."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port), *options],
            cwd=PROJECT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Webserver(f"http://127.0.0.1:{port}", process, log)
    try:
        server.wait_until_up()
        yield server
    finally:
        stop_group(process, timeout=30)
