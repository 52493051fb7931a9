"""Charts: which placements get a panel, and that the PNGs are real and small."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa

from adrecon_assets.charts import anomaly_chart, fraud_mix_chart, markdown_image, panel_placements

DAY = date(2026, 1, 10)


def history(placements: dict[str, list[int]], anomalous: set[str]) -> pa.Table:
    """Ten days of clicks per placement; the last day is DAY and only it may be anomalous."""
    rows = []
    for placement, clicks in placements.items():
        for offset, count in enumerate(clicks):
            day = DAY - timedelta(days=len(clicks) - 1 - offset)
            rows.append(
                {
                    "date": day,
                    "placement": placement,
                    "clicks": count,
                    "baseline": None if offset == 0 else 100.0,
                    "is_anomaly": day == DAY and placement in anomalous,
                }
            )
    return pa.Table.from_pylist(rows)


def test_anomalous_placements_get_the_first_panels_then_the_busiest() -> None:
    table = history(
        {f"p{n}": [100] * 9 + [100 + n] for n in range(7)} | {"dropped": [100] * 9 + [3]},
        anomalous={"dropped"},
    )
    # 8 placements, 6 panels: the anomaly, then p6..p2 by clicks of DAY (p1, p0 left out).
    assert panel_placements(table, DAY) == ["dropped", "p6", "p5", "p4", "p3", "p2"]


def test_anomaly_chart_is_a_small_png() -> None:
    table = history({"top": [100] * 9 + [3], "side": [10] * 10}, anomalous={"top"})
    png = anomaly_chart(table, DAY)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert 2_000 < len(png) < 40_000


def test_fraud_mix_chart_is_a_small_png() -> None:
    mix = pa.Table.from_pylist(
        [
            {"date": DAY, "fraud_reason": "valid", "clicks": 90},
            {"date": DAY, "fraud_reason": "too_fast", "clicks": 10},
            {"date": DAY + timedelta(days=1), "fraud_reason": "click_flood", "clicks": 5},
        ]
    )
    png = fraud_mix_chart(mix)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 30_000


def test_markdown_image_embeds_the_png_as_a_data_uri() -> None:
    # base64 of the three bytes "PNG" is "UE5H".
    assert markdown_image(b"PNG", "anomaly view") == "![anomaly view](data:image/png;base64,UE5H)"


def test_sixty_placements_draw_six_panels_in_a_png_of_a_few_kb() -> None:
    table = history({f"p{n:02d}": [100 + n] * 9 + [1 + n] for n in range(60)}, anomalous={"p00"})
    assert len(panel_placements(table, DAY)) == 6
    png = anomaly_chart(table, DAY)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Palette PNG: matplotlib's RGBA PNG of these six panels was ~45 KB.
    assert len(png) < 20_000
