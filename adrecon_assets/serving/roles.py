"""`adrecon-serving-roles --url ADMIN_URL`: the serving tables and contract 4.3's least-privilege
roles on PostgreSQL, enforced by the database itself (grants and triggers), idempotently.

- `adrecon_offline` reads and writes every serving table (the day replace of contract 4.2).
- `adrecon_online` may SELECT offer_placement_stats and reconciled_days, INSERT into
  offer_placement_stats and UPDATE only its online measures (column grants): no DELETE, no
  TRUNCATE, no other table, not `source`, `fraud_clicks` or `refund_micros`. The guard trigger
  below drops (not refuses) what contract 4.2's increment must see dropped: an update of a row
  that is not online, and a row of a reconciled day, so the increment never errors; it refuses
  a row that is not online, as only hostile SQL sends one. Row-level security would not fit:
  an `ON CONFLICT DO UPDATE` meeting a row the UPDATE policy rejects raises instead of skipping.
- `adrecon_reader` reads every serving table.

The trigger restricts every writer that may not DELETE offer_placement_stats (the online role,
or a login holding only it); the offline role and the tables' owner pass it untouched. ALTER,
DROP, CREATE TRIGGER and disabling triggers need ownership, which only the admin has. Roles
belong to the server: for a second serving database on it the command only adds the grants.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from adrecon_assets.secret_masking import masked_url
from adrecon_assets.serving.postgres_store import (
    ServingStoreError,
    create_missing_tables,
    mask_secret,
)
from adrecon_assets.serving.tables import (
    OFFER_PLACEMENT_STATS,
    ONLINE_MEASURES,
    ONLINE_SOURCE,
    RECONCILED_DAYS,
    TABLES,
)

OFFLINE_ROLE = "adrecon_offline"
ONLINE_ROLE = "adrecon_online"
READER_ROLE = "adrecon_reader"
ROLES = (OFFLINE_ROLE, ONLINE_ROLE, READER_ROLE)
# What the online increment may change on a row it meets (contract 4.2's DO UPDATE SET).
ONLINE_UPDATABLE_COLUMNS = (*ONLINE_MEASURES, "updated_at")
# Serialises concurrent runs of the command (catalog updates of GRANT can conflict).
ROLES_LOCK = 1633972836
GUARD_FUNCTION = "adrecon_online_guard"
GUARD_TRIGGER = "adrecon_online_guard"

# SECURITY INVOKER (the default): has_table_privilege and the reconciled_days lookup run as
# the writer. search_path ends with pg_temp so that a writer's temp table cannot stand in for
# reconciled_days.
GUARD_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $guard$
BEGIN
  IF has_table_privilege(TG_RELID, 'DELETE') THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.source IS DISTINCT FROM {online} THEN
    RETURN NULL;  -- an increment meeting an offline row is dropped (contract 4.2)
  END IF;
  IF NEW.source IS DISTINCT FROM {online} OR NEW.fraud_clicks <> 0 OR NEW.refund_micros <> 0 THEN
    RAISE EXCEPTION 'adrecon_online writes only online rows without refunds'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF EXISTS (SELECT 1 FROM {reconciled} r WHERE r.date = NEW.date) THEN
    RETURN NULL;  -- the day is reconciled: the increment is dropped (contract 4.2)
  END IF;
  RETURN NEW;
END
$guard$
"""


def _identifiers(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def statements(database: str, schema: str) -> list[sql.Composed]:
    """Every statement after the tables exist, in order; each converges on a rerun (roles
    created if missing, privileges revoked then granted, function and trigger replaced)."""
    tables = [table.name for table in TABLES]
    stats = sql.Identifier(OFFER_PLACEMENT_STATS.name)
    all_tables = _identifiers(tables)
    roles = _identifiers(ROLES)
    result: list[sql.Composed] = []
    for role in ROLES:
        result.append(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) "
                "THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
            ).format(name=sql.Literal(role), role=sql.Identifier(role))
        )
    result += [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), roles),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), roles),
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC, {}").format(all_tables, roles),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            all_tables, sql.Identifier(OFFLINE_ROLE)
        ),
        sql.SQL("GRANT SELECT ON {} TO {}").format(all_tables, sql.Identifier(READER_ROLE)),
        sql.SQL("GRANT SELECT ON {}, {} TO {}").format(
            stats, sql.Identifier(RECONCILED_DAYS.name), sql.Identifier(ONLINE_ROLE)
        ),
        sql.SQL("GRANT INSERT ON {} TO {}").format(stats, sql.Identifier(ONLINE_ROLE)),
        sql.SQL("GRANT UPDATE ({}) ON {} TO {}").format(
            _identifiers(ONLINE_UPDATABLE_COLUMNS), stats, sql.Identifier(ONLINE_ROLE)
        ),
        sql.SQL(GUARD_FUNCTION_SQL).format(
            function=sql.Identifier(schema, GUARD_FUNCTION),
            schema=sql.Identifier(schema),
            online=sql.Literal(ONLINE_SOURCE),
            reconciled=sql.Identifier(schema, RECONCILED_DAYS.name),
        ),
        sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(
            sql.Identifier(schema, GUARD_FUNCTION)
        ),
        sql.SQL("GRANT EXECUTE ON FUNCTION {}() TO {}").format(
            sql.Identifier(schema, GUARD_FUNCTION), roles
        ),
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
            sql.Identifier(GUARD_TRIGGER), sql.Identifier(schema, OFFER_PLACEMENT_STATS.name)
        ),
        sql.SQL(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
        ).format(
            sql.Identifier(GUARD_TRIGGER),
            sql.Identifier(schema, OFFER_PLACEMENT_STATS.name),
            sql.Identifier(schema, GUARD_FUNCTION),
        ),
    ]
    return result


def create_roles(url: str) -> None:
    """Create the serving tables, the three roles and their grants in the database at `url`
    (an admin login: owner of the tables, with CREATEROLE). Idempotent; one transaction."""
    with _connected(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLES_LOCK,))
        row = conn.execute("SELECT current_database(), current_schema()").fetchone()
        assert row is not None
        create_missing_tables(conn)
        for statement in statements(str(row[0]), str(row[1])):
            conn.execute(statement)


def login_privileges(url: str) -> str:
    """One line on the login of `url` (the reconciliation's): whether it holds adrecon_offline,
    or more than it needs (a superuser, the tables' owner)."""
    with _connected(url) as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper, "
            "EXISTS (SELECT 1 FROM pg_tables WHERE tablename = %s AND tableowner = current_user), "
            "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) "
            "AND pg_has_role(current_user, %s, 'USAGE') "
            "FROM pg_roles WHERE rolname = current_user",
            (OFFER_PLACEMENT_STATS.name, OFFLINE_ROLE, OFFLINE_ROLE),
        ).fetchone()
    assert row is not None
    user, superuser, owner, offline = row
    if superuser or owner:
        what = "is a superuser" if superuser else "owns the serving tables"
        return (
            f"WARNING: serving login {user} {what}: it can do more than the reconciliation "
            f"needs; grant {OFFLINE_ROLE} to a login of its own (docs/security.md)"
        )
    if not offline:
        return (
            f"WARNING: serving login {user} is not granted {OFFLINE_ROLE}: the reconciliation "
            "cannot write the serving tables (adrecon-serving-roles, docs/security.md)"
        )
    return f"serving login {user}: {OFFLINE_ROLE} (least privilege)"


@contextmanager
def _connected(url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection; psycopg errors re-raised with the URL's secrets masked."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn
    except psycopg.Error as error:
        message = mask_secret(f"{type(error).__name__}: {error}", url)
        raise ServingStoreError(f"serving roles on {masked_url(url)}: {message}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adrecon-serving-roles", description=__doc__)
    parser.add_argument("--url", required=True, help="a postgresql:// URL of the serving database")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only report the privileges of the URL's login (make prod runs this with "
        "ADRECON_SERVING_URL); without it, --url is an admin login (tables' owner, CREATEROLE)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            print(login_privileges(args.url))
            return 0
        create_roles(args.url)
    except ServingStoreError as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"serving tables and roles {', '.join(ROLES)} ready in {masked_url(args.url)}; "
        f"grant them to login users, e.g. GRANT {ONLINE_ROLE} TO online_writer"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
