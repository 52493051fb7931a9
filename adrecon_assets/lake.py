"""Read-only view of the raw event lake (DATA_CONTRACT.md section 2)."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from adrecon_assets.rules import IpRange, Topic, parse_denylist

PARTITION_PREFIX = "date_partition="
SUCCESS_MARKER = "_SUCCESS"
DENYLIST_RELATIVE_PATH = Path("reference") / "ip_denylist.csv"


@dataclass(frozen=True)
class LakeFile:
    # The folder and name, not a Path: building 100,000 Paths per late-data scan cost ~1 s.
    folder: Path
    name: str
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return self.folder / self.name


@dataclass(frozen=True)
class LakePartition:
    """The Parquet files of one topic and day, as they are now."""

    topic: Topic
    day: date
    folder: Path
    files: tuple[LakeFile, ...]
    closed: bool

    @property
    def fingerprint(self) -> str:
        """Changes whenever a file is added, removed or rewritten; empty day -> a fixed value."""
        digest = hashlib.sha256()
        for lake_file in self.files:
            digest.update(f"{lake_file.name}|{lake_file.size}|{lake_file.mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    @property
    def total_bytes(self) -> int:
        return sum(lake_file.size for lake_file in self.files)

    @property
    def newest_mtime_ns(self) -> int:
        return max((lake_file.mtime_ns for lake_file in self.files), default=0)


class Lake:
    """A lake root. Folders and files are listed with os.scandir: the late-data sensor scans
    hundreds of thousands of files per tick, so one stat per file is the budget."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def folder(self, topic: Topic, day: date) -> Path:
        return self.root / topic.value / f"{PARTITION_PREFIX}{day.isoformat()}"

    def partition(self, topic: Topic, day: date) -> LakePartition:
        folder = self.folder(topic, day)
        files: list[LakeFile] = []
        closed = False
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name == SUCCESS_MARKER:
                        closed = True
                    elif entry.name.endswith(".parquet") and entry.is_file():
                        stat = entry.stat()
                        files.append(LakeFile(folder, entry.name, stat.st_size, stat.st_mtime_ns))
        except FileNotFoundError:
            pass  # No folder: nothing arrived that day, an empty day (contract 2).
        files.sort(key=lambda lake_file: lake_file.name)
        return LakePartition(topic, day, folder, tuple(files), closed)

    @property
    def denylist_path(self) -> Path:
        return self.root / DENYLIST_RELATIVE_PATH

    def denylist(self) -> list[IpRange]:
        """The merged denylist ranges; a missing file means an empty denylist."""
        if not self.denylist_path.exists():
            return []
        with self.denylist_path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "cidr" not in reader.fieldnames:
                raise ValueError(f"{self.denylist_path}: missing header column 'cidr'")
            return parse_denylist([row["cidr"] or "" for row in reader])
