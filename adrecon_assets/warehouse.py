"""Layout of the intermediate outputs, shared by both engines so either reads what the other wrote.

`<warehouse>/<dataset>/date_partition=YYYY-MM-DD/part-*.parquet`, and the quarantined rows of
a lake topic beside it in `<warehouse>/_quarantine/<topic>/date_partition=YYYY-MM-DD/`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path

from adrecon_assets.lake import PARTITION_PREFIX
from adrecon_assets.rules import Topic


class Dataset(StrEnum):
    RAW_CLICKS = "raw_clicks"
    RAW_EMISSIONS = "raw_emissions"
    JOINED_CLICKS = "joined_clicks"
    EMISSION_COUNTS = "emission_counts"
    FRAUD_FLAGS = "fraud_flags"
    RECONCILED_STATISTICS = "reconciled_statistics"
    ANOMALY_METRICS = "anomaly_metrics"


RAW_DATASET = {Topic.CLICKS: Dataset.RAW_CLICKS, Topic.EMISSIONS: Dataset.RAW_EMISSIONS}
QUARANTINE_FOLDER = "_quarantine"


class Warehouse:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def folder(self, dataset: Dataset, day: date) -> Path:
        return self.root / dataset.value / f"{PARTITION_PREFIX}{day.isoformat()}"

    def quarantine_folder(self, topic: Topic, day: date) -> Path:
        return self.root / QUARANTINE_FOLDER / topic.value / f"{PARTITION_PREFIX}{day.isoformat()}"

    def exists(self, dataset: Dataset, day: date) -> bool:
        return self.folder(dataset, day).is_dir()

    @staticmethod
    def files(folder: Path) -> list[Path]:
        """The Parquet part files of a written folder (either engine's naming)."""
        return sorted(folder.glob("*.parquet"))


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a scratch folder that replaces `target` only once the block succeeds.

    A crashed or failed write leaves the previous output in place, so reruns are always safe.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    try:
        yield scratch
        backup = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            target.rename(backup)
        scratch.rename(target)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
