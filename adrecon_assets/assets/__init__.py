"""The daily assets, by stage: lake -> reconciliation -> monitoring -> reporting."""

import warnings

import dagster as dg

# The assets use beta/preview parameters on purpose (backfill_policy, partitioned check specs,
# allow_nonexistent_upstream_partitions); operators need not see that warning on every import.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
