"""Trailing days of warehouse outputs, and the charts drawn from them for the UI."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from adrecon_assets.charts import anomaly_chart, fraud_mix_chart, markdown_image
from adrecon_assets.partitions import trailing_days
from adrecon_assets.reports.queries import anomaly_history, fraud_mix
from adrecon_assets.warehouse import Dataset, Warehouse

# Two weeks: a weekly pattern is visible twice and the PNG stays a few KB.
CHART_DAYS = 14


def written_folders(warehouse: Warehouse, dataset: Dataset, day: date, days: int) -> list[Path]:
    """The folders of `dataset` written for `day` and up to `days - 1` days before, oldest first
    (days never materialized are skipped, not treated as empty)."""
    window = [*trailing_days(day, days - 1), day]
    return [warehouse.folder(dataset, d) for d in window if warehouse.exists(dataset, d)]


def anomaly_chart_markdown(warehouse: Warehouse, day: date) -> str:
    folders = written_folders(warehouse, Dataset.ANOMALY_METRICS, day, CHART_DAYS)
    if not folders:
        return "No anomaly_metrics written yet."
    return markdown_image(anomaly_chart(anomaly_history(folders), day), "anomaly view")


def fraud_mix_chart_markdown(warehouse: Warehouse, day: date) -> str:
    folders = written_folders(warehouse, Dataset.FRAUD_FLAGS, day, CHART_DAYS)
    if not folders:
        return "No fraud_flags written yet."
    return markdown_image(fraud_mix_chart(fraud_mix(folders)), "fraud mix")
