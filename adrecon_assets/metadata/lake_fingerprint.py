"""The lake input of a reconciled day as one fingerprint, from the Lake interface."""

from __future__ import annotations

import hashlib
from datetime import date

from adrecon_assets.lake import Lake
from adrecon_assets.partitions import previous_day
from adrecon_assets.rules import Topic


def lake_input_fingerprint(lake: Lake, day: date) -> str:
    """One fingerprint of every lake partition day D's numbers come from (clicks of D,
    emissions of D-1 and D): equal fingerprints mean an identical lake input."""
    partitions = [lake.partition(Topic.CLICKS, day), lake.partition(Topic.EMISSIONS, day)]
    before = previous_day(day)
    if before is not None:
        partitions.append(lake.partition(Topic.EMISSIONS, before))
    digest = hashlib.sha256()
    for partition in partitions:
        digest.update(f"{partition.topic}|{partition.day}|{partition.fingerprint}\n".encode())
    return digest.hexdigest()[:16]
