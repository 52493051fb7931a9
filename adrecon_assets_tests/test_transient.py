"""transient.py: one classification of faults (contract 2 against section 7), and the retry of
an operation within the budget. Corrupt Parquet stays bad input; I/O errors, timeouts, dropped
connections and 5xx answers are transient; code bugs are neither."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest

from adrecon_assets import rules
from adrecon_assets.contracts import LakeInputError, read_file_schema
from adrecon_assets.lake import LakeNotFoundError, LocalLake
from adrecon_assets.rules import Topic
from adrecon_assets.transient import (
    StorageFaultError,
    TransientFaultError,
    is_transient,
    retry_transient,
)

DAY = date(2026, 1, 2)


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after 1 ms, doubling, so a test of 3 attempts takes no time. (Not 0: with a zero
    first wait tenacity's exponential overflows after 1,024 attempts and waits its 30 s maximum,
    which a 0.2 s budget test hit: 60 s.)"""
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_FIRST_WAIT_SECONDS", 0.001)


def caused_by(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EIO, "Input/output error"),
        OSError(errno.ESTALE, "Stale file handle"),
        TimeoutError("timed out"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        # What obstore and Polars raise for an S3 answer 503 after their own retries:
        RuntimeError(
            "Generic S3 error: Error performing GET http://127.0.0.1:1/b/k in 3.8s, after 8 "
            "retries - Server returned non-2xx status code: 503 Service Unavailable: <?xml"
        ),
        OSError("object-store error: Generic S3 error: error sending request for url"),
        RuntimeError("Server returned non-2xx status code: 429 Too Many Requests"),
        StorageFaultError("s3://b/k: listed but not found now"),
        type("OperationalError", (Exception,), {})("server closed the connection unexpectedly"),
        caused_by(RuntimeError("publishing failed"), OSError(errno.EIO, "Input/output error")),
        dg.Failure("store down", allow_retries=True),
    ],
    ids=lambda error: type(error).__name__,
)
def test_storage_faults_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ZeroDivisionError("division by zero"),
        KeyError("offer_id"),
        ValueError("invalid CIDR '10.0.0.0/33'"),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        PermissionError(errno.EACCES, "Permission denied"),
        # pyarrow's errno-less OSError for a corrupt footer is the file, not the disk:
        OSError("Couldn't deserialize thrift: don't know what type"),
        # Bad input whose cause was an I/O error is still bad input:
        caused_by(LakeInputError("x.parquet: missing column"), OSError(errno.EIO, "I/O")),
        LakeNotFoundError("lake root /nowhere does not exist"),
        dg.Failure("bad lake input: x.parquet", allow_retries=False),
        # A file named part-500 is not an HTTP 500:
        ValueError("part-500.parquet: column 'ip' has type int64, expected string"),
        # A missing bucket, whatever the store's debug dump after the first line says:
        RuntimeError(
            "Generic S3 error: Error performing GET http://127.0.0.1:1/no-such-bucket in 7ms - "
            "Server returned non-2xx status code: 404 Not Found: <?xml version=...>\n\n"
            "Debug source:\n retries: 0, max_retries: 10, retry_timeout: 180s, status: 503"
        ),
    ],
    ids=lambda error: type(error).__name__,
)
def test_bad_input_and_code_bugs_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_corrupt_and_truncated_parquet_stay_bad_input(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pl.DataFrame({"click_id": ["c1"] * 100}).write_parquet(good)
    data = good.read_bytes()
    for name, content in {
        "truncated": data[: len(data) // 2],
        "torn_footer": data[:-30] + data[-8:],
        "empty": b"",
    }.items():
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(content)
        with pytest.raises(LakeInputError, match=f"{name}.parquet: not a readable Parquet file"):
            read_file_schema(path, rules.CLICKS_SCHEMA)


def test_a_footer_read_that_fails_transiently_is_retried(
    tmp_path: Path, no_wait: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clicks.parquet"
    pl.DataFrame({name: ["x"] for name in ("click_id", "emission_id")}).write_parquet(path)
    calls = []
    original = pq.read_schema

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) < 3:
            raise OSError(errno.EIO, "Input/output error")
        return original(*args, **kwargs)

    monkeypatch.setattr(pq, "read_schema", flaky)
    # The footer is read on the third attempt: the file then fails on its contract (bad input).
    with pytest.raises(LakeInputError, match="missing column 'offer_id'"):
        read_file_schema(path, rules.CLICKS_SCHEMA)
    assert len(calls) == 3


def test_retry_returns_once_the_fault_is_gone(no_wait: None) -> None:
    attempts = []

    def operation() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return "listed"

    cleaned = []
    assert retry_transient(operation, "listing", before_retry=lambda: cleaned.append(1)) == (
        "listed"
    )
    assert len(attempts) == 3 and len(cleaned) == 2


def test_bad_input_and_bugs_are_raised_at_once_unchanged(no_wait: None) -> None:
    for error in (LakeInputError("x.parquet: bad"), ZeroDivisionError("division by zero")):
        attempts: list[int] = []

        def operation(error: Exception = error, attempts: list[int] = attempts) -> None:
            attempts.append(1)
            raise error

        with pytest.raises(type(error)) as raised:
            retry_transient(operation, "step")
        assert raised.value is error and len(attempts) == 1


def test_a_spent_budget_fails_retryably_with_the_fault_chained(
    no_wait: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_BUDGET_SECONDS", 0.2)
    fault = OSError(errno.EIO, "Input/output error")
    attempts = []

    def operation() -> None:
        attempts.append(1)
        raise fault

    with pytest.raises(TransientFaultError, match="listing s3://b/lake: transient fault") as raised:
        retry_transient(operation, "listing s3://b/lake")
    assert raised.value.__cause__ is fault and len(attempts) > 1
    assert is_transient(raised.value)  # Dagster's retry policy may bring the day back
    # An outer retry does not spend a second budget on it:
    outer = []

    def nested() -> None:
        outer.append(1)
        retry_transient(operation, "listing s3://b/lake")

    with pytest.raises(TransientFaultError):
        retry_transient(nested, "step")
    assert len(outer) == 1


def test_a_sensor_tick_retries_the_lake_briefly_a_run_for_the_whole_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick's listing gives up after SENSOR_RETRY_BUDGET_SECONDS (its next tick retries);
    a run's listing goes on for TRANSIENT_RETRY_BUDGET_SECONDS."""
    monkeypatch.setattr(rules, "SENSOR_RETRY_BUDGET_SECONDS", 0.2)
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_BUDGET_SECONDS", 3)
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_FIRST_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_MAX_WAIT_SECONDS", 0.05)
    lake = LocalLake(tmp_path)
    attempts: list[float] = []

    def flaky_mount(topic: Topic, day: date) -> None:
        attempts.append(time.monotonic())
        raise OSError(errno.ESTALE, "Stale file handle")

    def retried_for(read: Callable[[], object]) -> float:
        attempts.clear()
        with pytest.raises(TransientFaultError, match="Stale file handle"):
            read()
        return attempts[-1] - attempts[0]

    monkeypatch.setattr(lake, "_partition", flaky_mount)
    assert 0.15 <= retried_for(lambda: lake.snapshot([DAY])) < 3
    assert retried_for(lambda: lake.partition(Topic.CLICKS, DAY)) >= 2.9
