"""The operator's paths through the Dagster UI, in headless Chromium against `dagster dev`.

Tests run in file order and build on each other: the graph, one partition by hand, a 3-day
backfill of the day job, then the check that backfill left failing.
"""

from __future__ import annotations

import contextlib
import re
import time
from datetime import date
from typing import Any

import dagster as dg
import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from adrecon_assets.assets import CONTRACT_ASSET_NAMES
from adrecon_assets.jobs import RECONCILE_DAYS
from adrecon_assets.warehouse import Dataset
from adrecon_assets_tests.browser.conftest import ARTIFACTS, DagsterServer, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow(seconds=90), pytest.mark.serial]
expect.set_options(timeout=30_000)

SIX_ASSETS = CONTRACT_ASSET_NAMES
RUN_SECONDS = 240
BACKFILL_SECONDS = 420
# reconciled_statistics and its neighbours to any depth: the whole graph, from the two external
# lake assets to the reports (eleven assets in four groups).
ALL_ASSETS_VIEW = "/assets/reconciled_statistics?view=lineage&lineageScope=neighbors&lineageDepth=5"
UPSTREAM_VIEW = "/assets/reconciled_statistics?view=lineage&lineageScope=upstream&lineageDepth=5"
# The day job's page: its "Materialize all…" launches a job backfill of exactly the chosen days.
# The launch button names how many assets it materializes: "Materialize all (6)…".
MATERIALIZE_ALL = re.compile(r"Materialize all( \(\d+\))?…")
# A backfill's status, by the names Dagster's GraphQL API and `instance.get_backfills()` use.
UNFINISHED_BACKFILL = {"REQUESTED", "CANCELING"}
BACKFILL_SUCCESS = re.compile(r"^(Succeeded|Success|Completed)$")
DAY_JOB_VIEW = f"/locations/adrecon_assets.definitions/jobs/{RECONCILE_DAYS}"
# A finished run's status in the run list (its row holds its id and one of these). No `\b`:
# Playwright matches against text content, where a cell's text abuts the next one's.
RUN_STATUS = re.compile("Success|Failure|Canceled")


def dismiss_welcome(page: Page) -> None:
    """First visits may show a community dialog over the page."""
    with contextlib.suppress(PlaywrightTimeoutError):
        page.get_by_role("button", name="Skip").click(timeout=3_000)


def open_launch_dialog(
    page: Page, url: str, partition_selection: str, loaded: str = "raw_emissions"
) -> None:
    """Open "Materialize all…" once the graph shows `loaded` (an asset or group name), and
    select partitions by typing them."""
    page.goto(url)
    page.get_by_text(loaded, exact=True).first.wait_for()
    dismiss_welcome(page)
    page.get_by_role("button", name=MATERIALIZE_ALL).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Show all partitions").click()
    selection = dialog.locator("input[type=text]").first
    selection.fill(partition_selection)
    selection.press("Enter")


def finished_run(instance: dg.DagsterInstance, known: set[str], seconds: int) -> dg.DagsterRun:
    """The one run not among the `known` run ids, once it has finished."""
    deadline = time.monotonic() + seconds
    while True:
        new = [run for run in instance.get_runs() if run.run_id not in known]
        if len(new) == 1 and new[0].is_finished:
            return new[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no new run finished after {seconds}s: {new}")
        time.sleep(1)


def finished_backfill(instance: dg.DagsterInstance, seconds: int) -> Any:
    """The newest backfill once the daemon has finished it (its runs included)."""
    deadline = time.monotonic() + seconds
    while True:
        backfills = instance.get_backfills()
        if backfills and backfills[0].status.value not in UNFINISHED_BACKFILL:
            return backfills[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"backfill not finished after {seconds}s: {backfills[:1]}")
        time.sleep(1)


def leave_ui(page: Page) -> None:
    """While the daemon works, the page polls nothing: the test waits on the instance and then
    opens the page that shows the outcome (each poll costs the webserver and the renderer)."""
    page.goto("about:blank")


def test_graph_shows_the_six_assets_and_their_checks(
    page: Page, dagster_server: DagsterServer
) -> None:
    page.goto(dagster_server.url + ALL_ASSETS_VIEW)
    for group in ("lake", "reconciliation", "monitoring", "reporting"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    for asset in (
        "lake_clicks",
        "lake_emissions",
        *SIX_ASSETS,
        "emission_counts",
        "placement_performance",
        "refund_ledger",
    ):
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
    # Every node with checks shows their count, 0 of N passed before anything ran: the six
    # assets and the two reports (the external lake assets and emission_counts have none).
    expect(page.get_by_text(re.compile(r"^0 / \d+ Passed$"))).to_have_count(8)
    page.goto(dagster_server.url + "/assets/reconciled_statistics?view=checks")
    for check in ("totals_balance", "online_layer_drift"):
        expect(page.get_by_text(check, exact=True).first).to_be_visible()


def test_materialize_one_partition_of_reconciled_statistics(
    page: Page, dagster_server: DagsterServer
) -> None:
    open_launch_dialog(page, dagster_server.url + UPSTREAM_VIEW, "2026-01-01")
    # Upstream of reconciled_statistics: itself, raw_clicks, raw_emissions, joined_clicks,
    # emission_counts and fraud_flags; the external lake assets are observed, not materialized.
    expect(page.get_by_role("dialog").get_by_text("materialize 6 assets")).to_be_visible()
    with dagster_server.instance as instance:
        known = {run.run_id for run in instance.get_runs()}
        page.get_by_role("dialog").get_by_role("button", name="Launch 1 run").click()
        expect(
            page.get_by_text(re.compile("Launched run|run launched", re.I)).first
        ).to_be_visible()
        leave_ui(page)
        run = finished_run(instance, known, RUN_SECONDS)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == "2026-01-01"
    # The run list shows that run (its id's first 8 characters link to it) as succeeded.
    page.goto(dagster_server.url + "/runs")
    run_link = page.get_by_role("link", name=run.run_id[:8])
    row = page.locator("div").filter(has=run_link).filter(has_text=RUN_STATUS).last
    expect(row).to_contain_text("Success")
    page.goto(dagster_server.url + "/assets/reconciled_statistics?view=partitions")
    expect(page.get_by_text("2026-01-01").first).to_be_visible()


def test_backfill_three_days_from_the_ui(page: Page, dagster_server: DagsterServer) -> None:
    open_launch_dialog(
        page, dagster_server.url + DAY_JOB_VIEW, "[2026-01-02...2026-01-04]", loaded="lake"
    )
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("3 partitions")).to_be_visible()
    dialog.get_by_role("button", name="Launch backfill").click()
    expect(page.get_by_text("Created backfill").first).to_be_visible()
    leave_ui(page)
    with dagster_server.instance as instance:
        backfill = finished_backfill(instance, BACKFILL_SECONDS)
        assert backfill.status.value == "COMPLETED_SUCCESS"
        page.goto(f"{dagster_server.url}/runs/b/{backfill.backfill_id}")
        expect(page.get_by_text(BACKFILL_SUCCESS).first).to_be_visible()
        expect(page.get_by_text("100% completed")).to_be_visible()
        # The README's fourth picture (`make screenshots`): this one backfill serves both.
        assert shoot(page, "4_backfill").stat().st_size > 10_000
        # A job backfill: exactly the chosen days, in one ranged run (the assets'
        # BackfillPolicy.single_run()) whose steps compute the days oldest first, so each day
        # joined the emissions its previous day had just staged.
        runs = instance.get_run_records(
            dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id})
        )
        assert [
            (
                record.dagster_run.tags["dagster/asset_partition_range_start"],
                record.dagster_run.tags["dagster/asset_partition_range_end"],
                record.dagster_run.status,
            )
            for record in runs
        ] == [("2026-01-02", "2026-01-04", dg.DagsterRunStatus.SUCCESS)]
    for day in (date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)):
        assert dagster_server.warehouse.exists(Dataset.RECONCILED_STATISTICS, day)
    assert not dagster_server.warehouse.exists(Dataset.RECONCILED_STATISTICS, date(2026, 1, 5))


def test_failed_check_is_visible_on_the_asset(page: Page, dagster_server: DagsterServer) -> None:
    # The footer placement is never clicked, so the backfill's placement report warns.
    page.goto(dagster_server.url + "/assets/placement_performance?view=checks")
    check = page.get_by_text("no_buyerless_placements", exact=True).first
    expect(page.get_by_text("Checks (2)")).to_be_visible()
    check.click()
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    expect(page.get_by_text("placements that don't attract buyers: footer").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "failed_check_on_placement_performance.png"))
