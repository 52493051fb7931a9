"""`adrecon-metrics`: adrecon's technical metrics for Prometheus (contract 6.3).

Serves the Prometheus text format at http://ADRECON_METRICS_HOST:ADRECON_METRICS_PORT/metrics
(default 127.0.0.1:9464), computed at each scrape from the Dagster instance of DAGSTER_HOME
and the lake (ADRECON_LAKE_ROOT):

- `adrecon_unreconciled_days`: closed lake days since ADRECON_START_DATE not reconciled
  (`day_accounting.unreconciled_closed_days`, the healthcheck's and the sensors' definition);
- `adrecon_newest_reconciled_day_age_days`: days from the newest reconciled day to today;
- `adrecon_sla_missed_days`: days of the last 30 whose SLA verdict is a miss;
- `adrecon_step_duration_seconds{asset}`: each daily asset's `duration_seconds` on the newest
  reconciled day;
- `adrecon_failed_checks{severity}`: (check, day) pairs of the last 30 days whose latest
  evaluation failed, by severity (ERROR, WARN);
- `adrecon_lake_readable`: 1, or 0 when the lake could not be read (the day count is then
  left out rather than reported as 0).

Dagster has no Prometheus endpoint of its own (its issue 4480), so this small server reads the
instance through its public API, as the healthcheck does.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adrecon_assets.day_accounting import account_days, partition_days, reconciled_days
from adrecon_assets.jobs import SLA_CHECK_KEY
from adrecon_assets.lake import Lake, LakeNotFoundError
from adrecon_assets.rules import DURATION_METADATA, METRICS_WINDOW_DAYS
from adrecon_assets.sensors.instance_records import (
    FAILED,
    SUCCEEDED,
    CheckExecution,
    latest_materializations,
)
from adrecon_assets.settings import load_settings

log = logging.getLogger("adrecon-metrics")
# The metrics served, by name: the Grafana dashboard in deploy/ queries only these.
UNRECONCILED_DAYS = "adrecon_unreconciled_days"
NEWEST_RECONCILED_DAY_AGE = "adrecon_newest_reconciled_day_age_days"
SLA_MISSED_DAYS = "adrecon_sla_missed_days"
STEP_DURATION = "adrecon_step_duration_seconds"
FAILED_CHECKS = "adrecon_failed_checks"
LAKE_READABLE = "adrecon_lake_readable"
METRIC_NAMES = (
    UNRECONCILED_DAYS,
    NEWEST_RECONCILED_DAY_AGE,
    SLA_MISSED_DAYS,
    STEP_DURATION,
    FAILED_CHECKS,
    LAKE_READABLE,
)
SEVERITIES = ("ERROR", "WARN")
# Evaluations read per check and scrape: 30 days of evaluations, reruns included.
EVALUATIONS_READ = 300


def latest_verdicts(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, days: set[date]
) -> dict[date, CheckExecution]:
    """The latest evaluation (passed or failed, not planned) of the check for each of `days`."""
    history: Sequence[CheckExecution] = (
        instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=EVALUATIONS_READ
        )
    )
    latest: dict[date, CheckExecution] = {}
    for record in history:  # newest first
        if record.partition is None or record.status.value not in (SUCCEEDED, FAILED):
            continue
        day = date.fromisoformat(record.partition)
        if day in days and day not in latest:
            latest[day] = record
    return latest


def severity(record: CheckExecution) -> str:
    event = record.event.dagster_event if record.event else None
    data = event.event_specific_data if event else None
    if isinstance(data, dg.AssetCheckEvaluation):
        return str(data.severity.value)
    return "ERROR"


@dataclass(frozen=True)
class Graph:
    """What the metrics read of the code location: its daily assets and its checks."""

    daily_assets: list[dg.AssetKey]
    check_keys: list[dg.AssetCheckKey]

    @classmethod
    def of(cls, defs: dg.Definitions) -> Graph:
        graph = defs.resolve_asset_graph()
        daily = [
            key
            for key in graph.get_all_asset_keys()
            if graph.get(key).is_materializable and graph.get(key).partitions_def is not None
        ]
        return cls(sorted(daily, key=str), sorted(graph.asset_check_keys, key=str))


class AdreconCollector(Collector):
    """Computes every metric at each scrape (one at a time); remembers up to which day all
    days are reconciled, so a scrape asks the instance only about the days after it."""

    def __init__(self, instance: dg.DagsterInstance, lake_root: str, graph: Graph) -> None:
        self.instance = instance
        self.lake_root = lake_root
        self.graph = graph
        self.reconciled_through: date | None = None
        self.lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.lock:
            yield from self.compute(datetime.now(UTC))

    def compute(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        window = {now.date() - timedelta(days=n) for n in range(1, METRICS_WINDOW_DAYS + 1)}
        try:
            account = account_days(
                self.instance, Lake(self.lake_root), now, self.reconciled_through
            )
        except LakeNotFoundError as error:
            log.error("the lake cannot be read: %s", error)
            yield gauge(LAKE_READABLE, "1 if the lake could be read at this scrape", 0)
            newest = max(reconciled_days(self.instance, partition_days(now)), default=None)
        else:
            self.reconciled_through = account.reconciled_through
            yield gauge(LAKE_READABLE, "1 if the lake could be read at this scrape", 1)
            yield gauge(
                UNRECONCILED_DAYS,
                "Closed lake days since ADRECON_START_DATE that are not reconciled",
                len(account.unreconciled_closed),
            )
            newest = max(account.reconciled, default=None)
        yield gauge(
            NEWEST_RECONCILED_DAY_AGE,
            "Days from the newest reconciled day to today (UTC)",
            (now.date() - newest).days if newest else float("nan"),
        )
        sla = latest_verdicts(self.instance, SLA_CHECK_KEY, window)
        missed = sum(record.status.value == FAILED for record in sla.values())
        yield gauge(SLA_MISSED_DAYS, "SLA misses among the last 30 days", missed)
        yield self.step_durations(newest)
        yield self.failed_checks(window)

    def step_durations(self, newest: date | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            STEP_DURATION,
            "duration_seconds of each daily asset on the newest reconciled day",
            labels=["asset"],
        )
        if newest is None:
            return family
        for key in self.graph.daily_assets:
            record = latest_materializations(self.instance, key, [newest]).get(newest)
            value = duration(record)
            if value is not None:
                family.add_metric([key.to_user_string()], value)
        return family

    def failed_checks(self, window: set[date]) -> GaugeMetricFamily:
        counts = dict.fromkeys(SEVERITIES, 0)
        for check_key in self.graph.check_keys:
            for record in latest_verdicts(self.instance, check_key, window).values():
                if record.status.value == FAILED:
                    level = severity(record)
                    counts[level] = counts.get(level, 0) + 1
        family = GaugeMetricFamily(
            FAILED_CHECKS,
            "Checks whose latest evaluation for a day of the last 30 failed, by severity",
            labels=["severity"],
        )
        for level, count in sorted(counts.items()):
            family.add_metric([level], count)
        return family


def duration(record: dg.EventLogRecord | None) -> float | None:
    materialization = record.asset_materialization if record else None
    value = materialization.metadata.get(DURATION_METADATA) if materialization else None
    return float(value.value) if value is not None and value.value is not None else None  # type: ignore[arg-type]


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def registry_for(instance: dg.DagsterInstance, lake_root: str, graph: Graph) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AdreconCollector(instance, lake_root, graph))
    return registry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adrecon-metrics", description=__doc__)
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    from adrecon_assets.definitions import defs  # the code location's assets and checks

    graph = Graph.of(defs)
    with dg.DagsterInstance.get() as instance:
        registry = registry_for(instance, settings.lake_root, graph)
        server, thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
        log.info("serving http://%s:%s/metrics", settings.metrics_host, server.server_address[1])
        try:
            thread.join()
        except KeyboardInterrupt:
            server.shutdown()
    return 0
