"""Contract 4.3 on a throwaway PostgreSQL: `adrecon-serving-roles` creates the tables and the
three roles (twice is fine); login users granted them can do their job and nothing else,
whatever SQL they send. Every denial is listed in DENIED_TO_ONLINE and READER_WRITES."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from adrecon_assets import serving
from adrecon_assets.partitions import first_day
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.serving import add_online_increments
from adrecon_assets.serving.postgres_store import PostgresServingStore
from adrecon_assets.serving.roles import (
    OFFLINE_ROLE,
    ONLINE_ROLE,
    READER_ROLE,
    ROLES,
    main,
)
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.postgres import PostgresServer
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.serving_logins import Logins
from adrecon_assets_tests.test_pipeline import expected_rows, materialize_day, serving_rows
from adrecon_assets_tests.test_serving import stats
from adrecon_simulate.cli import main as simulate_main

RECONCILED = date(2026, 1, 2)
OPEN = date(2026, 1, 3)


def snapshot(admin_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every serving table, as the admin sees them."""
    with psycopg.connect(admin_url) as conn:
        return {
            table.name: conn.execute(
                f"SELECT * FROM {table.name} ORDER BY 1, 2, 3".encode()
                if len(table.primary_key) > 1
                else f"SELECT * FROM {table.name} ORDER BY 1".encode()
            ).fetchall()
            for table in serving.TABLES
        }


def seed_days(admin_url: str) -> None:
    """RECONCILED holds offline rows (o1, o2), OPEN an online row (o1) and one row in every
    other serving table."""
    store = PostgresServingStore(admin_url)
    store.replace_day(
        serving.OFFER_PLACEMENT_STATS,
        RECONCILED,
        stats(RECONCILED, ["o1", "o2"], 5),
        {"source": serving.OFFLINE_SOURCE},
        run_id="seed",
    )
    add_online_increments(store, [(OPEN, "o1", "p1", 4, 2, 200)])
    with psycopg.connect(admin_url) as conn:
        conn.execute(
            "INSERT INTO placement_anomalies VALUES (%s, 'p1', 1, 1, 0, 0, 7, false, now())",
            (RECONCILED,),
        )
        conn.execute(
            "INSERT INTO placement_performance VALUES "
            "(%s, 'p1', 10, 1, 0.1, 100, 0, 0, 7, 70, 7, false, now())",
            (RECONCILED,),
        )
        conn.execute(
            "INSERT INTO refund_ledger VALUES (%s, 'o1', 'too_fast', 1, 100, now())", (RECONCILED,)
        )


# What the online user may never do: (what, SQL, expected error or None for "runs and changes
# nothing"). Each runs in its own transaction; the whole database must be unchanged after each.
DENIED_TO_ONLINE: list[tuple[str, str, type[psycopg.Error] | None]] = [
    ("DELETE a row", "DELETE FROM offer_placement_stats", errors.InsufficientPrivilege),
    (
        "UPDATE an offline row",
        f"UPDATE offer_placement_stats SET clicks = 0, cost_micros = 0 WHERE date = '{RECONCILED}'",
        None,
    ),
    (
        "UPDATE source of an online row",
        "UPDATE offer_placement_stats SET source = 'offline'",
        errors.InsufficientPrivilege,
    ),
    (
        "UPDATE refunds",
        "UPDATE offer_placement_stats SET refund_micros = 1",
        errors.InsufficientPrivilege,
    ),
    (
        "INSERT into a reconciled day without the NOT EXISTS guard",
        "INSERT INTO offer_placement_stats VALUES "
        f"('{RECONCILED}', 'o9', 'p1', 1, 1, 100, 0, 0, 'online', now())",
        None,
    ),
    (
        "upsert over an offline row without the source guard",
        "INSERT INTO offer_placement_stats AS s VALUES "
        f"('{RECONCILED}', 'o1', 'p1', 0, 0, 0, 0, 0, 'online', now()) "
        "ON CONFLICT (date, offer_id, placement) DO UPDATE SET clicks = 0, cost_micros = 0",
        None,
    ),
    (
        "INSERT an offline row into an open day",
        "INSERT INTO offer_placement_stats VALUES "
        f"('{OPEN}', 'o9', 'p1', 1, 1, 100, 0, 0, 'offline', now())",
        errors.InsufficientPrivilege,
    ),
    (
        "INSERT an online row with refunds",
        "INSERT INTO offer_placement_stats VALUES "
        f"('{OPEN}', 'o9', 'p1', 1, 1, 100, 1, 100, 'online', now())",
        errors.InsufficientPrivilege,
    ),
    (
        "move an online row into the reconciled day",
        f"UPDATE offer_placement_stats SET date = '{RECONCILED}'",
        errors.InsufficientPrivilege,
    ),
    ("TRUNCATE", "TRUNCATE offer_placement_stats", errors.InsufficientPrivilege),
    (
        "CREATE TRIGGER",
        "CREATE TRIGGER t BEFORE INSERT ON offer_placement_stats "
        "FOR EACH ROW EXECUTE FUNCTION adrecon_online_guard()",
        errors.InsufficientPrivilege,
    ),
    (
        "ALTER TABLE ... DISABLE TRIGGER",
        "ALTER TABLE offer_placement_stats DISABLE TRIGGER ALL",
        errors.InsufficientPrivilege,
    ),
    ("DROP TABLE", "DROP TABLE offer_placement_stats", errors.InsufficientPrivilege),
    (
        "replace the guard function",
        "CREATE OR REPLACE FUNCTION adrecon_online_guard() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$",
        errors.InsufficientPrivilege,
    ),
    (
        "turn triggers off (session_replication_role)",
        "SET session_replication_role = replica",
        errors.InsufficientPrivilege,
    ),
    (
        "INSERT into reconciled_days",
        f"INSERT INTO reconciled_days VALUES ('{OPEN}', now(), 'x')",
        errors.InsufficientPrivilege,
    ),
    ("DELETE from reconciled_days", "DELETE FROM reconciled_days", errors.InsufficientPrivilege),
    (
        "UPDATE placement_anomalies",
        "UPDATE placement_anomalies SET clicks = 0",
        errors.InsufficientPrivilege,
    ),
    (
        "INSERT into placement_performance",
        "INSERT INTO placement_performance SELECT * FROM placement_performance",
        errors.InsufficientPrivilege,
    ),
    ("DELETE from refund_ledger", "DELETE FROM refund_ledger", errors.InsufficientPrivilege),
]

# Every write the reader tries, on every serving table.
READER_WRITES = [
    sql
    for table in serving.TABLES
    for sql in (
        f"INSERT INTO {table.name} SELECT * FROM {table.name}",
        f"UPDATE {table.name} SET date = date",
        f"DELETE FROM {table.name}",
        f"TRUNCATE {table.name}",
    )
]


def outcome(url: str, statement: str) -> type[psycopg.Error] | None:
    """The error class `statement` raised on a login of `url` (None: it ran)."""
    try:
        with psycopg.connect(url) as conn:
            conn.execute(statement.encode())
    except psycopg.Error as error:
        return type(error)
    return None


def copy_rows(url: str, rows: list[tuple[object, ...]]) -> type[psycopg.Error] | None:
    """COPY `rows` into offer_placement_stats (COPY fires the row triggers too)."""
    columns = ", ".join(serving.OFFER_PLACEMENT_STATS.column_names)
    try:
        with (
            psycopg.connect(url) as conn,
            conn.cursor().copy(
                f"COPY offer_placement_stats ({columns}) FROM STDIN".encode()
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:
        return type(error)
    return None


def test_roles_are_nologin_and_the_tables_exist(logins: Logins) -> None:
    with psycopg.connect(logins.admin) as conn:
        can_login = dict(
            conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES),)
            ).fetchall()
        )
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert can_login == {OFFLINE_ROLE: False, ONLINE_ROLE: False, READER_ROLE: False}
    assert tables == {table.name for table in serving.TABLES}


def test_online_role_runs_the_increment_and_nothing_else(logins: Logins) -> None:
    seed_days(logins.admin)
    online_url = logins.urls[ONLINE_ROLE]
    online = ServingResource(url=online_url).get_store()
    # Contract 4.2's increment, as the product ships it: to the open day (added, also to a new
    # key) and to the reconciled day (dropped, no error), in one batch.
    batch = [
        (OPEN, "o1", "p1", 1, 1, 50),
        (OPEN, "o3", "p2", 2, 0, 0),
        (RECONCILED, "o1", "p1", 9, 9, 900),
        (RECONCILED, "o7", "p1", 9, 9, 900),
    ]
    before = snapshot(logins.admin)
    assert add_online_increments(online, batch) == 4
    after = snapshot(logins.admin)
    opened = [row[1:9] for row in after["offer_placement_stats"] if row[0] == OPEN]
    assert opened == [
        ("o1", "p1", 5, 3, 250, 0, 0, "online"),
        ("o3", "p2", 2, 0, 0, 0, 0, "online"),
    ]
    reconciled_rows = [row for row in after["offer_placement_stats"] if row[0] == RECONCILED]
    assert reconciled_rows == [
        row for row in before["offer_placement_stats"] if row[0] == RECONCILED
    ]
    assert {key: rows for key, rows in after.items() if key != "offer_placement_stats"} == {
        key: rows for key, rows in before.items() if key != "offer_placement_stats"
    }

    results = {}
    for what, statement, expected in DENIED_TO_ONLINE:
        results[what] = outcome(online_url, statement)
        assert results[what] is expected, (what, results[what])
        assert snapshot(logins.admin) == after, what
    # COPY goes through the same triggers: a row of a reconciled day is dropped, an offline row
    # refused.
    reconciled_row = (RECONCILED, "o8", "p1", 1, 1, 1, 0, 0, "online", None)
    assert copy_rows(online_url, [reconciled_row]) is None
    assert copy_rows(online_url, [(OPEN, "o8", "p1", 1, 1, 1, 0, 0, "offline", None)]) is (
        errors.InsufficientPrivilege
    )
    assert snapshot(logins.admin) == after
    print("\n" + "\n".join(f"online: {what}: {result}" for what, result in results.items()))


def test_reader_reads_every_table_and_writes_nothing(logins: Logins) -> None:
    seed_days(logins.admin)
    before = snapshot(logins.admin)
    reader_url = logins.urls[READER_ROLE]
    assert snapshot(reader_url) == before
    for statement in READER_WRITES:
        assert outcome(reader_url, statement) is errors.InsufficientPrivilege, statement
    assert snapshot(logins.admin) == before


def test_offline_role_reconciles_a_day_exactly_without_ddl_rights(
    logins: Logins, paths: Paths, polars_resources: dict[str, object]
) -> None:
    offline_url = logins.urls[OFFLINE_ROLE]
    # The offline login cannot create tables (PostgreSQL 15 gives PUBLIC no CREATE on public):
    # the store must not need to once they exist.
    assert outcome(offline_url, "CREATE TABLE scratch (x int)") is errors.InsufficientPrivilege
    start = first_day()
    day = start + timedelta(days=1)
    build_random_lake(paths.lake, start, 2, seed=20260102)
    # The online writer, as the online role, wrote the day first.
    add_online_increments(
        ServingResource(url=logins.urls[ONLINE_ROLE]).get_store(), [(day, "o0", "p0", 5, 1, 10)]
    )
    offline = ServingResource(url=offline_url)
    materialize_day({**polars_resources, "serving_db": offline}, day)
    store = offline.get_store()
    assert serving_rows(store, day) == expected_rows(paths, day)
    assert serving_rows(store, day) != []
    assert day in store.reconciled_days()


def test_roles_command_fails_without_leaking_the_password(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = postgres.url().replace("@", "-wrong@", 1)
    assert main(["--url", wrong]) == 1
    captured = capsys.readouterr()
    password = wrong.split(":")[2].split("@")[0]
    assert "password authentication failed" in captured.err
    assert password not in captured.out + captured.err


def test_simulators_online_layer_writes_as_the_online_role(logins: Logins, tmp_path: Path) -> None:
    arguments = [
        "--start",
        "2026-01-01",
        "--days",
        "1",
        "--emissions-per-day",
        "2000",
        "--seed",
        "3",
    ]
    simulate_main(
        ["--lake", str(tmp_path / "lake"), "--serving-url", logins.urls[ONLINE_ROLE], *arguments]
    )
    rows = snapshot(logins.admin)["offer_placement_stats"]
    assert rows and {row[8] for row in rows} == {serving.ONLINE_SOURCE}


def test_check_reports_whether_the_serving_login_holds_only_the_offline_role(
    logins: Logins, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make prod` prints about ADRECON_SERVING_URL's login."""
    reports = {}
    for name, url in [("admin", logins.admin), *logins.urls.items()]:
        assert main(["--check", "--url", url]) == 0
        reports[name] = capsys.readouterr().out.strip()
    offline_user = logins.urls[OFFLINE_ROLE].split("//")[1].split(":")[0]
    assert (
        reports[OFFLINE_ROLE] == f"serving login {offline_user}: adrecon_offline (least privilege)"
    )
    assert reports["admin"].startswith("WARNING: serving login postgres is a superuser")
    assert reports[ONLINE_ROLE].endswith(
        "is not granted adrecon_offline: the reconciliation "
        "cannot write the serving tables (adrecon-serving-roles, docs/security.md)"
    )
    assert reports[READER_ROLE].startswith("WARNING: serving login reader_")
