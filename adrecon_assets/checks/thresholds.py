"""Default bounds of the data-quality checks (WARN beyond them)."""

from __future__ import annotations

from typing import Final

MAX_DUPLICATE_CLICK_RATE: Final = 0.05
MAX_ORPHAN_CLICK_RATE: Final = 0.02
MIN_FRAUD_RATE: Final = 0.0005
MAX_FRAUD_RATE: Final = 0.20
MAX_ONLINE_CLICK_DRIFT: Final = 0.05
