"""A local Spark Connect server from the PySpark wheel, for tests, benchmarks and single hosts.

Runs attach to it with `ADRECON_SPARK_REMOTE=sc://127.0.0.1:<port>` instead of starting a JVM
each. The server is started with the session settings of `spark_session.py` (parity settings
included, so a client that only attaches still gets them) and bound to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pyspark

from adrecon_assets.engines.spark_session import spark_config

SPARK_HOME: Final = Path(pyspark.__file__).parent
SERVER_CLASS: Final = "org.apache.spark.sql.connect.service.SparkConnectServer"
STARTUP_TIMEOUT_SECONDS: Final = 180
STOP_TIMEOUT_SECONDS: Final = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def server_command(port: int, master: str, overrides: dict[str, str] | None = None) -> list[str]:
    """`spark-submit` of the Connect server in the foreground (so its caller owns the process)."""
    conf = {
        **spark_config(master, "adrecon-connect", False, overrides),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    conf_args = [item for key, value in conf.items() for item in ("--conf", f"{key}={value}")]
    return [str(SPARK_HOME / "bin" / "spark-submit"), "--class", SERVER_CLASS, *conf_args]


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (spark-submit and its JVM); SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextmanager
def local_connect_server(
    log: Path, master: str = "local[2]", overrides: dict[str, str] | None = None
) -> Iterator[str]:
    """Yield the `sc://127.0.0.1:<port>` URL of a running server; always stopped on exit."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPARK_CONNECT_MODE")},
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            server_command(port, master, overrides),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopping it stops the JVM too
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not accepts_connections(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Spark Connect server did not start on port {port}:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop_server(process)
