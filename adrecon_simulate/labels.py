"""The ground-truth vocabulary: which fault was injected into a click, and what the contract's
rules should therefore say about it."""

from __future__ import annotations

from typing import Final

from adrecon_assets.rules import FraudReason

NO_FAULT: Final = "none"
# Fault codes index this tuple; the injected kinds share their names with the contract reasons.
FAULT_KINDS: Final = (NO_FAULT, *(reason.value for reason in FraudReason))
NONE_CODE: Final = 0
TOO_FAST_CODE: Final = FAULT_KINDS.index(FraudReason.TOO_FAST.value)
DENYLISTED_CODE: Final = FAULT_KINDS.index(FraudReason.DENYLISTED_IP.value)
FLOOD_CODE: Final = FAULT_KINDS.index(FraudReason.CLICK_FLOOD.value)
NO_EMISSION_CODE: Final = FAULT_KINDS.index(FraudReason.NO_EMISSION.value)

# Label table columns, one row per click_id of the day.
LABEL_COLUMNS: Final = (
    "click_id",
    # The kind injected: a bot burst's every click is click_flood, including its first three.
    "fault",
    # What rule 3 should give the deduplicated click ("none" for a valid one): a burst's first
    # three clicks have fewer than three earlier clicks, so only the fourth on is a flood.
    "expected_reason",
    # Extra rows with the same click_id (message duplicates); the original always survives dedup.
    "duplicate_copies",
    # Whether the surviving row was written to a late file after _SUCCESS.
    "late",
    # The terms rule 2 must join the click to: those of the emission row that survives rule 1
    # (a cheaper resent copy wins over its original); null for a click without emission.
    "placement",
    "click_cost_micros",
)
LABELS_FILE: Final = "labels.parquet"
SUMMARY_FILE: Final = "summary.json"

# Emission rows by origin (`copy_kind`, a truth column of the simulator's emission frames).
ORIGINAL: Final = "original"
COPY_EXACT: Final = "exact"
COPY_LATER: Final = "later"
COPY_SAME_TIME: Final = "same_time"
COPY_NEXT_DAY: Final = "next_day"
EMISSION_COPY_KINDS: Final = (COPY_EXACT, COPY_LATER, COPY_SAME_TIME, COPY_NEXT_DAY)
