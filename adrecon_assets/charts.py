"""Small PNG charts for the UI, embedded in Markdown metadata as base64 data URIs.

Figures are small (a few KB each) because they are stored in the event log with every
materialization, and cheap to draw: at most MAX_PANELS panels, fixed margins (no tight-layout
passes, which redraw the figure), no minor ticks. matplotlib is imported only when a chart is
drawn, so loading the definitions (CLI, webserver, daemon) does not pay for it.
"""

from __future__ import annotations

import base64
import io
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from adrecon_assets.metadata.display import chart_text
from adrecon_assets.rules import ANOMALY_FALL_RATIO, ANOMALY_RISE_RATIO, FraudReason

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_PANELS = 6
DPI = 64
PNG_COLORS = 64
PANEL_INCHES = (3.0, 1.45)
# Fixed margins in inches around the panel grid (room for the title, tick labels, panel titles).
TOP_INCHES, BOTTOM_INCHES, LEFT_INCHES, RIGHT_INCHES = 0.4, 0.25, 0.4, 0.1
REASON_COLORS = {
    FraudReason.NO_EMISSION.value: "#9e9e9e",
    FraudReason.TOO_FAST.value: "#ff9800",
    FraudReason.DENYLISTED_IP.value: "#d32f2f",
    FraudReason.CLICK_FLOOD.value: "#7b1fa2",
}
# Log axes cannot show 0; a day without clicks is drawn at this floor.
LOG_FLOOR = 0.5
# A panel title fits about this many characters.
CHART_TITLE_CHARS = 40


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas directly: no pyplot, no display, no global figure list."""
    # Imported here, not at module level: ~0.4-1 s that only a run drawing a chart should pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as a palette PNG: these flat charts lose nothing visible in PNG_COLORS colours
    and shrink ~4x against matplotlib's RGBA PNG (every byte lands in the event log)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = figure.canvas
    assert isinstance(canvas, FigureCanvasAgg), "figures come from new_figure"
    rgba, size = canvas.print_to_buffer()
    image = Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=PNG_COLORS).save(buffer, format="png", optimize=True)
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
    # Imported here with the figure (see new_figure).
    from matplotlib.dates import DateFormatter
    from matplotlib.ticker import NullLocator

    placements = panel_placements(history, day)
    columns = min(2, max(1, len(placements)))
    rows = max(1, -(-len(placements) // columns))
    width = LEFT_INCHES + RIGHT_INCHES + PANEL_INCHES[0] * columns
    height = TOP_INCHES + BOTTOM_INCHES + PANEL_INCHES[1] * rows
    figure = new_figure(width, height)
    figure.subplots_adjust(
        left=LEFT_INCHES / width,
        right=1 - RIGHT_INCHES / width,
        bottom=BOTTOM_INCHES / height,
        top=1 - TOP_INCHES / height,
        wspace=0.2,
        hspace=0.35,
    )
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True)
    for axis in axes.flat[len(placements) :]:
        axis.set_visible(False)
    # Only the panels' rows become Python objects (history may hold every placement).
    drawn = history.filter(pc.is_in(history["placement"], pa.array(placements, pa.string())))
    by_placement: dict[str, list[dict]] = {placement: [] for placement in placements}
    for row in drawn.sort_by("date").to_pylist():
        by_placement[row["placement"]].append(row)
    for axis, placement in zip(axes.flat, placements, strict=False):
        points = by_placement[placement]
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
        # Minor log ticks are unlabelled at this size and cost most of the drawing time.
        axis.yaxis.set_minor_locator(NullLocator())
        axis.set_title(chart_text(placement, CHART_TITLE_CHARS), fontsize=8, pad=2)
        axis.tick_params(labelsize=6, pad=1)
        axis.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    axes.flat[0].legend(fontsize=5, loc="lower left")
    figure.suptitle(f"Valid clicks per placement up to {day} (log scale)", fontsize=9)
    return png_bytes(figure)


def fraud_mix_chart(mix: pa.Table) -> bytes:
    """Share of each fraud reason in the day's deduplicated clicks, stacked per day.

    `mix` has date, fraud_reason (`valid` for none), clicks."""
    rows = mix.to_pylist()
    days = sorted({row["date"] for row in rows})
    totals = {day: sum(row["clicks"] for row in rows if row["date"] == day) for day in days}
    figure = new_figure(5.2, 2.4)
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.2, top=0.88)
    axis = figure.subplots()
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
