"""Hostile lake strings (offer ids, placements, user ids holding Markdown, HTML, control
characters or 5,000 characters) reconcile exactly and reach the UI's metadata as text."""

from __future__ import annotations

import re
from typing import Any

import dagster as dg
import pyarrow as pa

from adrecon_assets import serving
from adrecon_assets.charts import anomaly_chart
from adrecon_assets.definitions import ASSETS
from adrecon_assets.metadata.display import chart_text, display_text, markdown_text
from adrecon_assets.partitions import first_day
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows

DAY = first_day()
LONG = "x" * 5_000
OFFERS = [
    "<script>alert('offer')</script>",
    "[click me](http://evil.example/)",
    "**bold** | `code` # _under_ ~~gone~~",
    "line\nbreak\r\x00\x1b[31mred\x07\x7f\u202eevil",
    LONG,
]
PLACEMENTS = ["<img src=x onerror=alert(1)>", "$\\frac{1}{0}$ | top"]
USERS = ["<u>user</u>\n|", "![img](http://evil.example/x.png)"]


def test_markdown_text_escapes_markdown_html_and_control_characters() -> None:
    assert markdown_text("a|b*c") == "a\\|b\\*c"
    assert markdown_text("<b>&</b>") == "&lt;b&gt;&amp;&lt;\\/b&gt;"
    assert markdown_text("[x](y)") == "\\[x\\]\\(y\\)"
    assert display_text("a\nb\x1b\u202e") == "a\\x0ab\\x1b\\u202e"
    assert markdown_text("a\nb") == "a\\\\x0ab"
    assert display_text("o" * 100, limit=5) == "ooooo… (100 characters)"
    assert chart_text("$a$") == "\\$a\\$"


def write_hostile_lake(paths: Paths) -> None:
    """Each offer shown on each placement; per offer one valid click 5 s after, one too_fast
    click (refunded) and, by the first user, a flood of 4 clicks within 10 minutes."""
    emissions, clicks = [], []
    for o, offer in enumerate(OFFERS):
        for p, placement in enumerate(PLACEMENTS):
            emission_id = f"e{o}{p}"
            emissions.append(
                emission(emission_id, offer, placement, 1000 + 10 * o + p, f"{DAY}T10:00:00")
            )
            clicks.append(click(f"c{o}{p}-ok", emission_id, offer, f"{DAY}T10:00:05", USERS[1]))
            fast_user = f"{USERS[1]}-{p}"  # not the valid clicks' user: no flood there
            clicks.append(
                click(f"c{o}{p}-fast", emission_id, offer, f"{DAY}T10:00:00.5", fast_user)
            )
        for n in range(4):
            clicks.append(click(f"c{o}-flood{n}", f"e{o}0", offer, f"{DAY}T11:0{n}:00", USERS[0]))
    write_topic(paths.lake, Topic.EMISSIONS, DAY, emissions)
    write_topic(paths.lake, Topic.CLICKS, DAY, clicks)
    write_denylist(paths.lake, [])


def markdown_of(result: dg.ExecuteInJobResult, asset: str, key: str) -> str:
    (materialization,) = result.asset_materializations_for_node(asset)
    value: Any = materialization.metadata[key]
    return str(value.value)


def assert_rendered_as_text(markdown: str, values: list[str]) -> None:
    """Each value appears escaped, no raw HTML tag or control character is left, and every
    table row has as many cell borders as its header."""
    for value in values:
        assert markdown_text(value) in markdown, value
    assert "<script" not in markdown and "<img" not in markdown and "<u>" not in markdown
    assert "](http" not in markdown
    assert not [c for c in markdown if c != "\n" and (ord(c) < 32 or 0x7F <= ord(c) < 0xA0)]
    assert "\u202e" not in markdown
    assert LONG not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    borders = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
    assert len(borders) == 1, borders


def test_hostile_strings_reconcile_exactly_and_show_as_text(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    write_hostile_lake(paths)
    store = serving.DuckDBServingStore(paths.serving_db)
    # The online layer's earlier rows for every hostile key, so the corrections table lists them.
    serving.add_online_increments(
        store, [(DAY, offer, placement, 1, 1, 1) for offer in OFFERS for placement in PLACEMENTS]
    )
    result = dg.materialize(ASSETS, partition_key=DAY.isoformat(), resources=polars_resources)
    assert result.success

    expected = expected_rows(paths, DAY)
    assert serving_rows(store, DAY) == expected
    assert {row[1] for row in expected} == set(OFFERS)
    assert {row[2] for row in expected} == set(PLACEMENTS)
    # Hand-computed: per offer and placement one valid click; the too_fast click and, on the
    # first placement, the 4th click of the flood are refunded (3 flood clicks are valid).
    per_key = {(row[1], row[2]): row[4:8] for row in expected}
    assert per_key[(OFFERS[0], PLACEMENTS[0])] == (4, 4 * 1000, 2, 2 * 1000)
    assert per_key[(OFFERS[4], PLACEMENTS[1])] == (1, 1041, 1, 1041)

    corrections = markdown_of(result, "reconciled_statistics", "largest_corrections")
    assert_rendered_as_text(corrections, OFFERS + PLACEMENTS)
    preview = markdown_of(result, "placement_performance", "preview")
    assert_rendered_as_text(preview, PLACEMENTS)
    credits = markdown_of(result, "refund_ledger", "largest_credits")
    assert_rendered_as_text(credits, OFFERS)
    # The anomaly chart titles each panel with its placement (a `$` pair would be mathtext).
    names = ["date", "placement", "clicks", "baseline", "is_anomaly"]
    history = store.fetch(f"SELECT {', '.join(names)} FROM placement_anomalies")
    assert {row[1] for row in history} == set(PLACEMENTS)
    png = anomaly_chart(
        pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in history]), DAY
    )
    assert png.startswith(b"\x89PNG")
