"""What `make run` prints once the UI answers: where it is, what happens next, where to click.

python -m adrecon_simulate.demo_banner --url http://127.0.0.1:3000 --lake data/lake
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import requests

from adrecon_assets.lake import LocalLake
from adrecon_simulate.extend import lake_days

WAIT_SECONDS = 300


def ui_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/server_info", timeout=2).ok
    except requests.RequestException:
        return False


def banner(url: str, lake: str) -> str:
    days = lake_days(LocalLake(lake))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    covered = f"{days[0]} .. {days[-1]}" if days else "no days"
    return "\n".join(
        [
            "",
            f"==> adrecon is up: {url}",
            f"    demo lake {lake}: {len(days)} days, {covered} (yesterday is {yesterday})",
            "    next, with nobody pressing buttons:",
            "      - lake_readiness_sensor (every 30 s) reconciles the closed days not reconciled"
            " yet, consecutive days in one catch-up run: watch Runs",
            "      - late_data_sensor reruns a day whose lake files change; the SLA sensor checks"
            " yesterday after 07:00 UTC",
            "    click first: Lineage (left bar) for the asset graph, then reconciled_statistics >"
            " Partitions > a day for what the offline run corrected (online_drift),"
            " anomaly_metrics > anomaly_chart, and Jobs > reconcile_days to backfill days",
            "    stop with Ctrl-C",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--lake", required=True)
    arguments = parser.parse_args()
    deadline = time.monotonic() + WAIT_SECONDS
    while not ui_answers(arguments.url):
        if time.monotonic() > deadline:
            return 1
        time.sleep(1)
    print(banner(arguments.url, arguments.lake), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
