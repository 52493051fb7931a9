"""Read-only view of the raw event lake (DATA_CONTRACT.md sections 2 and 2.1).

One interface over two kinds of lake root: a local (or mounted) path, read with os.scandir, and
an `s3://bucket/prefix` URL on any S3-compatible store, listed with obstore (the Rust
`object_store` crate that Polars itself reads S3 with, so both are configured by the same
keys). `Lake(root)` returns the right kind, as `pathlib.Path` does.

A lake root, topic folder or denylist that does not exist is a misconfiguration and raises
`LakeNotFoundError` naming it; only a missing day folder under an existing topic is an empty
day (contract 2). A transient fault of the storage (an I/O error, a timeout, a 5xx answer) is
no such error: each listing and read is retried within the contract's budget (`transient.py`).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from adrecon_assets import rules
from adrecon_assets.rules import IpRange, Topic, parse_denylist
from adrecon_assets.transient import first_line, is_transient, retry_transient

PARTITION_PREFIX = "date_partition="
SUCCESS_MARKER = "_SUCCESS"
DENYLIST_RELATIVE_PATH = Path("reference") / "ip_denylist.csv"
S3_SCHEME = "s3://"
# One ranged GET of an object's end holds the footer of all but very wide Parquet files.
FOOTER_TAIL_BYTES = 64 * 1024
# A root such as `gs://...` or `hdfs://...`: a URL, but not one this lake can read.
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class LakeNotFoundError(ValueError):
    """The lake root, a topic folder or the denylist does not exist, or the root's scheme is
    unsupported: a misconfiguration, never retried."""


@dataclass(frozen=True)
class LakeFile:
    # The folder and name as strings, not a Path: building 100,000 Paths per late-data scan
    # cost ~1 s. `etag` is set on object stores (it changes when an object is rewritten).
    folder: str
    name: str
    size: int
    mtime_ns: int
    etag: str = ""

    @property
    def url(self) -> str:
        """Where an engine reads the file: a local path or `s3://bucket/key`."""
        return f"{self.folder}/{self.name}"

    @property
    def path(self) -> Path:
        """The file as a Path (local lakes only)."""
        return Path(self.url)


@dataclass(frozen=True)
class LakePartition:
    """The Parquet files of one topic and day, as they are now."""

    topic: Topic
    day: date
    folder: str
    files: tuple[LakeFile, ...]
    closed: bool
    # False when the day has no folder (no object under its prefix): an empty day.
    exists: bool = True
    # Polars `storage_options` for an object-store lake (None on a local lake). Never shown:
    # it holds credentials (contract 4.2's rule for every setting).
    storage_options: dict[str, str] | None = field(default=None, repr=False, compare=False)
    # Reads the footer end of a file of `files` by URL (None on a local lake: read by path).
    footer_reader: Callable[[str], bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a file is added, removed or rewritten; empty day -> a fixed value."""
        digest = hashlib.sha256()
        for lake_file in self.files:
            line = f"{lake_file.name}|{lake_file.size}|{lake_file.mtime_ns}"
            if lake_file.etag:
                line += f"|{lake_file.etag}"
            digest.update(f"{line}\n".encode())
        return digest.hexdigest()[:16]

    @property
    def total_bytes(self) -> int:
        return sum(lake_file.size for lake_file in self.files)

    @property
    def newest_mtime_ns(self) -> int:
        return max((lake_file.mtime_ns for lake_file in self.files), default=0)


@dataclass(frozen=True)
class DayMarker:
    """What the day accounting reads of a day folder: whether it exists, and when its
    `_SUCCESS` marker was written (None while the day is open)."""

    exists: bool
    closed_ns: int | None


def partition_name(day: date) -> str:
    return f"{PARTITION_PREFIX}{day.isoformat()}"


def parse_denylist_csv(text: str, where: str) -> list[IpRange]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "cidr" not in reader.fieldnames:
        raise ValueError(f"{where}: missing header column 'cidr'")
    return parse_denylist([row["cidr"] or "" for row in reader])


def missing_denylist(where: str) -> LakeNotFoundError:
    """Contract 2: no denylist is a misconfiguration, not an empty denylist (refunds of
    denylisted IPs would silently stop)."""
    return LakeNotFoundError(
        f"lake denylist {where} does not exist (a lake always has {DENYLIST_RELATIVE_PATH}; "
        "a file with only its header `cidr` is an empty denylist)"
    )


class Lake:
    """A lake root. `Lake("s3://bucket/prefix")` is an `S3Lake`, any other root a `LocalLake`;
    a URL of another scheme raises LakeNotFoundError."""

    root: str

    def __new__(cls, root: str | os.PathLike[str]) -> Lake:
        if cls is Lake:
            text = os.fspath(root)
            if text.startswith(S3_SCHEME):
                cls = S3Lake
            elif URL_PATTERN.match(text):
                raise LakeNotFoundError(
                    f"lake root {text!r} has an unsupported scheme: ADRECON_LAKE_ROOT must be a "
                    "local path or an s3://bucket/prefix URL"
                )
            else:
                cls = LocalLake
        return super().__new__(cls)

    def location(self, topic: Topic, day: date) -> str:
        """The day folder's path or URL, for messages and metadata."""
        raise NotImplementedError

    def partitions(
        self, topic: Topic, days: Iterable[date], budget_seconds: float | None = None
    ) -> dict[date, LakePartition]:
        """The partitions of `days`, listed at the lowest cost the storage allows (one listing
        of the topic's window on an object store, one scandir per day folder on disk); a
        transient fault is retried for `budget_seconds` (default: the contract's budget)."""
        raise NotImplementedError

    def denylist(self) -> list[IpRange]:
        """The merged denylist ranges; a missing file raises LakeNotFoundError naming it."""
        raise NotImplementedError

    def markers(self, topic: Topic, days: Iterable[date]) -> dict[date, DayMarker]:
        """Each day folder's `_SUCCESS` marker, without listing its data files: cheap enough
        to look at every unreconciled day since the start date on every sensor tick."""
        raise NotImplementedError

    def partition(self, topic: Topic, day: date) -> LakePartition:
        return self.partitions(topic, [day])[day]

    def snapshot(self, days: Iterable[date]) -> LakeSnapshot:
        """Both topics over `days` and the day before the first, one listing per topic: what a
        sensor tick reads, whatever the number of days and files (retried briefly: the next
        tick retries a lake that is still failing)."""
        wanted = sorted(set(days))
        if wanted:
            wanted.insert(0, wanted[0] - timedelta(days=1))
        budget = rules.SENSOR_RETRY_BUDGET_SECONDS
        return LakeSnapshot({topic: self.partitions(topic, wanted, budget) for topic in Topic})


@dataclass(frozen=True)
class LakeSnapshot:
    """The lake's partitions of a window of days, listed once (see `Lake.snapshot`)."""

    by_topic: Mapping[Topic, Mapping[date, LakePartition]]

    def partition(self, topic: Topic, day: date) -> LakePartition:
        return self.by_topic[topic][day]

    def partitions(self, topic: Topic, days: Iterable[date]) -> dict[date, LakePartition]:
        """As `Lake.partitions`, from the listing already made (days inside the window)."""
        return {day: self.by_topic[topic][day] for day in days}


class LakeListing(Protocol):
    """What lists partitions: a `Lake` (lists now) or a `LakeSnapshot` (listed once a tick)."""

    def partitions(self, topic: Topic, days: Iterable[date]) -> dict[date, LakePartition]: ...


class LocalLake(Lake):
    """A lake on a local or mounted filesystem. Folders and files are listed with os.scandir:
    the late-data sensor scans hundreds of thousands of files per tick, so one stat per file
    is the budget."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    def folder(self, topic: Topic, day: date) -> Path:
        return self.root_path / topic.value / partition_name(day)

    def location(self, topic: Topic, day: date) -> str:
        return str(self.folder(topic, day))

    def require_topic(self, topic: Topic) -> None:
        """LakeNotFoundError unless the topic folder exists (and so the root)."""
        if (self.root_path / topic.value).is_dir():
            return
        if not self.root_path.is_dir():
            raise LakeNotFoundError(
                f"lake root {self.root} does not exist or is not a folder "
                "(check ADRECON_LAKE_ROOT, or whether the share is mounted)"
            )
        raise LakeNotFoundError(
            f"lake topic folder {self.root_path / topic.value} does not exist "
            "(a lake always has both topic folders; check ADRECON_LAKE_ROOT)"
        )

    def partitions(
        self, topic: Topic, days: Iterable[date], budget_seconds: float | None = None
    ) -> dict[date, LakePartition]:
        # A scandir's EIO or ESTALE (a flaky mount) is retried per folder.
        return {
            day: retry_transient(
                functools.partial(self._partition, topic, day),
                f"listing {self.location(topic, day)}",
                budget_seconds,
            )
            for day in days
        }

    def _partition(self, topic: Topic, day: date) -> LakePartition:
        folder = self.location(topic, day)
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
            # No folder: nothing arrived that day, an empty day (contract 2), if the topic is.
            self.require_topic(topic)
            return LakePartition(topic, day, folder, (), closed=False, exists=False)
        files.sort(key=lambda lake_file: lake_file.name)
        return LakePartition(topic, day, folder, tuple(files), closed)

    def markers(self, topic: Topic, days: Iterable[date]) -> dict[date, DayMarker]:
        """One listing of the topic's day folders, then one stat per existing day's marker."""
        try:
            folders = set(os.listdir(self.root_path / topic.value))
        except FileNotFoundError:
            self.require_topic(topic)
            raise
        return {day: self._marker(topic, day, folders) for day in days}

    def _marker(self, topic: Topic, day: date, folders: set[str]) -> DayMarker:
        if partition_name(day) not in folders:
            return DayMarker(False, None)
        try:
            return DayMarker(True, (self.folder(topic, day) / SUCCESS_MARKER).stat().st_mtime_ns)
        except FileNotFoundError:
            return DayMarker(True, None)

    @property
    def denylist_path(self) -> Path:
        return self.root_path / DENYLIST_RELATIVE_PATH

    def denylist(self) -> list[IpRange]:
        path = self.denylist_path

        def read() -> str:
            try:
                return path.read_text()
            except FileNotFoundError as error:
                raise missing_denylist(str(path)) from error

        return parse_denylist_csv(retry_transient(read, f"reading {path}"), str(path))


@dataclass(frozen=True)
class S3Settings:
    """Endpoint and credentials of contract 2.1, from the standard AWS variables. Unset ones
    are left to the store's own defaults (instance profile, AWS endpoints)."""

    endpoint: str | None = None
    access_key_id: str | None = None
    # Credentials never appear in logs or messages (contract 4.2): kept out of the repr.
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str | None = None
    allow_http: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> S3Settings:
        def value(name: str) -> str | None:
            return environ.get(name) or None

        return cls(
            endpoint=value("AWS_ENDPOINT_URL"),
            access_key_id=value("AWS_ACCESS_KEY_ID"),
            secret_access_key=value("AWS_SECRET_ACCESS_KEY"),
            session_token=value("AWS_SESSION_TOKEN"),
            region=value("AWS_REGION") or value("AWS_DEFAULT_REGION"),
            allow_http=(environ.get("AWS_ALLOW_HTTP") or "").lower() == "true",
        )

    def storage_options(self) -> dict[str, str]:
        """`object_store` configuration keys: Polars' `storage_options`, obstore's config."""
        options = {
            "aws_endpoint": self.endpoint,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
            "aws_region": self.region,
        }
        result = {key: value for key, value in options.items() if value}
        if self.allow_http:
            result["aws_allow_http"] = "true"
        return result

    def obstore_arguments(self) -> dict[str, Any]:
        """S3Store/FsspecStore keyword arguments (allow_http is a client option there)."""
        config = {
            key: value for key, value in self.storage_options().items() if key != "aws_allow_http"
        }
        return {"config": config, "client_options": {"allow_http": self.allow_http}}


def latest_write_ns(modified: datetime) -> int:
    """The latest instant an object with this Last-Modified may have been written: listings
    give whole seconds, so the end of that second (a quiet period never ends early)."""
    seconds = int(modified.timestamp())
    if modified.microsecond:
        return seconds * 1_000_000_000 + modified.microsecond * 1000
    return seconds * 1_000_000_000 + 999_999_999


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix")."""
    bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise LakeNotFoundError(f"lake root {url!r} names no bucket (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


class S3Lake(Lake):
    """A lake under `s3://bucket/prefix` of an S3-compatible store (contract 2.1).

    Listing cost is bounded: `partitions` lists a topic's window of days with one paged LIST
    from the first day's key onwards (S3 returns keys in order, so the listing stops after the
    last day), never one request per day or per file."""

    def __init__(self, root: str, settings: S3Settings | None = None) -> None:
        self.root = root.rstrip("/")
        self.bucket, self.prefix = split_s3_url(root)
        self.settings = settings or S3Settings.from_env()

    @cached_property
    def store(self) -> Any:
        from obstore.store import S3Store  # deferred: only S3 lakes need it

        return S3Store(self.bucket, prefix=self.prefix or None, **self.settings.obstore_arguments())

    def read_tail(self, url: str, length: int) -> bytes:
        """The last `length` bytes of the object at `url` (all of it if shorter)."""
        import obstore

        key = url[len(self.root) + 1 :]
        return bytes(obstore.get(self.store, key, options={"range": {"suffix": length}}).bytes())

    def footer(self, url: str) -> bytes:
        """The end of a Parquet object, footer included: one ranged GET (two for a footer over
        FOOTER_TAIL_BYTES) and no HEAD, since obstore's fsspec layer reports a HEAD that
        failed on a 503 as a missing or 0-byte file, which would read as bad input."""
        data = self.read_tail(url, FOOTER_TAIL_BYTES)
        if len(data) == FOOTER_TAIL_BYTES:
            needed = int.from_bytes(data[-8:-4], "little") + 8  # footer length, "PAR1"
            if needed > len(data):
                data = self.read_tail(url, needed)
        return data

    def location(self, topic: Topic, day: date) -> str:
        return f"{self.root}/{topic.value}/{partition_name(day)}"

    def _list(self, prefix: str, offset: str | None = None) -> Iterable[Any]:
        import obstore

        try:
            for chunk in obstore.list(self.store, prefix, offset=offset, chunk_size=1000):
                yield from chunk
        except Exception as error:  # obstore raises its own error types (NotFound, Generic...)
            if is_transient(error):
                raise  # retried by the caller's retry_transient, never "no lake"
            # Its first line says what failed (e.g. a 404 on the bucket); the rest is debug.
            raise LakeNotFoundError(
                f"cannot list lake root {self.root}: {first_line(error)}"
            ) from error

    def require_topic(self, topic: Topic) -> None:
        if next(iter(self._list(f"{topic.value}/")), None) is None:
            raise LakeNotFoundError(
                f"lake topic folder {self.root}/{topic.value} does not exist (no object under "
                "it; check ADRECON_LAKE_ROOT and the AWS_* endpoint settings)"
            )

    def partitions(
        self, topic: Topic, days: Iterable[date], budget_seconds: float | None = None
    ) -> dict[date, LakePartition]:
        wanted = sorted(set(days))
        if not wanted:
            return {}
        # The store client retries a request ~10 times within seconds; an outage of minutes
        # restarts the whole listing (a partial one could miss files) within the budget.
        return retry_transient(
            lambda: self._partitions(topic, wanted),
            f"listing {self.location(topic, wanted[0])} ({len(wanted)} days)",
            budget_seconds,
        )

    def _partitions(self, topic: Topic, wanted: list[date]) -> dict[date, LakePartition]:
        topic_prefix = f"{topic.value}/"
        last = partition_name(wanted[-1])
        files: dict[str, list[LakeFile]] = {partition_name(day): [] for day in wanted}
        closed: set[str] = set()
        seen: set[str] = set()
        # Keys sort by day; everything before the first day is skipped by the offset.
        offset = f"{topic_prefix}{partition_name(wanted[0])}"
        topic_exists = False
        for meta in self._list(topic_prefix, offset=offset):
            topic_exists = True  # any key under the topic, even one after the window
            folder_name, _, name = meta["path"][len(topic_prefix) :].partition("/")
            if folder_name > last:
                break
            if folder_name not in files or not name or "/" in name:
                continue
            seen.add(folder_name)
            if name == SUCCESS_MARKER:
                closed.add(folder_name)
            elif name.endswith(".parquet"):
                mtime_ns = latest_write_ns(meta["last_modified"])
                folder = f"{self.root}/{topic.value}/{folder_name}"
                files[folder_name].append(
                    LakeFile(folder, name, int(meta["size"]), mtime_ns, meta.get("e_tag") or "")
                )
        if not topic_exists:
            self.require_topic(topic)  # a missing day is empty only under an existing topic
        options = self.settings.storage_options()
        return {
            day: LakePartition(
                topic,
                day,
                self.location(topic, day),
                tuple(sorted(files[partition_name(day)], key=lambda lake_file: lake_file.name)),
                partition_name(day) in closed,
                exists=partition_name(day) in seen,
                storage_options=options,
                footer_reader=self.footer,
            )
            for day in wanted
        }

    def markers(self, topic: Topic, days: Iterable[date]) -> dict[date, DayMarker]:
        """One listing of the topic's day folders (a page per 1,000 days), then one HEAD per
        existing day's marker."""
        import obstore

        topic_prefix = f"{topic.value}/"
        try:
            listed = obstore.list_with_delimiter(self.store, topic_prefix)
        except Exception as error:  # obstore raises its own error types, as in _list
            reason = str(error).split(": <?xml", 1)[0].splitlines()[0][:400]
            raise LakeNotFoundError(f"cannot list lake root {self.root}: {reason}") from error
        folders = {prefix.rstrip("/").rsplit("/", 1)[-1] for prefix in listed["common_prefixes"]}
        if not folders and not listed["objects"]:
            self.require_topic(topic)
        return {day: self._marker(topic, day, folders) for day in days}

    def _marker(self, topic: Topic, day: date, folders: set[str]) -> DayMarker:
        import obstore
        from obstore.exceptions import NotFoundError

        if partition_name(day) not in folders:
            return DayMarker(False, None)
        try:
            meta = obstore.head(self.store, f"{topic.value}/{partition_name(day)}/{SUCCESS_MARKER}")
        except (NotFoundError, FileNotFoundError):
            return DayMarker(True, None)
        return DayMarker(True, latest_write_ns(meta["last_modified"]))

    def denylist(self) -> list[IpRange]:
        import obstore
        from obstore.exceptions import NotFoundError

        key = DENYLIST_RELATIVE_PATH.as_posix()
        url = f"{self.root}/{key}"

        def read() -> bytes:
            try:
                return bytes(obstore.get(self.store, key).bytes())
            except (NotFoundError, FileNotFoundError) as error:
                raise missing_denylist(url) from error

        return parse_denylist_csv(retry_transient(read, f"reading {url}").decode(), url)
