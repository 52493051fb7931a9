"""Declarative automation: the anomaly windows and reports follow a re-reconciled day, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pytest

from adrecon_assets.definitions import defs
from adrecon_assets_tests.sensor_lakes import days_ago

D1, D2, D3 = days_ago(3), days_ago(2), days_ago(1)
DAY_KEYS = [
    key
    for key in defs.resolve_asset_graph().get_all_asset_keys()
    if not key.to_user_string().startswith("lake_")
]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def materialize(instance: dg.DagsterInstance, keys: list[str], days: list[date]) -> None:
    """Record materializations (as a run would), day by day in the graph's order."""
    order = [key.to_user_string() for key in defs.resolve_asset_graph().toposorted_asset_keys]
    for day in days:
        for name in sorted(keys, key=order.index):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(name, partition=day.isoformat())
            )


class Daemon:
    """Evaluates the automation conditions tick after tick, keeping the cursor."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def tick(self) -> set[tuple[str, date]]:
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        return {
            (key.to_user_string(), date.fromisoformat(str(partition)))
            for key in DAY_KEYS
            for partition in result.get_requested_partitions(key)
        }


def test_reconciled_day_again_reruns_the_windows_and_reports_that_read_it_once(
    instance: dg.DagsterInstance,
) -> None:
    daemon = Daemon(instance)
    materialize(instance, [key.to_user_string() for key in DAY_KEYS], [D1, D2, D3])
    assert daemon.tick() == set()  # everything materialized after its inputs: nothing to do
    assert daemon.tick() == set()

    # D1 reconciled again (a late-data rerun, a backfill of the day): what reads it follows.
    materialize(instance, ["reconciled_statistics"], [D1])
    assert daemon.tick() == {
        ("refund_ledger", D1),
        *(
            (asset, day)
            for asset in ("anomaly_metrics", "placement_performance")
            for day in (D1, D2, D3)
        ),
    }
    assert daemon.tick() == set()  # requested once, not again while nothing else changes

    materialize(instance, ["anomaly_metrics", "placement_performance"], [D1, D2, D3])
    materialize(instance, ["refund_ledger"], [D1])
    assert daemon.tick() == set()


def test_days_never_materialized_are_left_to_the_readiness_sensor(
    instance: dg.DagsterInstance,
) -> None:
    daemon = Daemon(instance)
    # Reports of D1 and D2 were never materialized (e.g. a backfill of the contract assets).
    contract = [k.to_user_string() for k in DAY_KEYS if "performance" not in k.to_user_string()]
    materialize(instance, [name for name in contract if name != "refund_ledger"], [D1, D2])
    assert daemon.tick() == set()
    materialize(instance, ["fraud_flags", "reconciled_statistics"], [D1])
    assert daemon.tick() == {("anomaly_metrics", D1), ("anomaly_metrics", D2)}


def test_readiness_reconciles_every_asset_of_a_new_day_reports_included() -> None:
    sensor = defs.resolve_sensor_def("lake_readiness_sensor")
    target = defs.resolve_job_def(sensor.job_name or "")  # the sensor's asset target, as a job
    assert set(target.asset_layer.selected_asset_keys) == set(DAY_KEYS)
    assert {"placement_performance", "refund_ledger", "emission_counts"} <= {
        key.to_user_string() for key in DAY_KEYS
    }
