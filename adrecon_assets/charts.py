"""Small PNG charts for the UI, embedded in Markdown metadata as base64 data URIs.

matplotlib's Agg backend draws without a display; figures are small (a few KB each) because
they are stored in the event log with every materialization.
"""

from __future__ import annotations

import base64
import io
from datetime import date

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from matplotlib.dates import DateFormatter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from adrecon_assets.rules import ANOMALY_FALL_RATIO, ANOMALY_RISE_RATIO, FraudReason  # noqa: E402

MAX_PANELS = 6
DPI = 64
REASON_COLORS = {
    FraudReason.NO_EMISSION.value: "#9e9e9e",
    FraudReason.TOO_FAST.value: "#ff9800",
    FraudReason.DENYLISTED_IP.value: "#d32f2f",
    FraudReason.CLICK_FLOOD.value: "#7b1fa2",
}
# Log axes cannot show 0; a day without clicks is drawn at this floor.
LOG_FLOOR = 0.5


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown that the Dagster UI renders as an inline image."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def panel_placements(history: pa.Table, day: date) -> list[str]:
    """The placements worth a panel: the day's anomalies first, then the busiest."""
    today = history.filter(pc.equal(history["date"], pa.scalar(day)))
    ranked = sorted(
        zip(
            today["placement"].to_pylist(),
            today["is_anomaly"].to_pylist(),
            today["clicks"].to_pylist(),
            strict=True,
        ),
        key=lambda row: (not row[1], -row[2], row[0]),
    )
    return [placement for placement, _, _ in ranked[:MAX_PANELS]]


def anomaly_chart(history: pa.Table, day: date) -> bytes:
    """Clicks per day of each panel placement on a log axis, against its trailing baseline and
    the band the anomaly rule tolerates (a tenth to tenfold); anomalous days marked in red.

    `history` has date, placement, clicks, baseline, is_anomaly for the days to draw."""
    placements = panel_placements(history, day)
    columns = min(2, max(1, len(placements)))
    rows = max(1, -(-len(placements) // columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 1.8 * rows), squeeze=False, sharex=True
    )
    for axis in axes.flat[len(placements) :]:
        axis.set_visible(False)
    by_placement = history.to_pylist()
    for axis, placement in zip(axes.flat, placements, strict=False):
        points = sorted(
            (row for row in by_placement if row["placement"] == placement), key=lambda r: r["date"]
        )
        days = [row["date"] for row in points]
        clicks = [max(row["clicks"], LOG_FLOOR) for row in points]
        banded = [(row["date"], row["baseline"]) for row in points if row["baseline"]]
        if banded:
            band_days, baselines = zip(*banded, strict=True)
            axis.fill_between(
                band_days,
                [ANOMALY_FALL_RATIO * value for value in baselines],
                [ANOMALY_RISE_RATIO * value for value in baselines],
                color="#bbdefb",
                label="normal band",
            )
            axis.plot(band_days, baselines, "--", color="#1565c0", lw=1, label="baseline")
        axis.plot(days, clicks, "-o", color="#212121", ms=2.5, lw=1, label="valid clicks")
        anomalies = [
            (row["date"], max(row["clicks"], LOG_FLOOR)) for row in points if row["is_anomaly"]
        ]
        if anomalies:
            axis.plot(
                *zip(*anomalies, strict=True), "x", color="#d32f2f", ms=8, mew=2, label="anomaly"
            )
        axis.set_yscale("log")
        axis.set_title(placement, fontsize=8)
        axis.tick_params(labelsize=6)
        axis.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    axes.flat[0].legend(fontsize=5, loc="lower left")
    figure.suptitle(f"Valid clicks per placement up to {day} (log scale)", fontsize=9)
    figure.tight_layout()
    return png_bytes(figure)


def fraud_mix_chart(mix: pa.Table) -> bytes:
    """Share of each fraud reason in the day's deduplicated clicks, stacked per day.

    `mix` has date, fraud_reason (`valid` for none), clicks."""
    rows = mix.to_pylist()
    days = sorted({row["date"] for row in rows})
    totals = {day: sum(row["clicks"] for row in rows if row["date"] == day) for day in days}
    figure, axis = plt.subplots(figsize=(5.2, 2.4))
    bottom = [0.0] * len(days)
    labels = [day.strftime("%m-%d") for day in days]
    for reason, color in REASON_COLORS.items():
        counts = {row["date"]: row["clicks"] for row in rows if row["fraud_reason"] == reason}
        shares = [100 * counts.get(day, 0) / totals[day] if totals[day] else 0 for day in days]
        axis.bar(labels, shares, bottom=bottom, color=color, label=reason, width=0.8)
        bottom = [below + share for below, share in zip(bottom, shares, strict=True)]
    axis.set_ylabel("% of clicks", fontsize=7)
    axis.tick_params(labelsize=6)
    axis.tick_params(axis="x", rotation=45)
    axis.legend(fontsize=6, ncols=2)
    axis.set_title("Fraud mix by day", fontsize=9)
    return png_bytes(figure)
