"""Trailing days of warehouse outputs, and the charts drawn from them for the UI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from adrecon_assets.charts import anomaly_chart, fraud_mix_chart, markdown_image
from adrecon_assets.partitions import trailing_days
from adrecon_assets.reports.queries import anomaly_history, fraud_mix
from adrecon_assets.warehouse import Dataset, Warehouse, reading

# Two weeks: a weekly pattern is visible twice and the PNG stays a few KB.
CHART_DAYS = 14


def written_days(warehouse: Warehouse, dataset: Dataset, day: date, days: int) -> list[date]:
    """`day` and up to `days - 1` days before for which `dataset` was written, oldest first
    (days never materialized are skipped, not treated as empty)."""
    window = [*trailing_days(day, days - 1), day]
    return [d for d in window if warehouse.exists(dataset, d)]


def written_folders(warehouse: Warehouse, dataset: Dataset, day: date, days: int) -> list[Path]:
    """The folders (links) of `written_days`; read them through `warehouse.reading`."""
    return [warehouse.folder(dataset, d) for d in written_days(warehouse, dataset, day, days)]


def chart_day(day: date, run_days: Sequence[date]) -> date:
    """The day of the run whose materialization carries the chart showing `day`.

    A chart shows CHART_DAYS days and costs about a second to draw, so a ranged run draws one
    per CHART_DAYS days rather than one per day: the newest day's, then every CHART_DAYS days
    back, and each day of the run is on exactly one of them. A one-day run draws its own."""
    newest = max(run_days, default=day)
    return newest - timedelta(days=CHART_DAYS * ((newest - day).days // CHART_DAYS))


def drawn_with(chart: str, drawn_on: date) -> str:
    return (
        f"Drawn once for the {CHART_DAYS} days up to {drawn_on}: see the {chart} of {drawn_on} "
        f"(a ranged run draws one chart per {CHART_DAYS} days)."
    )


def anomaly_chart_markdown(warehouse: Warehouse, day: date, run_days: Sequence[date] = ()) -> str:
    drawn_on = chart_day(day, run_days)
    if drawn_on != day:
        return drawn_with("anomaly_chart", drawn_on)
    folders = written_folders(warehouse, Dataset.ANOMALY_METRICS, day, CHART_DAYS)
    if not folders:
        return "No anomaly_metrics written yet."
    with reading(*folders) as versions:
        history = anomaly_history(versions)
    return markdown_image(anomaly_chart(history, day), "anomaly view")


def fraud_mix_chart_markdown(warehouse: Warehouse, day: date, run_days: Sequence[date] = ()) -> str:
    drawn_on = chart_day(day, run_days)
    if drawn_on != day:
        return drawn_with("fraud_mix", drawn_on)
    days = written_days(warehouse, Dataset.FRAUD_FLAGS, day, CHART_DAYS)
    if not days:
        return "No fraud_flags written yet."
    with reading(*(warehouse.folder(Dataset.FRAUD_FLAGS, d) for d in days)) as versions:
        mix = fraud_mix(list(zip(days, versions, strict=True)))
    return markdown_image(fraud_mix_chart(mix), "fraud mix")
