"""`adrecon-online-replay`: replay a simulated online layer into the serving store at a rate.

    adrecon-simulate --lake /tmp/lake --serving-db /tmp/online.duckdb --start 2026-01-01 ...
    ADRECON_SERVING_URL=postgresql://... adrecon-online-replay --source /tmp/online.duckdb \\
        --rate 500 --batch-size 10 --parts 4

Each online row of the source (what the simulator's online layer committed for a day) is split
into `--parts` increments whose sums are exactly the row, interleaved over all rows, and sent
through the product's online write (contract 4.2) at a steady rate, in batches of one
transaction each. The target is ADRECON_SERVING_URL when set, else ADRECON_SERVING_DB. For
demos and load tests: run it while days are reconciled.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import islice
from pathlib import Path

from adrecon_assets.resources.serving import ServingResource
from adrecon_assets.serving import ServingStore, add_online_increments
from adrecon_assets.serving.duckdb_store import read_with_retry
from adrecon_assets.settings import load_settings

Increment = tuple[date, str, str, int, int, int]


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` integers that differ by at most one and sum to `total` exactly."""
    quotient, remainder = divmod(total, parts)
    return [quotient + (1 if index < remainder else 0) for index in range(parts)]


def increments_of(rows: Sequence[Increment], parts: int) -> Iterator[Increment]:
    """Every row as `parts` increments, round-robin over the rows (a stream touches many keys)."""
    split = [
        list(
            zip(
                split_evenly(row[3], parts),
                split_evenly(row[4], parts),
                split_evenly(row[5], parts),
                strict=True,
            )
        )
        for row in rows
    ]
    for part in range(parts):
        for row, measures in zip(rows, split, strict=True):
            yield (*row[:3], *measures[part])


@dataclass(frozen=True)
class ReplayReport:
    increments: int
    batches: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.increments / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"replayed {self.increments:,} online increments in {self.batches:,} transactions "
            f"in {self.seconds:.1f} s ({self.per_second:,.0f} increments/s)"
        )


def replay(
    store: ServingStore,
    increments: Iterable[Increment],
    rate: float,
    batch_size: int,
    stop: threading.Event | None = None,
) -> ReplayReport:
    """Send `increments` in batches at `rate` increments per second (batches start on a fixed
    schedule, so a slow batch is caught up, not lost), until exhausted or `stop` is set."""
    interval = batch_size / rate
    stream = iter(increments)
    began = time.monotonic()
    sent = batches = 0
    while stop is None or not stop.is_set():
        batch = list(islice(stream, batch_size))
        if not batch:
            break
        delay = began + batches * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent += add_online_increments(store, batch)
        batches += 1
    return ReplayReport(sent, batches, time.monotonic() - began)


def online_rows(source: Path) -> list[Increment]:
    """The source='online' rows of a simulator's serving DuckDB file, by day and key."""
    return read_with_retry(
        str(source),
        lambda connection: connection.execute(
            "SELECT date, offer_id, placement, emissions, clicks, cost_micros "
            "FROM offer_placement_stats WHERE source = 'online' ORDER BY ALL"
        ).fetchall(),
    )


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="adrecon-online-replay", description=__doc__)
    result.add_argument(
        "--source", type=Path, required=True, help="serving DuckDB file of adrecon-simulate"
    )
    result.add_argument("--rate", type=float, default=200.0, help="increments per second")
    result.add_argument("--batch-size", type=int, default=10, help="increments per transaction")
    result.add_argument("--parts", type=int, default=4, help="increments per online row")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    settings = load_settings()
    store = ServingResource(
        database=settings.serving_db, url=settings.serving_url or ""
    ).get_store()
    rows = online_rows(arguments.source)
    report = replay(
        store, increments_of(rows, arguments.parts), arguments.rate, arguments.batch_size
    )
    print(f"{report.line()} into {store.location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
