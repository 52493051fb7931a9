"""Stage 4: business reports for operators and advertisers, published to the serving DB.

The rows come from DuckDB SQL over the warehouse (see `reports/queries.py`), so the reports are
the same whichever engine reconciled the day.
"""

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg

from adrecon_assets import serving
from adrecon_assets.assets.audit import audit_before_publish
from adrecon_assets.assets.day_assets import SERVING_POOL, DayResult, day_asset, day_window_asset
from adrecon_assets.assets.day_context import days_of_run
from adrecon_assets.assets.day_inputs import day_inputs_ready
from adrecon_assets.assets.ranged_publication import publish_day
from adrecon_assets.assets.reconciliation import fraud_flags, reconciled_statistics, require_output
from adrecon_assets.checks.reports import (
    placement_performance_check_results,
    placement_performance_check_specs,
    refund_ledger_check_results,
    refund_ledger_check_specs,
)
from adrecon_assets.metadata.display import markdown_text
from adrecon_assets.metadata.markdown import money
from adrecon_assets.partitions import parse_day
from adrecon_assets.reports import queries
from adrecon_assets.reports.trailing_charts import fraud_mix_chart_markdown, written_folders
from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.resources.storage import StorageResource
from adrecon_assets.warehouse import Dataset, reading

OWNERS = ["team:ads-analytics"]
# The reports' rows come from their DuckDB SQL, so it counts in their code version.
REPORT_SOURCES = ("reports/queries.py",)
KINDS = {"duckdb", "table"}
PREVIEW_ROWS = 10
PERFORMANCE_SPECS = placement_performance_check_specs()
LEDGER_SPECS = refund_ledger_check_specs()

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    # Placement performance of D looks at D and the days before it for the "no buyers" flag.
    no_buyers_window = dg.TimeWindowPartitionMapping(
        start_offset=-(queries.NO_BUYERS_TRAILING_DAYS - 1),
        end_offset=0,
        allow_nonexistent_upstream_partitions=True,
    )


@day_window_asset(
    name="placement_performance",
    group_name="reporting",
    code_from=REPORT_SOURCES,
    kinds=KINDS,
    owners=OWNERS,
    pool=SERVING_POOL,
    deps=[dg.AssetDep(reconciled_statistics, partition_mapping=no_buyers_window)],
    check_specs=PERFORMANCE_SPECS,
    description=(
        "Emissions, valid clicks, CTR and cost per placement and day, written to the serving "
        f"table placement_performance. Placements with emissions but no valid click over the "
        f"{queries.NO_BUYERS_TRAILING_DAYS} days up to D are flagged attracts_no_buyers: "
        "placements that don't attract buyers."
    ),
)
def placement_performance(
    context: dg.AssetExecutionContext, storage: StorageResource, serving_db: ServingResource
) -> Iterator[DayResult]:
    day = parse_day(context.partition_key)
    warehouse = storage.warehouse
    if not day_inputs_ready(context, warehouse, day, [Dataset.RECONCILED_STATISTICS]):
        return
    folders = written_folders(
        warehouse, Dataset.RECONCILED_STATISTICS, day, queries.NO_BUYERS_TRAILING_DAYS
    )
    with reading(*folders) as versions:
        rows = queries.placement_performance(day, versions)
    store = serving_db.get_store()
    published = store.day_totals(day)
    # Audited against the day's published statistics before the report is published.
    checks = placement_performance_check_results(rows, published)
    yield from audit_before_publish(context, day, PERFORMANCE_SPECS, checks)
    publish_day(context, store, serving.DayReplace(serving.PLACEMENT_PERFORMANCE, day, rows))
    buyerless = [row for row in rows.to_pylist() if row["attracts_no_buyers"]]
    yield dg.MaterializeResult(
        metadata={
            "rows_out": rows.num_rows,
            "placements_without_buyers": len(buyerless),
            "trailing_days_read": len(folders),
            "placements_that_dont_attract_buyers": dg.MetadataValue.md(
                "\n".join(
                    ["| placement | emissions over the window |", "| --- | ---: |"]
                    + [
                        f"| {markdown_text(row['placement'])} | {row['trailing_emissions']:,} |"
                        for row in buyerless[:PREVIEW_ROWS]
                    ]
                )
                if buyerless
                else "Every placement got a valid click."
            ),
            "preview": dg.MetadataValue.md(performance_preview(rows.to_pylist())),
            "table": f"{serving_db.location}:{serving.PLACEMENT_PERFORMANCE.name}",
        },
        check_results=checks,
    )


def performance_preview(rows: list[dict[str, Any]]) -> str:
    """The busiest placements of the day as a Markdown table."""
    busiest = sorted(rows, key=lambda row: (-row["clicks"], row["placement"]))
    lines = [
        "| placement | emissions | valid clicks | CTR | cost |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in busiest[:PREVIEW_ROWS]:
        ctr = "n/a" if row["ctr"] is None else f"{row['ctr']:.2%}"
        lines.append(
            f"| {markdown_text(row['placement'])} | {row['emissions']:,} | {row['clicks']:,} "
            f"| {ctr} "
            f"| {money(row['cost_micros'])} |"
        )
    return "\n".join(lines)


@day_asset(
    group_name="reporting",
    kinds=KINDS,
    code_from=REPORT_SOURCES,
    owners=OWNERS,
    pool=SERVING_POOL,
    deps=[fraud_flags, reconciled_statistics],
    check_specs=LEDGER_SPECS,
    description=(
        "What to credit each advertiser for the day: refunded clicks and money per offer and "
        "fraud reason (too_fast, denylisted_ip, click_flood), written to the serving table "
        "refund_ledger. Carries the fraud-mix chart of the trailing days."
    ),
)
def refund_ledger(
    context: dg.AssetExecutionContext, storage: StorageResource, serving_db: ServingResource
) -> Iterator[DayResult]:
    day = parse_day(context.partition_key)
    warehouse = storage.warehouse
    with reading(
        require_output(warehouse, Dataset.FRAUD_FLAGS, day),
        require_output(warehouse, Dataset.RECONCILED_STATISTICS, day),
    ) as (flagged, statistics):
        rows = queries.refund_ledger(day, flagged)
        checks = refund_ledger_check_results(rows, queries.refunds_by_offer(statistics))
    yield from audit_before_publish(context, day, LEDGER_SPECS, checks)
    publish_day(
        context, serving_db.get_store(), serving.DayReplace(serving.REFUND_LEDGER, day, rows)
    )
    by_reason: dict[str, tuple[int, int]] = {}
    for row in rows.to_pylist():
        clicks, micros = by_reason.get(row["fraud_reason"], (0, 0))
        by_reason[row["fraud_reason"]] = (clicks + row["clicks"], micros + row["refund_micros"])
    yield dg.MaterializeResult(
        metadata={
            "rows_out": rows.num_rows,
            "offers_credited": len(set(rows["offer_id"].to_pylist())),
            "refund_micros": sum(micros for _, micros in by_reason.values()),
            **{f"refund_micros_{reason}": micros for reason, (_, micros) in by_reason.items()},
            "fraud_mix": dg.MetadataValue.md(
                fraud_mix_chart_markdown(warehouse, day, days_of_run(context))
            ),
            "largest_credits": dg.MetadataValue.md(ledger_preview(rows.to_pylist())),
            "table": f"{serving_db.location}:{serving.REFUND_LEDGER.name}",
        },
        check_results=checks,
    )


def ledger_preview(rows: list[dict[str, Any]]) -> str:
    """The offers to credit most, as a Markdown table."""
    if not rows:
        return "Nothing to credit."
    largest = sorted(rows, key=lambda row: (-row["refund_micros"], row["offer_id"]))
    lines = ["| offer_id | fraud_reason | clicks | credit |", "| --- | --- | ---: | ---: |"]
    for row in largest[:PREVIEW_ROWS]:
        lines.append(
            f"| {markdown_text(row['offer_id'])} | {row['fraud_reason']} | {row['clicks']:,} "
            f"| {money(row['refund_micros'])} |"
        )
    return "\n".join(lines)
