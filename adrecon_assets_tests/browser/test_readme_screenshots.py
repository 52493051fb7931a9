"""The README's "First ten minutes", taken as a newcomer sees it: `make demo` on a fresh demo lake,
the sensors' catch-up, then the pages the README walks through (its fourth picture, a backfill,
is taken by test_dagster_ui's backfill). `make screenshots` writes them to docs/screenshots/
(committed); otherwise they go to test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from adrecon_assets_tests.browser.conftest import SCREENSHOTS, shoot
from adrecon_assets_tests.browser.test_dagster_ui import dismiss_welcome
from adrecon_assets_tests.make_demo import DemoCatchUp, MakeRun, demo_days

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.timeout(1200),
]


@pytest.fixture
def demo(make_demo: DemoCatchUp) -> MakeRun:
    """The session's `make demo` (make_demo.py) with every demo day reconciled."""
    assert make_demo.missing == {}, f"the demo's catch-up never finished: {make_demo.missing}"
    return make_demo.server


def test_asset_graph(page: Page, demo: MakeRun) -> None:
    page.goto(f"{demo.url}/asset-groups")
    dismiss_welcome(page)
    expect(page.get_by_text("reconciliation").first).to_be_visible()
    # The page opens with its four groups collapsed and the group tree beside the graph; the README
    # shows each node with its checks, so: hide the tree (the graph fits at full-node zoom) and
    # expand the groups from the graph's settings menu.
    page.get_by_role("button", name="panel_show_right", exact=True).click()
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    expect(page.get_by_text("placement_performance", exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ / \d+ Passed$")).first).to_be_visible()
    page.wait_for_timeout(3_000)  # the graph lays itself out
    shoot(page, "1_asset_graph")


def test_a_days_drift_table(page: Page, demo: MakeRun) -> None:
    day = demo_days()[-1].isoformat()
    page.goto(f"{demo.url}/assets/reconciled_statistics?view=partitions&partition={day}")
    dismiss_welcome(page)
    drift = page.get_by_text("online_drift").first
    expect(drift).to_be_visible()
    drift.evaluate("row => row.scrollIntoView({block: 'start'})")
    shoot(page, "2_drift_table")


def test_anomaly_chart(page: Page, demo: MakeRun) -> None:
    day = demo_days()[-1].isoformat()
    page.goto(f"{demo.url}/assets/anomaly_metrics?view=partitions&partition={day}")
    dismiss_welcome(page)
    expect(page.get_by_text("anomaly_chart").first).to_be_visible()
    page.get_by_text("[Show Markdown]").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    shoot(page, "3_anomaly_chart")


def test_screenshots_are_written() -> None:
    names = sorted(path.name for path in SCREENSHOTS.glob("[1-3]_*.png"))
    assert names == [
        "1_asset_graph.png",
        "2_drift_table.png",
        "3_anomaly_chart.png",
    ]
    assert all(Path(SCREENSHOTS / name).stat().st_size > 10_000 for name in names)
