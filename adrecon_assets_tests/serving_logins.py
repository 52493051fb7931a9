"""Login users granted the serving roles of contract 4.3 (`adrecon-serving-roles`), for tests
on a throwaway PostgreSQL database: the `logins` fixture (shared through conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from adrecon_assets.serving.roles import ROLES, main
from adrecon_assets_tests.postgres import PostgresServer


@dataclass(frozen=True)
class Logins:
    """Each role granted to a fresh login user of one database, by role."""

    admin: str
    urls: dict[str, str]


def login_url(postgres: PostgresServer, database: str, role: str) -> str:
    """A new LOGIN user granted `role` (roles are cluster-wide: the name is unique per test)."""
    user = f"{role.removeprefix('adrecon_')}_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url(database), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE {role}".encode())
    return f"postgresql://{user}:{password}@127.0.0.1:{postgres.port}/{database}"


@pytest.fixture
def logins(postgres: PostgresServer, serving_url: str) -> Logins:
    """The roles command (run twice: idempotent) on the test's database, and a login per role."""
    assert main(["--url", serving_url]) == 0
    assert main(["--url", serving_url]) == 0  # idempotent
    database = serving_url.rsplit("/", 1)[1]
    return Logins(serving_url, {role: login_url(postgres, database, role) for role in ROLES})
