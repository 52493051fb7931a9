"""Dagster's system tags that this project reads or writes, by their documented names, and the
project's own run tags: every run tag name stated once.

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
# Run retries (dagster.yaml `run_retries`): the daemon's decision, why the run failed, the retry
# it created, how many retries came before and the run's own limit.
WILL_RETRY_TAG: Final = "dagster/will_retry"
FAILURE_REASON_TAG: Final = "dagster/failure_reason"
AUTO_RETRY_RUN_ID_TAG: Final = "dagster/auto_retry_run_id"
RETRY_NUMBER_TAG: Final = "dagster/retry_number"
MAX_RETRIES_TAG: Final = "dagster/max_retries"
# The backfill a run belongs to, set on every run a backfill launches (dagster.yaml limits each
# backfill to one running run).
BACKFILL_TAG: Final = "dagster/backfill"

# This project's tags. Which sensor launched a run: a late-data rerun, or a readiness catch-up
# (a ranged run, whose run key cannot name each of its days).
TRIGGER_TAG: Final = "adrecon/trigger"
LATE_DATA_TRIGGER: Final = "late_data"
CATCH_UP_TRIGGER: Final = "readiness_catch_up"
# Runs of one late-data tick's reruns share this tag; dagster.yaml runs one of them at a time.
LATE_DATA_BATCH_TAG: Final = "adrecon/late-data-batch"
# The alert dedup keys a run's hooks already sent (alerts/hooks.py), so alert_sensor keeps
# those conditions open without sending them again.
ALERTED_KEYS_TAG: Final = "adrecon/alerted"
# A run relaunched after a crash: which relaunch of the work it is, and the run it replaces.
RELAUNCH_NUMBER_TAG: Final = "adrecon/relaunch_number"
RELAUNCHED_FROM_TAG: Final = "adrecon/relaunched_from"
# The failed run that a retry of the same work follows (readiness and late-data sensors).
RETRY_OF_TAG: Final = "adrecon/retry_of"
