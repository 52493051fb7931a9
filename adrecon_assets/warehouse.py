"""Layout of the intermediate outputs, shared by both engines so either reads what the other wrote.

`<warehouse>/<dataset>/date_partition=YYYY-MM-DD/part-*.parquet`, and the quarantined rows of
a lake topic beside it in `<warehouse>/_quarantine/<topic>/date_partition=YYYY-MM-DD/`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
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


# Names beside a canonical folder `date_partition=D` (all hidden, so no reader's glob or
# partition discovery sees them): the versions the canonical symlink points to, the temporary
# symlink that replaces it, and the lock that serializes the writers of one folder.
VERSION_MARK = ".v-"
LINK_MARK = ".link-"
LOCK_SUFFIX = ".lock"

# renameat2(2) flag: swap two paths atomically (used once, to turn a real folder into a link).
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _sibling(target: Path, mark: str) -> Path:
    return target.parent / f".{target.name}{mark}{uuid.uuid4().hex[:12]}"


def current_version(target: Path) -> Path | None:
    """The versioned folder the canonical symlink points to (None if `target` is no link)."""
    if not target.is_symlink():
        return None
    return target.parent / os.readlink(target)


def leftovers(target: Path) -> list[Path]:
    """What a crashed or failed write of `target` left beside it: every hidden sibling of its
    name except the version in use and the lock file."""
    keep = {current_version(target), target.parent / f".{target.name}{LOCK_SUFFIX}"}
    prefix = f".{target.name}."
    if not target.parent.is_dir():
        return []
    return sorted(
        path
        for path in target.parent.iterdir()
        if path.name.startswith(prefix) and path not in keep
    )


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    code = renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE)
    if code == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(error, os.strerror(error), str(first))


def publish_version(target: Path, version: Path) -> None:
    """Point `target` at `version` in one atomic step; readers see the old or the new folder.

    The usual case is os.replace of a fresh symlink over the canonical symlink (rename(2) is
    atomic). A real folder at `target` (written before outputs were versioned) is swapped for
    the link with renameat2(RENAME_EXCHANGE), or, where the file system lacks it, moved aside
    first (then, once, `target` is missing for a moment).
    """
    link = _sibling(target, LINK_MARK)
    os.symlink(version.name, link)
    if target.is_symlink() or not target.exists():
        os.replace(link, target)
    elif not exchange(link, target):
        os.rename(target, link.with_name(link.name + "-legacy"))
        os.replace(link, target)
    else:
        remove(link)  # after the exchange, `link` holds the former real folder


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a fresh versioned folder that becomes `target` only once the block succeeds.

    `target` is a symlink to its current version `.<name>.v-<id>`. A reader sees the complete
    old or the complete new output at every instant, also across a SIGKILL of the writer: the
    only step that changes what `target` shows is one atomic rename. Writers of one folder are
    serialized by an flock (released by the kernel when a writer dies), and each one first
    removes what an earlier crashed or failed write left beside `target`.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}{LOCK_SUFFIX}", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for leftover in leftovers(target):
            remove(leftover)
        version = _sibling(target, VERSION_MARK)
        version.mkdir()
        try:
            yield version
            previous = current_version(target)
            publish_version(target, version)
        except BaseException:
            remove(version)
            raise
        if previous is not None:
            remove(previous)
