"""Dagster's system tags that this project reads or writes, by their documented names.

Dagster sets the run tags on runs (see "Run tags" in its docs) and reads an observation's data
version from its tag; the constants behind them live in private modules, so they are stated
here once instead of imported from `dagster._core`.
"""

from typing import Final

PARTITION_TAG: Final = "dagster/partition"
RUN_KEY_TAG: Final = "dagster/run_key"
DATA_VERSION_TAG: Final = "dagster/data_version"
# A ranged run (a single-run backfill, or a catch-up the readiness sensor launches): the first
# and last partition key of the run.
RANGE_START_TAG: Final = "dagster/asset_partition_range_start"
RANGE_END_TAG: Final = "dagster/asset_partition_range_end"
