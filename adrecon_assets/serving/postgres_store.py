"""The shared serving store: PostgreSQL at ADRECON_SERVING_URL (contract 4.2).

The offline replace and the online increment follow the contract's lock protocol on the day
lock `(1633972835, d)`: the replace takes it exclusively, increments take it shared, so neither
writer fails because of the other. Rows are bulk-loaded with COPY inside the replace's one
transaction (a loader that commits by itself would break it). Values are always parameters.
Credentials never leave this module: `location` and every error are masked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pyarrow as pa

from adrecon_assets import rules
from adrecon_assets.clock import utc_now
from adrecon_assets.secret_masking import mask_secrets, masked_url
from adrecon_assets.serving.postgres_copy import copy_out, copy_rows, csv_to_parquet
from adrecon_assets.serving.store import (
    DAY_LOCK_CLASS,
    DAY_ROWS_SCHEMA,
    DAY_ROWS_SELECT,
    NO_RUN_ID,
    ONLINE_COLUMNS,
    DayReplace,
    ServingStore,
    ShapedReplace,
    day_number,
    row_count,
    shaped_replaces,
)
from adrecon_assets.serving.tables import (
    OFFER_PLACEMENT_STATS,
    OFFLINE_SOURCE,
    TABLES,
    Dialect,
    ServingTable,
)

# A one-argument (bigint) advisory key: another key space than the two-int day locks.
CREATE_TABLES_LOCK = DAY_LOCK_CLASS

ONLINE_INCREMENT_SQL = """
INSERT INTO offer_placement_stats AS s
  (date, offer_id, placement, emissions, clicks, cost_micros, fraud_clicks, refund_micros,
   source, updated_at)
SELECT %(date)s, %(offer_id)s, %(placement)s, %(emissions)s, %(clicks)s, %(cost_micros)s,
       0, 0, 'online', now()
WHERE NOT EXISTS (SELECT 1 FROM reconciled_days r WHERE r.date = %(date)s)
ON CONFLICT (date, offer_id, placement) DO UPDATE
  SET emissions = s.emissions + excluded.emissions, clicks = s.clicks + excluded.clicks,
      cost_micros = s.cost_micros + excluded.cost_micros, updated_at = excluded.updated_at
  WHERE s.source = 'online'
"""

LOG = logging.getLogger(__name__)
T = TypeVar("T")


def mask_secret(text: str, url: str) -> str:
    """`text` (an error message) with `url`, its password and every other secret masked."""
    return mask_secrets(text, [url])


def missing_tables(conn: psycopg.Connection[Any]) -> list[ServingTable]:
    """The serving tables not visible on the connection's search path (one round trip)."""
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
        ([table.name for table in TABLES],),
    ).fetchall()
    missing = {row[0] for row in rows}
    return [table for table in TABLES if table.name in missing]


def create_missing_tables(conn: psycopg.Connection[Any]) -> None:
    """Create the serving tables that are missing, inside the caller's transaction.

    Only missing ones: PostgreSQL checks the schema's CREATE privilege even for CREATE TABLE IF
    NOT EXISTS of an existing table, and the least-privilege roles (contract 4.3) have none.
    Serialised: concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL's catalog."""
    if not missing_tables(conn):
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_TABLES_LOCK,))
    for table in missing_tables(conn):
        conn.execute(table.ddl(Dialect.POSTGRES).encode())


class ServingStoreError(RuntimeError):
    """A PostgreSQL error, with the credentials of the URL masked."""


# A fault of the connection or the server, not of the statement: refused or lost connections,
# a server shutting down or starting up (a failover), too many clients, a deadlock or a
# serialization failure. psycopg raises OperationalError (or a subclass) for all of them.
TRANSIENT_ERRORS = (psycopg.OperationalError,)
# ... except a refused log-in (28: wrong password or user) or a missing database (3D): wrong
# settings, which waiting does not fix.
NOT_TRANSIENT_SQLSTATE_CLASSES = ("28", "3D")
# libpq reports a refused log-in without its SQLSTATE (only the server's text), so a failed
# connect is matched on that text too: waiting 5 minutes on a wrong password helps nobody.
NOT_TRANSIENT_CONNECT_MESSAGES = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # role "..." / database "..."
)


def is_transient(error: psycopg.Error) -> bool:
    """Whether waiting and reconnecting may cure `error` (a failover, a restart, a network
    fault), as opposed to wrong settings."""
    if not isinstance(error, TRANSIENT_ERRORS):
        return False
    if (error.sqlstate or "").startswith(NOT_TRANSIENT_SQLSTATE_CLASSES):
        return False
    return not (
        error.sqlstate is None
        and any(text in str(error) for text in NOT_TRANSIENT_CONNECT_MESSAGES)
    )


def reconnect_waits(budget_seconds: float) -> Iterator[float]:
    """The waits between attempts: doubling from the first to the longest wait, for as long as
    they fit in `budget_seconds` in all."""
    wait, waited = rules.SERVING_RECONNECT_FIRST_WAIT_SECONDS, 0.0
    while waited + wait <= budget_seconds:
        yield wait
        waited += wait
        wait = min(2 * wait, rules.SERVING_RECONNECT_LONGEST_WAIT_SECONDS)


class PostgresServingStore(ServingStore):
    """The serving tables in the PostgreSQL database at `url`. One connection, opened on first
    use and kept for the store's life (a writer's transactions then cost no log-in each, and a
    run holds one connection however many days it writes); it is dropped on any error.

    A transient fault (`TRANSIENT_ERRORS`) is retried on a new connection for up to
    `retry_budget_seconds` (contract 2: at least 5 minutes, longer than a managed failover):
    a replace and a read are retried whole, since running them again gives the same result; an
    online increment, which would count twice if its lost commit had happened, only while
    connecting. Use one store per thread."""

    dialect = Dialect.POSTGRES

    def __init__(
        self,
        url: str,
        connect_timeout_seconds: int = 10,
        retry_budget_seconds: float = rules.TRANSIENT_RETRY_BUDGET_SECONDS,
    ) -> None:
        self._url = url
        self.connect_timeout_seconds = connect_timeout_seconds
        self.retry_budget_seconds = retry_budget_seconds
        self._connection: psycopg.Connection[Any] | None = None

    @property
    def location(self) -> str:
        return masked_url(self._url)

    def _connected(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self.connect_timeout_seconds
            )
            self._create_tables(self._connection)
        return self._connection

    def in_transaction(
        self, work: Callable[[psycopg.Connection[Any]], T], *, repeatable: bool = True
    ) -> T:
        """`work` on the store's connection inside one transaction that commits when it returns
        (rolls back on error). Transient faults are retried as the class says (`repeatable`:
        `work` may run again after a fault, even one at its commit); any other error, or a
        transient one past the budget, is raised with the credentials masked."""
        waits = reconnect_waits(self.retry_budget_seconds)
        began, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            connected = False
            try:
                conn = self._connected()
                connected = True
                with conn.transaction():
                    return work(conn)
            except psycopg.Error as error:
                self.close()
                message = mask_secret(f"{type(error).__name__}: {error}", self._url)
                retried = is_transient(error) and (repeatable or not connected)
                wait = next(waits, None) if retried else None
                if wait is None:
                    if attempts > 1:
                        message += (
                            f" (after {attempts} attempts in {time.monotonic() - began:.0f} s)"
                        )
                    raise ServingStoreError(f"serving store {self.location}: {message}") from None
                LOG.warning(
                    "serving store %s: %s; attempt %d again in %.0f s",
                    self.location,
                    message,
                    attempts + 1,
                    wait,
                )
                time.sleep(wait)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _create_tables(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            create_missing_tables(conn)

    def create_tables(self) -> None:
        self.in_transaction(lambda conn: None)

    def replace_days(self, replaces: Sequence[DayReplace]) -> int:
        incoming = shaped_replaces(replaces, utc_now())
        locked = sorted({each.day for each in replaces if each.table == OFFER_PLACEMENT_STATS})

        def replace(conn: psycopg.Connection[Any]) -> None:
            # The exclusive day locks first, in ascending day order as the online increment takes
            # its shared ones (contract 4.2): neither writer can deadlock the other.
            for day in locked:
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (DAY_LOCK_CLASS, day_number(day))
                )
            for shaped in incoming:
                self._replace_in_transaction(conn, shaped)

        self.in_transaction(replace)
        return sum(row_count(replace.rows) for replace in replaces)

    @staticmethod
    def _replace_in_transaction(conn: psycopg.Connection[Any], shaped: ShapedReplace) -> None:
        """One day's DELETE + COPY (+ reconciled_days upsert) inside the open transaction."""
        replace, values = shaped.replace, shaped.values
        table, day = replace.table, replace.day
        conn.execute(f"DELETE FROM {table.name} WHERE date = %s".encode(), (day,))
        copy_rows(conn, table, shaped.batches())
        if table == OFFER_PLACEMENT_STATS:
            if values.get("source") == OFFLINE_SOURCE:
                conn.execute(
                    "INSERT INTO reconciled_days (date, reconciled_at, run_id) "
                    "VALUES (%s, %s, %s) ON CONFLICT (date) DO UPDATE "
                    "SET reconciled_at = excluded.reconciled_at, run_id = excluded.run_id",
                    (day, values["updated_at"], replace.run_id or NO_RUN_ID),
                )
            else:
                conn.execute("DELETE FROM reconciled_days WHERE date = %s", (day,))

    def add_online(self, rows: pa.Table) -> int:
        increments = rows.select(list(ONLINE_COLUMNS)).to_pylist()

        def increment(conn: psycopg.Connection[Any]) -> None:
            # Shared day locks first, in ascending day order (contract 4.2): no deadlock with
            # another batch, and a replace of the day waits for this batch or runs before it.
            for day in sorted({row["date"] for row in increments}):
                conn.execute(
                    "SELECT pg_advisory_xact_lock_shared(%s, %s)",
                    (DAY_LOCK_CLASS, day_number(day)),
                )
            with conn.cursor() as cursor:
                cursor.executemany(ONLINE_INCREMENT_SQL, increments)

        self.in_transaction(increment, repeatable=False)
        return len(increments)

    def export_day_rows(self, day: date, path: Path) -> None:
        csv_path = path.with_name(path.name + ".csv")

        def export(conn: psycopg.Connection[Any]) -> None:
            # Written afresh by each attempt: a retried export never appends to a torn one.
            with csv_path.open("wb") as csv_file:
                copy_out(conn, DAY_ROWS_SELECT.replace("?", "%s"), (day,), csv_file)

        try:
            self.in_transaction(export)
            csv_to_parquet(csv_path, DAY_ROWS_SCHEMA, path)
        finally:
            csv_path.unlink(missing_ok=True)

    def fetch(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        query = sql.replace("?", "%s").encode()
        return self.in_transaction(lambda conn: conn.execute(query, list(parameters)).fetchall())
