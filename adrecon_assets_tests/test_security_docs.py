"""docs/security.md as written: its shell commands, its PostgreSQL blocks (on a throwaway server:
the roles command, the login users, Dagster's separate login) and its nginx example (`nginx -t`)
do what the page says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from adrecon_assets.serving import add_online_increments
from adrecon_assets.serving.postgres_store import PostgresServingStore
from adrecon_assets_tests.postgres import PostgresServer

PROJECT = Path(__file__).resolve().parents[1]
PAGE = PROJECT / "docs" / "security.md"
LOGINS = ("reconciler", "online_writer", "analyst", "dagster")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def run_bash(block: str, env: dict[str, str], prelude: str = "") -> str:
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", prelude + block],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def statements(block: str) -> list[str]:
    return [s.strip() for s in block.split(";") if s.strip()]


def url_of(postgres: PostgresServer, user: str, password: str, database: str) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{postgres.port}/{database}"


@pytest.fixture
def serving_database(postgres: PostgresServer) -> Iterator[str]:
    """A database named `serving` (the page's name), dropped with the page's logins after."""
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE serving")
    try:
        yield postgres.url("serving")
    finally:
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            for database in ("serving", "dagster"):
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)".encode())
            for login in LOGINS:
                conn.execute(f"DROP ROLE IF EXISTS {login}".encode())


def test_roles_logins_and_dagster_login_as_documented(
    postgres: PostgresServer, serving_database: str
) -> None:
    roles_command, _ = blocks("bash")
    env = {**os.environ, "ADMIN_URL": serving_database}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    assert "ready in" in run_bash(roles_command, env)
    assert "ready in" in run_bash(roles_command, env)  # twice is fine
    logins, dagster = blocks("pgsql")
    with psycopg.connect(serving_database, autocommit=True) as conn:
        for statement in statements(logins) + statements(dagster):
            conn.execute(statement.encode())
    passwords = dict(re.findall(r"ROLE (\w+) LOGIN PASSWORD '([^']+)'", logins + dagster))
    assert set(passwords) == set(LOGINS)

    def login(user: str, database: str = "serving") -> str:
        return url_of(postgres, user, passwords[user], database)

    # The online writer's increment works; the reconciler writes every table; the analyst reads.
    add_online_increments(
        PostgresServingStore(login("online_writer")), [(date(2026, 1, 2), "o", "p", 1, 1, 1)]
    )
    with psycopg.connect(login("reconciler")) as conn:
        conn.execute("DELETE FROM refund_ledger")
        conn.execute("UPDATE offer_placement_stats SET source = 'offline'")
    with psycopg.connect(login("analyst")) as conn:
        assert conn.execute("SELECT source FROM offer_placement_stats").fetchall() == [("offline",)]
    with pytest.raises(errors.InsufficientPrivilege), psycopg.connect(login("analyst")) as conn:
        conn.execute("DELETE FROM offer_placement_stats")
    # Dagster's login owns its database and cannot even connect to the serving one.
    with psycopg.connect(login("dagster", "dagster")) as conn:
        conn.execute("CREATE TABLE runs (id int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(login("dagster")).close()


def test_read_only_ui_command_starts_it_under_make_prod() -> None:
    """The page's `make prod` (dry run: `make -n` prints what it would start, with its env)."""
    (_, make_prod) = blocks("bash")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADRECON_")}
    output = run_bash(make_prod, env, prelude='make() { command make -n -s "$@"; }\n')
    assert "ADRECON_READONLY_WEBSERVER_PORT=3001" in output
    assert "ADRECON_READONLY_WEBSERVER_HOST=0.0.0.0" in output
    assert "ADRECON_READONLY_WEBSERVER_AUTOSTART=true" in output
    assert "ADRECON_WEBSERVER_HOST=127.0.0.1" in output
    assert "supervisord -c deploy/supervisord.conf" in output


def test_nginx_example_parses(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed (make test installs it: make nginx)")
    (example,) = blocks("nginx")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "adrecon.conf").write_text(example)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=adrecon.example.com", "-keyout", "adrecon.key", "-out", "adrecon.crt"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    (tmp_path / "adrecon.htpasswd").write_text("alice:{PLAIN}not-used\n")
    (tmp_path / "nginx.conf").write_text(
        "pid nginx.pid;\nerror_log stderr;\nevents {}\nhttp { include conf.d/adrecon.conf; }\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", f"{tmp_path}/", "-c", "nginx.conf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
