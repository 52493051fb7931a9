"""Transient faults versus bad input (contract 2 and 7), decided in one place.

A transient fault (an I/O error, a timeout, a dropped connection, throttling or a 5xx answer of
an object store or a database) is retried with backoff for `rules.TRANSIENT_RETRY_BUDGET_SECONDS`
in all; bad input (a corrupt file, a schema mismatch, a lake that is not there) never is, since
retrying cannot fix a file. `is_transient` is the one classification; `retry_transient` retries
one operation (a listing, a footer read, an engine step) within the budget and, once it is spent,
raises `TransientFaultError` chained to the last fault: a failure Dagster's retry policy, the
crash relaunch and the later retry of failed days may bring back, never "bad input".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

import dagster as dg
import tenacity

from adrecon_assets import rules

T = TypeVar("T")

logger = logging.getLogger(__name__)

# OSErrors that say something about the request, not about the storage's health: retrying them
# cannot help (a missing file is bad input or a misconfiguration, a denied one too).
PERMANENT_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
DBAPI_TRANSIENT_ERRORS = frozenset({"OperationalError", "InterfaceError"})
# What object stores, HTTP clients and database drivers write when the fault is transient;
# their exception types vary by library (obstore's GenericError, Polars' ComputeError, pyarrow's
# ArrowInvalid wrapping an fsspec error, psycopg's OperationalError), their messages do not.
TRANSIENT_MESSAGE = re.compile(
    r"(status|code|http)\D{0,20}(5\d\d|429)\b|\b5\d\d (service|internal|bad gateway|gateway)|"
    r"service unavailable|slow ?down|too many requests|throttl|internal server error|"
    r"bad gateway|gateway time-?out|\btimed? ?out\b|\btimeout\b|"
    r"connection (reset|refused|closed|aborted)|reset by peer|broken pipe|"
    r"error sending request|incomplete ?message|connection error|"
    r"server closed the connection|could not connect|terminating connection|too many clients|"
    r"the database system is (starting up|shutting down|in recovery)|"
    r"temporarily unavailable|could not set lock on file|conflicting lock",
    re.IGNORECASE,
)


class StorageFaultError(RuntimeError):
    """A fault its caller knows to be the storage's, whatever its type (e.g. an object store's
    "not found" for an object it listed a moment ago: lake files are immutable)."""


class TransientFaultError(RuntimeError):
    """A transient fault that outlasted the retry budget: the step fails retryably, chained to
    the last fault (never "bad input")."""


def _bad_input_types() -> tuple[type[BaseException], ...]:
    # Imported late: contracts and lake import this module.
    from adrecon_assets.contracts import LakeInputError
    from adrecon_assets.lake import LakeNotFoundError

    return (LakeInputError, LakeNotFoundError)


def is_transient(error: BaseException) -> bool:
    """Whether retrying may succeed: the error itself, else the fault it was raised from.

    Bad input (LakeInputError, LakeNotFoundError) is never transient, whatever its cause; a
    code bug (ZeroDivisionError, KeyError...) neither; a dg.Failure is what its `allow_retries`
    says."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _bad_input_types()):
            return False
        if isinstance(current, dg.Failure):
            return bool(current.allow_retries)  # the raising code decided
        # DB-API drivers (psycopg, SQLAlchemy's wrapper) raise OperationalError for a lost or
        # refused connection, a server shutting down, a failover.
        if type(current).__name__ in DBAPI_TRANSIENT_ERRORS:
            return True
        if isinstance(
            current, TransientFaultError | StorageFaultError | TimeoutError | ConnectionError
        ):
            return True
        if isinstance(current, PERMANENT_OS_ERRORS):
            return False
        # An OSError with an errno comes from the system (EIO, ESTALE, ETIMEDOUT...); pyarrow
        # raises errno-less OSErrors for corrupt files too ("Couldn't deserialize thrift").
        if isinstance(current, OSError) and current.errno is not None:
            return True
        # The first line only: object stores append the answer's body and a debug dump
        # (with settings such as `retry_timeout`) that says nothing about this fault.
        if TRANSIENT_MESSAGE.search(first_line(current, limit=2000)):
            return True
        current = current.__cause__
    return False


def spent(error: BaseException) -> bool:
    """Whether a retry budget was already spent on this fault (a TransientFaultError in it)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, TransientFaultError):
            return True
        current = current.__cause__
    return False


def first_line(error: BaseException, limit: int = 400) -> str:
    """An error's first line, short enough for a message (object stores append XML bodies)."""
    text = str(error).split(": <?xml", 1)[0].strip()
    return (text.splitlines() or [type(error).__name__])[0][:limit]


def retry_transient(
    operation: Callable[[], T],
    what: str,
    budget_seconds: float | None = None,
    before_retry: Callable[[], None] | None = None,
) -> T:
    """`operation()`, retried with exponential backoff (rules.TRANSIENT_RETRY_*_WAIT_SECONDS)
    while it fails transiently, for `budget_seconds` in all (default: the contract's budget,
    read at call time). `before_retry` undoes a partial attempt (e.g. empties a staged folder).
    Bad input and code bugs are raised at once, unchanged; so is a fault whose budget an inner
    retry already spent (budgets do not multiply when retries nest)."""
    budget = rules.TRANSIENT_RETRY_BUDGET_SECONDS if budget_seconds is None else budget_seconds

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s: transient fault (attempt %d, %.0f s of %.0f s spent), retrying: %s",
            what,
            state.attempt_number,
            state.seconds_since_start or 0.0,
            budget,
            first_line(error) if error else "",
        )
        if before_retry is not None:
            before_retry()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda error: is_transient(error) and not spent(error)),
        stop=tenacity.stop_after_delay(budget),
        wait=tenacity.wait_exponential(
            multiplier=rules.TRANSIENT_RETRY_FIRST_WAIT_SECONDS,
            max=rules.TRANSIENT_RETRY_MAX_WAIT_SECONDS,
        ),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(operation)
    except Exception as error:
        if spent(error) or not is_transient(error):
            raise
        raise TransientFaultError(
            f"{what}: transient fault still there after {budget:.0f} s of retries "
            f"({type(error).__name__}: {first_line(error)})"
        ) from error
