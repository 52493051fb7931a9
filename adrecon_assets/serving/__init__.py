"""The serving layer (DATA_CONTRACT.md section 4): every serving table (`tables.py`), one store
interface (`store.py`) with two implementations, a DuckDB file (`duckdb_store.py`, the embedded
default) and PostgreSQL shared with the online layer (`postgres_store.py`, bulk rows through
`postgres_copy.py`), chosen in one place
(`resources/serving.py`), and the online layer's write (`online.py`)."""

from adrecon_assets.serving.duckdb_store import (
    DuckDBServingStore,
    read_with_retry,
    reconciled_entry,
    replace_day,
)
from adrecon_assets.serving.online import add_online_increments
from adrecon_assets.serving.store import (
    NO_RUN_ID,
    DayReplace,
    DayTotals,
    ServingStore,
    totals_of,
)
from adrecon_assets.serving.tables import (
    OFFER_PLACEMENT_STATS,
    OFFLINE_SOURCE,
    ONLINE_SOURCE,
    PLACEMENT_ANOMALIES,
    PLACEMENT_PERFORMANCE,
    RECONCILED_DAYS,
    REFUND_LEDGER,
    STATS_MEASURES,
    TABLES,
    ServingTable,
)

__all__ = [
    "NO_RUN_ID",
    "OFFER_PLACEMENT_STATS",
    "OFFLINE_SOURCE",
    "ONLINE_SOURCE",
    "PLACEMENT_ANOMALIES",
    "PLACEMENT_PERFORMANCE",
    "RECONCILED_DAYS",
    "REFUND_LEDGER",
    "STATS_MEASURES",
    "TABLES",
    "DayReplace",
    "DayTotals",
    "DuckDBServingStore",
    "ServingStore",
    "ServingTable",
    "add_online_increments",
    "read_with_retry",
    "reconciled_entry",
    "replace_day",
    "totals_of",
]
