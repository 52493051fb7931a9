"""One Spark Connect server for a pytest process: its JVM start and warm-up (~20 CPU s on
2 cores) is paid once for the tests that run on a server (test_spark_connect.py and the
benchmark harness's Connect workloads), which are `serial` so that they share one worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import psutil
import pytest

from adrecon_assets_tests.spark_jvm import JVM_OPTIONS_VARIABLE, SHORT_LIVED_JVM_OPTIONS
from benchmarks.measure import RunningServer


@dataclass(frozen=True)
class ConnectServer(RunningServer):
    """The session's server (`remote`: `sc://127.0.0.1:<port>`; `processes`: spark-submit and its
    JVM), as the benchmark harness takes a running one."""

    log: str
    """The server's log file."""


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectServer]:
    """A server started on first use (a session fixture: only the tests that take it pay for
    it), stopped at the end of the session; the JIT settings of a short-lived JVM. PySpark is
    imported here, so that Polars-only test runs never load it. The per-test CPU log
    (cpu_profile.py) counts the server's CPU in the tests using it, and all of it once more in
    the process's last test, whose teardown reaps the server."""
    from adrecon_assets.engines.spark_connect_server import local_connect_server

    log = tmp_path_factory.mktemp("spark-connect") / "connect-server.log"
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with ExitStack() as stack:
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        monkeypatch.setenv(JVM_OPTIONS_VARIABLE, SHORT_LIVED_JVM_OPTIONS)  # read at the JVM's start
        remote = stack.enter_context(local_connect_server(log))
        monkeypatch.undo()
        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        yield ConnectServer(remote, started, str(log))
