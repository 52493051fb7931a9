"""Stage 1: validated, typed copies of a day of the lake (raw_clicks, raw_emissions)."""

from collections.abc import Iterator

import dagster as dg

from adrecon_assets.assets.audit import audit_before_publish, failed_blocking_checks, log_publishing
from adrecon_assets.assets.day_assets import (
    OWNERS,
    DayResult,
    day_asset,
    engine_kinds,
    run_engine_step,
)
from adrecon_assets.checks.staging import lake_check_results, lake_check_specs
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.lake import LakeNotFoundError
from adrecon_assets.partitions import daily_partitions, parse_day
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import RAW_DATASET, atomic_folder

# The lake's topics as external assets, so the lineage starts at the lake. Their data version
# per day is the folder's fingerprint (adrecon_assets/lake.py), recorded as an observation by
# late_data_sensor whenever it changes (sensors/lake_observations.py); a late file thus shows on
# raw_clicks or raw_emissions of that day as a changed upstream version.
LAKE_SOURCE_KEYS = {topic: dg.AssetKey(f"lake_{topic.value}") for topic in Topic}
LAKE_SOURCES = [
    dg.AssetSpec(
        key,
        group_name="lake",
        kinds={"parquet"},
        partitions_def=daily_partitions,
        description=(
            f"The lake's `{topic.value}/date_partition=D/` folders (written by the persister, "
            "never by this project). Data version: the folder's fingerprint; `_SUCCESS` in the "
            "observation's `closed` metadata marks a day ready."
        ),
    )
    for topic, key in LAKE_SOURCE_KEYS.items()
]


class KeepPrevious(Exception):
    """Leaves a staged output unpublished (atomic_folder discards it) without failing yet."""


def raw_topic_asset(topic: Topic) -> dg.AssetsDefinition:
    """The staging asset of one lake topic; both topics share this definition."""
    name = RAW_DATASET[topic].value
    specs = lake_check_specs(name)

    @day_asset(
        name=name,
        group_name="lake",
        kinds=engine_kinds({"parquet"}),
        owners=OWNERS,
        check_specs=specs,
        deps=[LAKE_SOURCE_KEYS[topic]],
        description=(
            f"Validated, typed copy of the lake's `{topic.value}` partition of the day. Rows "
            "that break the contract are quarantined and block reconciliation; structurally bad "
            "files fail the run naming the file and column."
        ),
    )
    def _raw_topic(
        context: dg.AssetExecutionContext,
        storage: StorageResource,
        engine: EngineResource,
        check_thresholds: CheckThresholds,
    ) -> Iterator[DayResult]:
        day = parse_day(context.partition_key)
        try:
            partition = storage.lake.partition(topic, day)
        except LakeNotFoundError as error:
            # A wrong root or missing topic is never an empty day (contract 2): fail, no retry.
            raise dg.Failure(description=str(error), allow_retries=False) from error
        warehouse = storage.warehouse
        output = warehouse.folder(RAW_DATASET[topic], day)
        quarantine = warehouse.quarantine_folder(topic, day)
        context.log.info(
            f"staging {len(partition.files)} {topic.value} files "
            f"({partition.total_bytes / 1e6:.1f} MB) from {partition.folder}"
        )
        # Write, audit, publish: the quarantined rows are published for the on-call to read,
        # the staged rows only once the blocking checks passed on them.
        with atomic_folder(quarantine) as quarantine_scratch:
            try:
                with atomic_folder(output) as staged:
                    report, seconds = run_engine_step(
                        lambda: engine.get_engine().stage_topic(
                            partition, staged, quarantine_scratch
                        ),
                        outputs=(staged, quarantine_scratch),
                    )
                    checks = lake_check_results(
                        report, quarantine, staged, topic, day, check_thresholds
                    )
                    if failed_blocking_checks(specs, checks):
                        raise KeepPrevious
                    log_publishing(context, day)
            except KeepPrevious:
                pass
        if failed_blocking_checks(specs, checks):
            yield from audit_before_publish(context, day, specs, checks)
        yield dg.MaterializeResult(
            metadata={
                "lake_fingerprint": partition.fingerprint,
                "lake_files": len(partition.files),
                "lake_bytes": partition.total_bytes,
                "lake_newest_mtime_ns": str(partition.newest_mtime_ns),
                "lake_closed": partition.closed,
                "rows_in": report.rows_in,
                "rows_out": report.rows_out,
                "quarantined_rows": report.quarantined_rows,
                "engine": engine.engine_name,
                "engine_seconds": round(seconds, 3),
                "path": dg.MetadataValue.path(str(output)),
            },
            check_results=checks,
        )

    return _raw_topic


raw_clicks = raw_topic_asset(Topic.CLICKS)
raw_emissions = raw_topic_asset(Topic.EMISSIONS)
