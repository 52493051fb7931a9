"""The online layer's write (contract 4.2), shipped with the product so that the online
aggregator and the simulator's online layer write the serving store the one correct way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa

from adrecon_assets.serving.store import ONLINE_COLUMNS, ServingStore

INCREMENT_SCHEMA = pa.schema(
    [("date", pa.date32()), ("offer_id", pa.string()), ("placement", pa.string())]
    + [(name, pa.int64()) for name in ONLINE_COLUMNS[3:]]
)


def add_online_increments(
    store: ServingStore, increments: pa.Table | Sequence[tuple[date, str, str, int, int, int]]
) -> int:
    """Add a batch of online increments `(date, offer_id, placement, emissions, clicks,
    cost_micros)` to offer_placement_stats in one transaction; returns the increments given.

    An increment to a reconciled day is dropped (its events reach the lake, and the late-data
    rerun counts them); one to any other day adds to that day's online row, never lost.
    """
    if not isinstance(increments, pa.Table):
        increments = pa.Table.from_pylist(
            [dict(zip(INCREMENT_SCHEMA.names, row, strict=True)) for row in increments],
            schema=INCREMENT_SCHEMA,
        )
    if increments.num_rows == 0:
        return 0
    return store.add_online(increments)
