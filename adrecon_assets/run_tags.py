"""Dagster's system run tags that this project reads, by their documented names.

Dagster sets these on runs (see "Run tags" in its docs); the constants behind them live in a
private module, so they are stated here once instead of imported from `dagster._core`.
"""

from typing import Final

PARTITION_TAG: Final = "dagster/partition"
RUN_KEY_TAG: Final = "dagster/run_key"
