"""A real `dagster dev` on 127.0.0.1 over a temp lake, and headless Debian Chromium driving it.

Everything is bounded in time and stopped in `finally` (the server's whole process group)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import unittest.mock as mock
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from adrecon_assets.warehouse import Warehouse
from adrecon_assets_tests.browser.browser_lake import FIRST_DAY, write_browser_lake
from adrecon_assets_tests.dev_instance import write_dev_instance
from adrecon_assets_tests.process_group import stop_group

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
# The README's pictures: `make screenshots` writes them to docs/screenshots/ (committed),
# otherwise they go to test-artifacts/.
SCREENSHOTS = (
    REPO / "docs" / "screenshots" if os.environ.get("ADRECON_README_SCREENSHOTS") else ARTIFACTS
)
SERVER_START_SECONDS = 180
SENSORS_IDLE_SECONDS = 3600
# A full-HD screen: the lineage graph of all eleven assets fits it at a zoom where Dagster draws
# whole nodes (names untruncated, check counts); on a smaller screen it draws name-only minimal
# nodes, truncated to "place…_performance".
VIEWPORT: ViewportSize = {"width": 1920, "height": 1080}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(
        f"dagster dev not up after {SERVER_START_SECONDS}s:\n{log.read_text()[-3000:]}"
    )


def shoot(page: Page, name: str) -> Path:
    """A README picture of the page, once its charts and markdown have rendered."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1_500)  # charts and markdown render after the data arrives
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@dataclass(frozen=True)
class DagsterServer:
    url: str
    root: Path

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.root / "warehouse")

    @property
    def instance(self) -> dg.DagsterInstance:
        """The server's own instance (SQLite under its DAGSTER_HOME), read from the test."""
        home = str(self.root / "dagster_home")
        # dagster.yaml names its storage folder by $DAGSTER_HOME, read when the file is loaded.
        with mock.patch.dict(os.environ, {"DAGSTER_HOME": home}):
            return dg.DagsterInstance.from_config(home)


@pytest.fixture(scope="module")
def dagster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterServer]:
    root = tmp_path_factory.mktemp("dagster_dev")
    home = root / "dagster_home"
    write_dev_instance(home)
    write_browser_lake(root / "lake")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ADRECON_LAKE_ROOT": str(root / "lake"),
        "ADRECON_WAREHOUSE": str(root / "warehouse"),
        "ADRECON_SERVING_DB": str(root / "serving.duckdb"),
        "ADRECON_START_DATE": FIRST_DAY.isoformat(),
        "ADRECON_ENGINE": "polars",
        # The demo days are months old: keep the sensors' look-back away from them, so only
        # the UI launches runs here (the readiness sensor leaves the lake's open days alone).
        "ADRECON_LATE_DATA_LOOKBACK_DAYS": "1",
        # The sensors tick once at start-up, not every 30 s: they launch nothing here, and each
        # tick (the automation sensor's above all) costs the code server and daemon CPU.
        "ADRECON_SENSOR_INTERVAL_SECONDS": str(SENSORS_IDLE_SECONDS),
        "ADRECON_ALERT_WEBHOOK_URL": "",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "dagster_dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(REPO / ".venv/bin/dagster"), "dev", "-m", "adrecon_assets.definitions"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(url, process, log)
        yield DagsterServer(url, root)
    finally:
        stop_group(process, timeout=30)  # webserver, daemon, code server, run workers
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / "dagster_dev.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    """One context for the module's pages: its HTTP and code caches spare each page a fresh
    download and compilation of Dagster's UI bundle (~1 CPU s a page)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; on a failed test its screenshot goes to test-artifacts/<test>.png."""
    new_page = browser_context.new_page()
    try:
        yield new_page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            new_page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        new_page.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so the page fixture knows if the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
