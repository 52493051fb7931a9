"""Layout of the intermediate outputs, shared by both engines so either reads what the other wrote.

`<warehouse>/<dataset>/date_partition=YYYY-MM-DD/part-*.parquet`, and the quarantined rows of
a lake topic beside it in `<warehouse>/_quarantine/<topic>/date_partition=YYYY-MM-DD/`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
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
# symlink that replaces it, the lock that serializes the writers of one folder, and the lock
# its readers share so that no writer deletes a version while it is read.
VERSION_MARK = ".v-"
LINK_MARK = ".link-"
LOCK_SUFFIX = ".lock"
READERS_SUFFIX = ".readers"
# The names a write of `date_partition=D` may leave beside it, and so the only ones a clean-up
# deletes: versions, swap links (and a real folder moved aside), engine and asset scratch
# folders (`.<version>.clicks-*`, `.D.staging-*`) and the two-rename swap of older releases.
OWN_NAME = r"^\.{name}\.(v|link|tmp|old|staging)-[\w-]*(\.clicks-\w+)?$"
VERSION_NAME = r"^\.{name}\.v-\w+$"

# renameat2(2) flag: swap two paths atomically (used once, to turn a real folder into a link).
RENAME_EXCHANGE = 2
AT_FDCWD = -100


class WarehouseLinkError(RuntimeError):
    """A warehouse folder's link points somewhere other than one of its own versions (planted
    or made by hand): the write fails naming it, and nothing is deleted."""


def _sibling(target: Path, mark: str) -> Path:
    return target.parent / f".{target.name}{mark}{uuid.uuid4().hex[:12]}"


def is_own_name(target: Path, name: str, pattern: str = OWN_NAME) -> bool:
    return re.match(pattern.format(name=re.escape(target.name)), name) is not None


def current_version(target: Path) -> Path | None:
    """The versioned folder the canonical symlink points to (None if `target` is no link).

    The link must name a sibling version of `target` (`.<name>.v-*`, no path): anything else
    raises WarehouseLinkError naming the link, since a write would otherwise delete what it
    points to."""
    if not target.is_symlink():
        return None
    pointed = os.readlink(target)
    if "/" in pointed or not is_own_name(target, pointed, VERSION_NAME):
        raise WarehouseLinkError(
            f"warehouse link {target} points to {pointed!r}, not to one of its own versions "
            f"(.{target.name}{VERSION_MARK}*): nothing was written or deleted; remove the link "
            "(or point it at its version) by hand"
        )
    return target.parent / pointed


def resolve_version(target: Path) -> Path:
    """The folder a reader reads for `target`: its current version (resolved once, so a swap
    during the read cannot mix versions), or `target` itself if it is no link."""
    return current_version(target) or target


def leftovers(target: Path) -> list[Path]:
    """What a crashed or failed write of `target` left beside it: every sibling with one of its
    own version or temporary names except the version in use (locks are kept)."""
    keep = current_version(target)
    if not target.parent.is_dir():
        return []
    return sorted(
        path for path in target.parent.iterdir() if path != keep and is_own_name(target, path.name)
    )


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def empty_folders(folders: Iterable[Path]) -> None:
    """Remove what a failed attempt wrote into `folders`, keeping the folders (a retry)."""
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                remove(path)


def fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: Path) -> None:
    """Every file and folder of a version on disk, deepest first, so a power loss after the
    swap cannot leave the link pointing at a torn version."""
    for root, _, names in os.walk(folder, topdown=False):
        for name in names:
            if not os.path.islink(os.path.join(root, name)):
                fsync_path(Path(root, name))
        fsync_path(Path(root))


@contextmanager
def readers_lock(target: Path, mode: int) -> Iterator[bool]:
    """flock on the readers' lock of `target`: shared for readers, exclusive (non-blocking) for
    the writer that deletes old versions. Yields whether it was acquired."""
    path = target.parent / f".{target.name}{READERS_SUFFIX}"
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, mode)
        except BlockingIOError:
            yield False
            return
        yield True


def remove_old_versions(target: Path, versions: list[Path]) -> None:
    """Delete superseded versions unless a reader still reads one; then the next write of
    `target` deletes them (never blocks a writer behind a reader)."""
    if not versions:
        return
    with readers_lock(target, fcntl.LOCK_EX | fcntl.LOCK_NB) as no_reader:
        if no_reader:
            for version in versions:
                remove(version)


@contextmanager
def reading(*targets: Path) -> Iterator[list[Path]]:
    """Read written folders consistently: each folder's version is resolved once, under its
    readers' lock, so the reader sees exactly one version of each (never a mix of an old and a
    new one's files) and no writer deletes it until the block ends."""
    with ExitStack() as stack:
        versions = []
        for target in targets:
            if target.parent.is_dir():
                stack.enter_context(readers_lock(target, fcntl.LOCK_SH))
            versions.append(resolve_version(target))
        yield versions


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
    first (then, once, `target` is missing for a moment). The version's files are fsynced
    before the swap and the parent folder after it.
    """
    fsync_tree(version)
    link = _sibling(target, LINK_MARK)
    os.symlink(version.name, link)
    if target.is_symlink() or not target.exists():
        os.replace(link, target)
    elif not exchange(link, target):
        os.rename(target, link.with_name(link.name + "-legacy"))
        os.replace(link, target)
    else:
        remove(link)  # after the exchange, `link` holds the former real folder
    fsync_path(target.parent)


class StagedVersion:
    """A fresh version of `target` being written, under the folder's writer lock.

    `publish()` swaps it in and `discard()` drops it; `hold()` keeps it staged (and the lock
    held) past the `staged_version` block, for a caller that publishes it later, after the
    serving store (a ranged run's one serving transaction)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.held = False
        self.done = False
        target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(target.parent / f".{target.name}{LOCK_SUFFIX}", "a")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            # Checks the link before anything is deleted (WarehouseLinkError otherwise).
            stale = leftovers(target)
            for leftover in stale:
                if not is_own_name(target, leftover.name, VERSION_NAME):
                    remove(leftover)
            remove_old_versions(target, [path for path in stale if path.exists()])
            self.path = _sibling(target, VERSION_MARK)
            self.path.mkdir()
        except BaseException:
            self._lock.close()
            raise

    def hold(self) -> None:
        self.held = True

    def publish(self) -> None:
        if self.done:
            return
        try:
            previous = current_version(self.target)
            publish_version(self.target, self.path)
        except BaseException:
            self.discard()
            raise
        self.done = True
        self._lock.close()
        remove_old_versions(self.target, [previous] if previous else [])

    def discard(self) -> None:
        if self.done:
            return
        self.done = True
        remove(self.path)
        self._lock.close()


@contextmanager
def staged_version(target: Path) -> Iterator[StagedVersion]:
    """A StagedVersion published when the block succeeds (unless held), discarded if it fails."""
    staged = StagedVersion(target)
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    if not staged.held:
        staged.publish()


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a fresh versioned folder that becomes `target` only once the block succeeds.

    `target` is a symlink to its current version `.<name>.v-<id>`. A reader sees the complete
    old or the complete new output at every instant, also across a SIGKILL of the writer: the
    only step that changes what `target` shows is one atomic rename. Writers of one folder are
    serialized by an flock (released by the kernel when a writer dies), and each one first
    removes what an earlier crashed or failed write left beside `target` (only names of its own,
    after checking where the link points: see `current_version`).
    """
    with staged_version(target) as staged:
        yield staged.path
