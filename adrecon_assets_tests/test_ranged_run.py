"""A ranged `reconcile_days` run (one run over several days, as a single-run backfill launches
it) gives exactly what one run per day gives, records each day separately, and names a failing
day without hiding the days around it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from adrecon_assets import serving
from adrecon_assets.checks.sla import reconciled_by_sla_hour
from adrecon_assets.definitions import ASSETS
from adrecon_assets.engines.base import AggregateReport, Engine
from adrecon_assets.engines.polars_engine import PolarsEngine
from adrecon_assets.jobs import RECONCILE_DAYS, reconcile_days
from adrecon_assets.partitions import day_spans, first_day
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.rules import DURATION_METADATA, SLA_CHECK_NAME, Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, write_topic
from adrecon_assets_tests.random_lake import build_random_lake
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows, write_online_rows
from adrecon_assets_tests.test_write_audit_publish import OffByOneRefundEngine

DAYS = 4
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture(params=["duckdb", "postgres"])
def serving_resource(request: pytest.FixtureRequest, paths: Paths) -> ServingResource:
    """Tests of serving publication run once per serving store."""
    if request.param == "postgres":
        return ServingResource(url=request.getfixturevalue("serving_url"))
    return ServingResource(database=str(paths.serving_db))


def run_days() -> list[date]:
    return [first_day() + timedelta(days=offset) for offset in range(DAYS)]


def day_job(resources: dict[str, object]) -> dg.JobDefinition:
    """`reconcile_days` as deployed: every asset (the SLA check is defined, left out)."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[reconciled_by_sla_hour],
        jobs=[reconcile_days],
        resources=resources,
    ).resolve_job_def(RECONCILE_DAYS)


def ranged_run(resources: dict[str, object], days: list[date]) -> dg.ExecuteInProcessResult:
    return day_job(resources).execute_in_process(
        tags={
            RANGE_START: days[0].isoformat(),
            RANGE_END: days[-1].isoformat(),
            "dagster/backfill": "ranged",
        },
        raise_on_error=False,
    )


def anomaly_rows(paths: Paths, day: date) -> list[tuple[object, ...]]:
    folder = Warehouse(paths.warehouse).folder(Dataset.ANOMALY_METRICS, day)
    return pl.read_parquet(folder / "*.parquet").sort("placement").rows()


def test_ranged_run_equals_one_run_per_day_and_the_reference(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    job = day_job(polars_resources)
    one_day_runs = [job.execute_in_process(partition_key=day.isoformat()) for day in days]
    assert all(run.success for run in one_day_runs)
    per_day = {day: (serving_rows(paths.serving_db, day), anomaly_rows(paths, day)) for day in days}

    result = ranged_run(polars_resources, days)

    assert result.success
    for day in days:
        rows, anomalies = per_day[day]
        assert rows == expected_rows(paths, day) != []
        assert serving_rows(paths.serving_db, day) == rows
        # Baselines are float means and deviations: equal up to the summation order's last bit.
        assert anomaly_rows(paths, day) == [
            tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in row)
            for row in anomalies
        ]
    # One materialization per asset and day, each with that day's own numbers.
    materialized = result.get_asset_materialization_events()
    assert len(materialized) == len({key for asset in ASSETS for key in asset.keys}) * DAYS
    statistics = {
        event.partition: event.materialization.metadata["clicks"].value
        for event in materialized
        if event.asset_key == dg.AssetKey("reconciled_statistics")
    }
    assert statistics == {
        day.isoformat(): sum(row[4] for row in per_day[day][0])  # type: ignore[misc]
        for day in days
    }
    # Contract 6.2: every materialization of every day, one-day or ranged, has its numeric
    # duration_seconds (the UI plots it across partitions).
    for run in [*one_day_runs, result]:
        for event in run.get_asset_materialization_events():
            duration = event.materialization.metadata[DURATION_METADATA]
            assert isinstance(duration, dg.FloatMetadataValue) and duration.value is not None
            assert 0 <= duration.value < 600
    # Each check evaluated once per day, on that day; the SLA is judged by its sensor only.
    assert [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == SLA_CHECK_NAME
    ] == []
    evaluations = [
        (evaluation.check_name, evaluation.partition)
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey("joined_clicks")
    ]
    assert sorted(evaluations) == sorted(
        (name, day.isoformat())
        for name in ("duplicate_click_rate", "every_click_joined_once", "orphan_click_rate")
        for day in days
    )


def test_failing_day_of_a_ranged_run_names_itself_and_the_others_are_recorded(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    broken = days[2]
    corrupt = paths.lake / Topic.CLICKS.value / f"date_partition={broken}" / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet")
    write_online_rows(serving.DuckDBServingStore(paths.serving_db), broken)
    online = serving_rows(paths.serving_db, broken)

    result = ranged_run(polars_resources, days)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert failure.step_key == "raw_clicks"
    message = str(failure.step_failure_data.error.message)
    assert f"1 of {DAYS} days failed ({broken}: bad lake input:" in message
    assert "corrupt.parquet" in message
    recorded = {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("raw_clicks")
    }
    assert recorded == {day.isoformat() for day in days if day != broken}
    assert serving_rows(paths.serving_db, broken) == online != []


def test_a_day_failing_its_audit_in_a_ranged_run_records_the_failed_check(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    broken = days[1]
    outside = f"{broken + timedelta(days=1)}T01:00:00"
    write_topic(paths.lake, Topic.CLICKS, broken, [click("bad", "e1", "o1", outside)], name="x")

    result = ranged_run(polars_resources, days)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = str(failure.step_failure_data.error.message)
    assert f"1 of {DAYS} days failed ({broken}: raw_clicks {broken} not published" in message
    assert "(clicked_at_outside_partition_day: 1)" in message
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "no_quarantined_rows" and e.partition == broken.isoformat()
        if e.asset_key == dg.AssetKey("raw_clicks")
    ]
    assert not evaluation.passed
    assert evaluation.description is not None
    assert "1 bad rows quarantined (clicked_at_outside_partition_day: 1)" in evaluation.description


class OneBrokenDayEngine(OffByOneRefundEngine):
    """The off-by-one refund of `OffByOneRefundEngine`, on one day only."""

    def __init__(self, broken_day: date) -> None:
        self.broken_day = broken_day

    def aggregate(
        self, day: date, flagged_folder: Path, emission_counts_folder: Path, out_folder: Path
    ) -> AggregateReport:
        if day == self.broken_day:
            return super().aggregate(day, flagged_folder, emission_counts_folder, out_folder)
        return PolarsEngine.aggregate(self, day, flagged_folder, emission_counts_folder, out_folder)


class OneBrokenDayEngineResource(EngineResource):
    broken_day: str

    def get_engine(self) -> Engine:
        return OneBrokenDayEngine(date.fromisoformat(self.broken_day))


def test_a_day_failing_its_audit_before_publication_is_named_and_the_others_are_published(
    paths: Paths, polars_resources: dict[str, object], serving_resource: ServingResource
) -> None:
    """The ranged step publishes its audited days in one transaction: the day whose audit
    failed keeps its published (online) rows, the days before and after it are exact, and the
    step fails naming the day; nothing below the step runs on the range."""
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    store = serving_resource.get_store()
    for day in days:
        write_online_rows(store, day)
    broken = days[1]
    online = serving_rows(store, broken)
    resources = {
        **polars_resources,
        "serving_db": serving_resource,
        "engine": OneBrokenDayEngineResource(broken_day=broken.isoformat()),
    }

    result = ranged_run(resources, days)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "reconciled_statistics"
    message = str(failure.step_failure_data.error.message)
    assert f"1 of {DAYS} days failed ({broken}: reconciled_statistics {broken} not published, " in (
        message
    )
    assert "totals_balance: 1 differences" in message
    assert f"the other {DAYS - 1} days of this step are recorded" in message
    published = [day for day in days if day != broken]
    for day in published:
        assert serving_rows(store, day) == expected_rows(paths, day) != []
    assert serving_rows(store, broken) == online != []
    assert store.reconciled_days() == dict.fromkeys(published, result.run_id)
    # One transaction for the three days: one updated_at for all of their rows.
    (stamps,) = store.fetch(
        "SELECT count(DISTINCT updated_at) FROM offer_placement_stats WHERE source = 'offline'"
    )
    assert stamps == (1,)
    recorded = {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("reconciled_statistics")
    }
    assert recorded == {day.isoformat() for day in published}
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "totals_balance" and not e.passed
    ]
    assert evaluation.partition == broken.isoformat()
    below = {"anomaly_metrics", "placement_performance", "refund_ledger"}
    assert not below & {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def test_a_ranged_run_draws_each_chart_once_per_chart_window(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)

    result = ranged_run(polars_resources, days)

    assert result.success
    charts = {
        (event.asset_key.path[-1], event.partition): event.materialization.metadata[name].value
        for event in result.get_asset_materialization_events()
        for name in ("anomaly_chart", "fraud_mix")
        if name in event.materialization.metadata
    }
    newest = days[-1].isoformat()
    for asset, chart in (("anomaly_metrics", "anomaly_chart"), ("refund_ledger", "fraud_mix")):
        assert str(charts[(asset, newest)]).startswith("![")
        for day in days[:-1]:
            assert charts[(asset, day.isoformat())] == (
                f"Drawn once for the 14 days up to {newest}: see the {chart} of {newest} "
                "(a ranged run draws one chart per 14 days)."
            )


def test_published_days_are_logged_as_runs_of_consecutive_days() -> None:
    days = {date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 5)}
    assert day_spans(days) == "2026-01-01..2026-01-03, 2026-01-05"
    assert day_spans({date(2026, 1, 9)}) == "2026-01-09"


class FailingStatisticsStore(serving.DuckDBServingStore):
    """A DuckDB store whose offer_placement_stats writes fail (a full disk, say)."""

    def replace_days(self, replaces: Sequence[serving.DayReplace]) -> int:
        if any(replace.table == serving.OFFER_PLACEMENT_STATS for replace in replaces):
            raise OSError("No space left on device")
        return super().replace_days(replaces)


class FailingStatisticsResource(ServingResource):
    def get_store(self) -> serving.ServingStore:
        return FailingStatisticsStore(self.database)


def test_a_failed_publication_publishes_none_of_the_steps_days(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    days = run_days()
    build_random_lake(paths.lake, days[0], DAYS, seed=5)
    for day in days:
        write_online_rows(paths.serving_db, day)
    online = {day: serving_rows(paths.serving_db, day) for day in days}
    resources = {
        **polars_resources,
        "serving_db": FailingStatisticsResource(database=str(paths.serving_db)),
    }

    result = ranged_run(resources, days)

    assert not result.success
    failure = [event for event in result.all_events if event.is_step_failure][-1]
    assert failure.step_key == "reconciled_statistics"
    assert (
        f"reconciled_statistics: publishing {DAYS} audited days to offer_placement_stats "
        f"failed, none of them was published ({days[0]}..{days[-1]}): No space left on device"
    ) in failure.step_failure_data.error.to_string()  # the cause of "Exceeded max_retries"
    assert {day: serving_rows(paths.serving_db, day) for day in days} == online
    assert serving.DuckDBServingStore(paths.serving_db).reconciled_days() == {}
    assert not [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("reconciled_statistics")
    ]
