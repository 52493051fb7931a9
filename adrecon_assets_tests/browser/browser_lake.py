"""A four-day lake for the browser tests: a few clicks a day, one too_fast click, and a
`footer` placement that is shown every day but never clicked (its report check fails).

The days are left open (no `_SUCCESS`), so the readiness sensor's catch-up never reconciles
them: only the operator's clicks in the UI launch runs, and the graph shows nothing run yet."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from adrecon_assets.rules import Topic
from adrecon_assets_tests.lakes import click, emission, write_topic

FIRST_DAY = date(2026, 1, 1)
DAYS = 4


def write_browser_lake(lake_root: Path) -> list[date]:
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS)]
    for day in days:
        d = day.isoformat()
        write_topic(
            lake_root,
            Topic.EMISSIONS,
            day,
            [
                emission(f"e{d}-1", "o1", "top", 100_000, f"{d}T10:00:00"),
                emission(f"e{d}-2", "o2", "side", 50_000, f"{d}T10:00:00"),
                emission(f"e{d}-3", "o2", "footer", 30_000, f"{d}T10:00:00"),
            ],
            closed=False,
        )
        write_topic(
            lake_root,
            Topic.CLICKS,
            day,
            [
                click(f"c{d}-1", f"e{d}-1", "o1", f"{d}T10:00:05"),
                click(f"c{d}-2", f"e{d}-2", "o2", f"{d}T10:00:00.200000", user_id="u2"),
                click(f"c{d}-3", f"e{d}-2", "o2", f"{d}T10:05:00", user_id="u3"),
            ],
            closed=False,
        )
    return days
