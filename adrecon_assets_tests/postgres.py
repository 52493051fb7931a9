"""A throwaway PostgreSQL server from Debian's `postgresql` package, for the tests.

initdb refuses to run as root, so under root the server runs as the `postgres` user in a temp
dir it owns. It listens on 127.0.0.1 only, on a free port, with a password (so that the tests
see credentials masked), and `stop` removes its data directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PASSWORD = "s3cret-" + uuid.uuid4().hex[:8]
SERVER_USER = "postgres"


def binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL binaries missing: apt-get install postgresql (make test)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    root: Path
    port: int
    # Server settings beyond the defaults, e.g. {"max_connections": "20"}.
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        owner = self.root.stat().st_uid
        user = pwd.getpwuid(owner).pw_name if os.geteuid() == 0 else None
        subprocess.run(
            [str(binaries() / command[0]), *command[1:]],
            check=True,
            capture_output=True,
            user=user,
            cwd=self.root,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off" + "".join(
            f" -c {name}={value}" for name, value in self.settings.items()
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}".encode())
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


@contextmanager
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """A started server (with `settings`), stopped and removed afterwards (also when the block
    fails)."""
    root = Path(tempfile.mkdtemp(prefix="adrecon-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PostgresServer(root, free_port(), settings or {})
    try:
        password_file = root / "password"
        password_file.write_text(PASSWORD)
        if os.geteuid() == 0:
            os.chown(password_file, root.stat().st_uid, root.stat().st_gid)
        server._run(
            "initdb",
            "-D",
            str(server.data),
            "-U",
            SERVER_USER,
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "--no-sync",
        )
        server.start()
        try:
            yield server
        finally:
            try:
                server.stop("immediate")
            except subprocess.SubprocessError:
                # pg_ctl failed: stop the postmaster we started by its pid.
                pid = int((server.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)
    finally:
        shutil.rmtree(root, ignore_errors=True)
