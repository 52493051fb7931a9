"""A lake on S3 behind a faulty store (contract 2: transient is not bad input): the moto server
is reached through a proxy on 127.0.0.1 that answers 503 or drops the connection for a share of
requests, or for every request during an outage. Days reconcile exactly (against the independent
computation of reference.py), never as "bad lake input"; a fault that outlasts the budget fails
retryably, chained to the store's error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets import rules
from adrecon_assets.contracts import read_file_schema
from adrecon_assets.definitions import ASSETS
from adrecon_assets.lake import Lake, S3Lake
from adrecon_assets.partitions import first_day
from adrecon_assets.rules import CLICKS_SCHEMA, Topic
from adrecon_assets.transient import TransientFaultError, is_transient
from adrecon_assets_tests.engine_runs import table_rows
from adrecon_assets_tests.fault_proxy import FaultPlan, fault_proxy
from adrecon_assets_tests.reference import reference_day
from adrecon_assets_tests.s3_server import LakeMirror, S3Server
from adrecon_assets_tests.test_bad_input import failure_text
from adrecon_assets_tests.test_pipeline import serving_rows
from adrecon_assets_tests.test_s3_lake import resources
from adrecon_simulate import SimulationConfig, simulate

DAYS = [first_day() + timedelta(days=offset) for offset in range(2)]
OUTAGE_SECONDS = 6  # several 2 s backoffs: the run waits it out, well inside the budget


@pytest.fixture
def faulty_s3(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str, FaultPlan]]:
    """A small simulated lake on disk, its mirror in a bucket, and the AWS endpoint pointed at
    a fault proxy in front of the server (the mirror itself uploads directly)."""
    local = tmp_path / "lake"
    simulate(
        SimulationConfig(
            lake=local,
            serving_db=None,
            start=DAYS[0],
            days=len(DAYS),
            emissions_per_day=1_500,
            seed=20,
            files_per_day=2,
        )
    )
    mirror = LakeMirror(s3_env, local, s3_env.new_bucket())
    mirror.sync()
    # Backoff capped at 2 s: the test notices the store's recovery within seconds.
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_MAX_WAIT_SECONDS", 2.0)
    plan = FaultPlan()
    with fault_proxy(s3_env.endpoint, plan) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)
        yield local, mirror.url, plan


def assert_days_exact(local: Path, work: Path, days: list[date]) -> None:
    for day in days:
        statistics, _ = reference_day(local, day, first_day())
        expected = [(*row, "offline") for row in table_rows(statistics)]
        assert expected != [] and serving_rows(work / "serving.duckdb", day) == expected, day


def materialize(root: str, work: Path, day: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS, partition_key=day.isoformat(), resources=resources(root, work), raise_on_error=False
    )


@pytest.mark.slow  # 15-30 s: two days through 30 % faults, one through a 6 s outage
def test_days_reconcile_exactly_through_faults_and_an_outage(
    faulty_s3: tuple[Path, str, FaultPlan], tmp_path: Path
) -> None:
    local, root, plan = faulty_s3

    plan.share = 0.3
    for day in DAYS:
        result = materialize(root, tmp_path / "faults", day)
        assert result.success, failure_text(result)
    assert plan.failed > 20  # the faults happened, a third of the requests
    print(f"faulty share: {plan.failed} of {plan.failed + plan.forwarded} requests failed")
    assert_days_exact(local, tmp_path / "faults", DAYS)

    plan.share = 0.0
    failed_before = plan.failed
    plan.outage(OUTAGE_SECONDS)
    started = time.monotonic()
    result = materialize(root, tmp_path / "outage", DAYS[0])
    assert result.success, failure_text(result)
    waited = time.monotonic() - started
    assert waited >= OUTAGE_SECONDS  # it waited the outage out
    print(f"{OUTAGE_SECONDS} s outage: the day reconciled {waited:.1f} s after the run started")
    assert plan.failed > failed_before
    assert_days_exact(local, tmp_path / "outage", DAYS[:1])
    assert "bad lake input" not in failure_text(result)


@pytest.mark.slow  # ~5 s idle (the store client's own ~10 retries per operation), 21 s loaded
def test_an_outage_longer_than_the_budget_fails_retryably_not_as_bad_input(
    faulty_s3: tuple[Path, str, FaultPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root, plan = faulty_s3
    lake = Lake(root)
    assert isinstance(lake, S3Lake)
    (lake_file, *_) = lake.partition(Topic.CLICKS, DAYS[0]).files
    monkeypatch.setattr(rules, "TRANSIENT_RETRY_BUDGET_SECONDS", 1)
    plan.outage(3600)

    for what, read in (
        ("listing", lambda: lake.partition(Topic.CLICKS, DAYS[0])),
        (
            "reading the footer of",
            lambda: read_file_schema(lake_file.url, CLICKS_SCHEMA, lake.footer),
        ),
        ("reading", lake.denylist),
    ):
        with pytest.raises(TransientFaultError, match=f"^{what} s3://") as raised:
            read()
        assert "transient fault still there after 1 s of retries" in str(raised.value)
        assert raised.value.__cause__ is not None and is_transient(raised.value)
