"""Stage 2: deduplicate and join, flag fraud, aggregate and publish the day's statistics."""

import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from adrecon_assets import serving
from adrecon_assets.assets.audit import audit_before_publish
from adrecon_assets.assets.day_assets import (
    OWNERS,
    SERVING_POOL,
    DayResult,
    day_asset,
    day_window_asset,
    engine_kinds,
    run_engine_step,
)
from adrecon_assets.assets.day_context import AnyDayContext
from adrecon_assets.assets.day_inputs import day_inputs_ready
from adrecon_assets.assets.ranged_publication import publish_day
from adrecon_assets.assets.staging import raw_clicks, raw_emissions
from adrecon_assets.checks.reconciliation import (
    flag_check_results,
    flag_check_specs,
    join_check_results,
    join_check_specs,
    statistics_check_results,
    statistics_check_specs,
)
from adrecon_assets.checks.staging import quarantine_summary
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.engines.base import EmissionSource, Engine
from adrecon_assets.metadata.lake_fingerprint import lake_input_fingerprint
from adrecon_assets.metadata.markdown import corrections_metadata
from adrecon_assets.metadata.parquet_rows import parquet_rows
from adrecon_assets.partitions import (
    parse_day,
    previous_and_same_day,
    previous_day,
)
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import (
    Dataset,
    Warehouse,
    atomic_folder,
    reading,
    staged_version,
)

STATISTICS_CHECK_SPECS = statistics_check_specs()


def require_output(warehouse: Warehouse, dataset: Dataset, day: date) -> Path:
    """The folder of a same-run upstream output (Dagster ran it first, so absence is a bug)."""
    folder = warehouse.folder(dataset, day)
    if not folder.is_dir():
        raise dg.Failure(
            f"{dataset.value} for {day} was never materialized ({folder} is missing); "
            f"materialize it first, e.g. --select '{dataset.value}' --partition {day}",
            allow_retries=False,
        )
    return folder


def previous_day_emissions(
    context: AnyDayContext,
    storage: StorageResource,
    engine: Engine,
    day: date,
    scratch: Path,
) -> list[EmissionSource]:
    """Emissions of D-1 from the warehouse; if never materialized but present in the lake,
    staged now (a quarantined row fails the run rather than silently vanishing)."""
    before = previous_day(day)
    if before is None:
        return []
    warehouse = storage.warehouse
    if warehouse.exists(Dataset.RAW_EMISSIONS, before):
        return [EmissionSource(before, warehouse.folder(Dataset.RAW_EMISSIONS, before))]
    partition = storage.lake.partition(Topic.EMISSIONS, before)
    if not partition.files:
        return []
    context.log.warning(
        f"raw_emissions {before} was never materialized; staging its {len(partition.files)} "
        "lake files for this run only"
    )
    staged, quarantine = scratch / "emissions", scratch / "quarantine"
    report, _ = run_engine_step(
        lambda: engine.stage_topic(partition, staged, quarantine), outputs=(staged, quarantine)
    )
    if report.quarantined_rows:
        raise dg.Failure(
            f"raw_emissions {before} has {report.quarantined_rows} rows that break the contract "
            f"({quarantine_summary(report)}); materialize raw_emissions for {before} to see "
            "them in its quarantine folder",
            allow_retries=False,
        )
    return [EmissionSource(before, staged)]


@day_window_asset(
    name="joined_clicks",
    group_name="reconciliation",
    kinds=engine_kinds({"parquet"}),
    deps=[
        dg.AssetDep(raw_clicks),
        dg.AssetDep(raw_emissions, partition_mapping=previous_and_same_day),
    ],
    check_specs=join_check_specs(),
    description=(
        "One row per deduplicated click of the day, joined to its deduplicated emission of the "
        "same or the previous day (rules 1-2)."
    ),
    # Written by the same engine call (one pass over the deduplicated emissions).
    also=[
        dg.AssetSpec(
            Dataset.EMISSION_COUNTS.value,
            deps=[dg.AssetDep(raw_emissions, partition_mapping=previous_and_same_day)],
            description=(
                "The day's deduplicated emissions per (offer_id, placement) (rule 1), the "
                "`emissions` measure of reconciled_statistics; written with joined_clicks."
            ),
        )
    ],
)
def joined_clicks(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    engine: EngineResource,
    check_thresholds: CheckThresholds,
) -> Iterator[dg.MaterializeResult]:
    day = parse_day(context.partition_key)
    warehouse = storage.warehouse
    if not day_inputs_ready(context, warehouse, day, [Dataset.RAW_CLICKS, Dataset.RAW_EMISSIONS]):
        return
    compute = engine.get_engine()
    output = warehouse.folder(Dataset.JOINED_CLICKS, day)
    with (
        atomic_folder(output) as joined,
        atomic_folder(warehouse.folder(Dataset.EMISSION_COUNTS, day)) as counts,
        # Named after the output, so the next write of this day removes it after a crash.
        tempfile.TemporaryDirectory(
            dir=output.parent, prefix=f".{output.name}.staging-"
        ) as scratch,
    ):
        links = previous_day_emissions(context, storage, compute, day, Path(scratch))
        links.append(EmissionSource(day, warehouse.folder(Dataset.RAW_EMISSIONS, day)))
        # One version of each input for the whole read (a late-data rerun may swap one).
        with reading(
            warehouse.folder(Dataset.RAW_CLICKS, day), *(source.folder for source in links)
        ) as (clicks, *emission_versions):
            sources = [
                EmissionSource(source.day, version)
                for source, version in zip(links, emission_versions, strict=True)
            ]
            report, seconds = run_engine_step(
                lambda: compute.join_clicks(day, clicks, sources, joined, counts),
                outputs=(joined, counts),
            )
    if dg.AssetKey(Dataset.EMISSION_COUNTS.value) in context.selected_asset_keys:
        counts_folder = warehouse.folder(Dataset.EMISSION_COUNTS, day)
        yield dg.MaterializeResult(
            asset_key=Dataset.EMISSION_COUNTS.value,
            metadata={"rows": parquet_rows(counts_folder), "emissions": report.emissions_of_day},
        )
    if dg.AssetKey(Dataset.JOINED_CLICKS.value) not in context.selected_asset_keys:
        return
    yield dg.MaterializeResult(
        asset_key=Dataset.JOINED_CLICKS.value,
        metadata={
            "clicks_in": report.clicks_in,
            "clicks_deduplicated": report.clicks_deduplicated,
            "duplicate_clicks": report.duplicate_clicks,
            "emissions_in": report.emissions_in,
            "emissions_deduplicated": report.emissions_deduplicated,
            "duplicate_emissions": report.duplicate_emissions,
            "emissions_of_day": report.emissions_of_day,
            "matched_clicks": report.matched_clicks,
            "matched_previous_day": report.matched_previous_day,
            "orphan_clicks": report.orphan_clicks,
            "rows_in": report.clicks_in,
            "rows_out": report.clicks_deduplicated,
            "input_fingerprint": lake_input_fingerprint(storage.lake, day),
            "engine": compute.name,
            "engine_seconds": round(seconds, 3),
        },
        check_results=join_check_results(
            report, warehouse.folder(Dataset.JOINED_CLICKS, day), check_thresholds
        ),
    )


@day_asset(
    group_name="reconciliation",
    kinds=engine_kinds({"parquet"}),
    owners=OWNERS,
    deps=[Dataset.JOINED_CLICKS.value],
    check_specs=flag_check_specs(),
    description=(
        "Each deduplicated click with at most one fraud_reason, the first that applies: "
        "no_emission, too_fast (< 1 s), denylisted_ip, click_flood (3 earlier clicks of the "
        "same user and offer within 600 s)."
    ),
)
def fraud_flags(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    engine: EngineResource,
    check_thresholds: CheckThresholds,
) -> dg.MaterializeResult:
    day = parse_day(context.partition_key)
    warehouse = storage.warehouse
    # A missing denylist fails the run naming it (contract 2), never an empty denylist.
    denylist, _ = run_engine_step(storage.lake.denylist)
    compute = engine.get_engine()
    with (
        reading(require_output(warehouse, Dataset.JOINED_CLICKS, day)) as (joined,),
        atomic_folder(warehouse.folder(Dataset.FRAUD_FLAGS, day)) as flagged,
    ):
        report, seconds = run_engine_step(
            lambda: compute.flag_fraud(day, joined, denylist, flagged), outputs=(flagged,)
        )
        rows_in = parquet_rows(joined)
    return dg.MaterializeResult(
        metadata={
            "clicks": report.clicks,
            "valid_clicks": report.valid_clicks,
            **{f"clicks_{reason}": count for reason, count in report.reasons.items()},
            "denylist_ranges": len(denylist),
            "rows_in": rows_in,
            "rows_out": report.clicks,
            "input_fingerprint": lake_input_fingerprint(storage.lake, day),
            "engine": compute.name,
            "engine_seconds": round(seconds, 3),
        },
        check_results=flag_check_results(report, check_thresholds),
    )


class PublishConfig(dg.Config):
    """Run config of reconciled_statistics: the operator's explicit override of the empty-day
    rule (contract 4)."""

    publish_empty_day: bool = Field(
        default=False,
        description=(
            "Publish the day even though it reconciles to no clicks while the online layer "
            "counted some (only once the lake is known to be complete)."
        ),
    )


@day_asset(
    group_name="reconciliation",
    kinds=engine_kinds({"duckdb"}),
    owners=OWNERS,
    pool=SERVING_POOL,
    deps=[fraud_flags, Dataset.EMISSION_COUNTS.value],
    check_specs=STATISTICS_CHECK_SPECS,
    description=(
        "Per (offer_id, placement) statistics of the day (rule 4). Staged, audited by the "
        "blocking checks, then published: the day's rows of offer_placement_stats replaced in "
        "one transaction with source = 'offline', then the warehouse folder swapped."
    ),
)
def reconciled_statistics(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    storage: StorageResource,
    engine: EngineResource,
    serving_db: ServingResource,
    check_thresholds: CheckThresholds,
) -> Iterator[DayResult]:
    day = parse_day(context.partition_key)
    warehouse = storage.warehouse
    compute = engine.get_engine()
    output = warehouse.folder(Dataset.RECONCILED_STATISTICS, day)
    with (
        reading(
            require_output(warehouse, Dataset.FRAUD_FLAGS, day),
            require_output(warehouse, Dataset.EMISSION_COUNTS, day),
        ) as (flagged, counts),
        staged_version(output) as staged,
        # The previous rows and what the audit spills; named after the output, so the next
        # write of this day removes it after a crash.
        tempfile.TemporaryDirectory(
            dir=output.parent, prefix=f".{output.name}.staging-"
        ) as scratch_name,
    ):
        scratch = Path(scratch_name)
        report, seconds = run_engine_step(
            lambda: compute.aggregate(day, flagged, counts, staged.path), outputs=(staged.path,)
        )
        store = serving_db.get_store()
        # The day's rows as the store holds them now, as Parquet: the audit and the drift read
        # the day from files in bounded memory, never as Python rows (millions of keys).
        previous_rows = scratch / "previous_rows.parquet"
        store.export_day_rows(day, previous_rows)
        previous = serving.totals_of(previous_rows)
        checks = statistics_check_results(
            staged.path,
            previous,
            flagged,
            counts,
            check_thresholds,
            config.publish_empty_day,
            spill_folder=scratch,
        )
        yield from audit_before_publish(context, day, STATISTICS_CHECK_SPECS, checks)
        corrections = corrections_metadata(
            previous_rows, staged.path, previous.source, spill_folder=scratch
        )
        # The serving store first, then the warehouse folder (when this block ends, or after a
        # ranged run's one serving transaction): a publish that fails leaves both as they were.
        # The rows go as the staged Parquet folder, streamed by the store (a ranged run keeps
        # only the folder of each day until its one transaction).
        publish_day(
            context,
            store,
            serving.DayReplace(
                serving.OFFER_PLACEMENT_STATS,
                day,
                staged.path,
                {"source": serving.OFFLINE_SOURCE},
                run_id=context.run.run_id,
            ),
            staged,
        )
        rows_in = parquet_rows(flagged)
    yield dg.MaterializeResult(
        metadata={
            "rows": report.rows,
            "emissions": report.emissions,
            "clicks": report.clicks,
            "cost_micros": report.cost_micros,
            "fraud_clicks": report.fraud_clicks,
            "refund_micros": report.refund_micros,
            "previous_source": previous.source or "none",
            "previous_clicks": previous.clicks,
            "previous_cost_micros": previous.cost_micros,
            **corrections,
            "rows_in": rows_in,
            "rows_out": report.rows,
            "input_fingerprint": lake_input_fingerprint(storage.lake, day),
            "engine": compute.name,
            "engine_seconds": round(seconds, 3),
        },
        check_results=checks,
    )
