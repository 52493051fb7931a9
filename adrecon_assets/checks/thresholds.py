"""Bounds of the data-quality checks, as one resource so each deployment can tune them.

Defaults suit the production traffic mix; override per deployment in `definitions.py`
(or in the launchpad's resource config) rather than in the check code.
"""

from __future__ import annotations

import dagster as dg


class CheckThresholds(dg.ConfigurableResource):
    """Where a WARN check starts failing; ERROR checks (contract violations) have no knob."""

    max_duplicate_click_rate: float = 0.05
    max_orphan_click_rate: float = 0.02
    min_fraud_rate: float = 0.0005
    max_fraud_rate: float = 0.20
    max_online_click_drift: float = 0.05
    # Data-level pandera checks of a staged day run on its first rows only, so staging 20M rows
    # stays fast; the dtype and column checks always cover the whole day.
    contract_sample_rows: int = 200_000


DEFAULT_THRESHOLDS = CheckThresholds()
