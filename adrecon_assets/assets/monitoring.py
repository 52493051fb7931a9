"""Stage 3: watch the business metrics (placement click anomalies against a trailing baseline)."""

from collections.abc import Iterator

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adrecon_assets import serving
from adrecon_assets.assets.audit import audit_before_publish
from adrecon_assets.assets.day_assets import (
    SERVING_POOL,
    DayResult,
    day_window_asset,
    engine_kinds,
    run_engine_step,
)
from adrecon_assets.assets.day_context import days_of_run
from adrecon_assets.assets.day_inputs import day_inputs_ready
from adrecon_assets.assets.ranged_publication import publish_day
from adrecon_assets.assets.reconciliation import reconciled_statistics
from adrecon_assets.checks.monitoring import (
    anomaly_check_results,
    anomaly_check_specs,
    anomaly_rows_audit,
)
from adrecon_assets.partitions import parse_day, trailing_days, trailing_window
from adrecon_assets.reports.trailing_charts import anomaly_chart_markdown
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import ANOMALY_TRAILING_DAYS
from adrecon_assets.warehouse import Dataset, atomic_folder, reading

ANOMALY_CHECK_SPECS = anomaly_check_specs()


@day_window_asset(
    name="anomaly_metrics",
    group_name="monitoring",
    kinds=engine_kinds({"duckdb"}),
    pool=SERVING_POOL,
    deps=[dg.AssetDep(reconciled_statistics, partition_mapping=trailing_window)],
    check_specs=ANOMALY_CHECK_SPECS,
    description=(
        f"Valid clicks per placement against the mean of the {ANOMALY_TRAILING_DAYS} trailing "
        "reconciled days; a fall to a tenth or a tenfold rise is an anomaly. Written to "
        "placement_anomalies."
    ),
)
def anomaly_metrics(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    engine: EngineResource,
    serving_db: ServingResource,
) -> Iterator[DayResult]:
    day = parse_day(context.partition_key)
    warehouse = storage.warehouse
    if not day_inputs_ready(context, warehouse, day, [Dataset.RECONCILED_STATISTICS]):
        return
    folders = {day: warehouse.folder(Dataset.RECONCILED_STATISTICS, day)}
    missing = []
    for history_day in trailing_days(day, ANOMALY_TRAILING_DAYS):
        if warehouse.exists(Dataset.RECONCILED_STATISTICS, history_day):
            folders[history_day] = warehouse.folder(Dataset.RECONCILED_STATISTICS, history_day)
        else:
            missing.append(history_day.isoformat())
    if missing:
        context.log.warning(f"baseline without unreconciled days {', '.join(missing)}")
    compute = engine.get_engine()
    # Its warehouse folder only feeds the anomaly chart (drawn below from the days written so
    # far), so it is swapped before the serving write, unlike reconciled_statistics'.
    with (
        reading(*folders.values()) as versions,
        atomic_folder(warehouse.folder(Dataset.ANOMALY_METRICS, day)) as staged,
    ):
        read = dict(zip(folders, versions, strict=True))
        report, seconds = run_engine_step(
            lambda: compute.placement_anomalies(day, read, staged), outputs=(staged,)
        )
        rows = pq.read_table(staged)
        anomalous = rows.filter(pc.field("is_anomaly"))["placement"].to_pylist()
        checks = [
            *anomaly_check_results(report, anomalous),
            anomaly_rows_audit(rows, day, read[day]),
        ]
        yield from audit_before_publish(context, day, ANOMALY_CHECK_SPECS, checks)
    publish_day(
        context, serving_db.get_store(), serving.DayReplace(serving.PLACEMENT_ANOMALIES, day, rows)
    )
    yield dg.MaterializeResult(
        metadata={
            "placements": report.placements,
            "anomalies": report.anomalies,
            "history_days": report.history_days,
            "missing_history_days": ", ".join(missing) or "none",
            "anomaly_chart": dg.MetadataValue.md(
                anomaly_chart_markdown(warehouse, day, days_of_run(context))
            ),
            "engine": compute.name,
            "engine_seconds": round(seconds, 3),
        },
        check_results=checks,
    )
