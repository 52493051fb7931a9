"""A real S3-compatible server for the suite: moto's server mode on 127.0.0.1 (a free port),
started once per session and stopped at its end, plus a mirror that copies a local test lake
into a bucket so one test body can run against both lake kinds (contract 2.1)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
# moto accepts any credentials; these only prove they are passed through.
ACCESS_KEY = "adrecon-test"
SECRET_KEY = "adrecon-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def environment(self) -> dict[str, str]:
        """The standard variables of contract 2.1 that point adrecon at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """moto's S3 server in this process, on 127.0.0.1 and a free port, stopped on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The AWS_* variables set for this test (the lake, Polars and subprocesses read them)."""
    for name, value in s3_server.environment.items():
        monkeypatch.setenv(name, value)
    return s3_server


def set_last_modified(bucket: str, key: str, when: datetime) -> None:
    """The object's Last-Modified, as os.utime sets a local file's mtime: the server is moto in
    this process, so its backend is reachable (the S3 API cannot set this field)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.buckets[bucket].keys[key].last_modified = when.astimezone(UTC).replace(tzinfo=None)


class ListRequests(logging.Handler):
    """Counts the LIST (ListObjectsV2) requests the server answers while installed."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "list-type=2" in record.getMessage():
            self.count += 1


@contextmanager
def counting_list_requests() -> Iterator[ListRequests]:
    """moto's server logs each request on the `werkzeug` logger at INFO: count LISTs there."""
    logger = logging.getLogger("werkzeug")
    counter = ListRequests()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate


@dataclass
class LakeMirror:
    """Keeps `s3://bucket/prefix` equal to a local lake folder: new or changed files are
    uploaded (their Last-Modified set to the file's mtime), removed ones deleted."""

    server: S3Server
    local: Path
    bucket: str
    prefix: str = "lake"
    _synced: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def sync(self) -> None:
        client = self.server.client()
        current: dict[str, tuple[int, int]] = {}
        for folder, subfolders, names in os.walk(self.local):
            if not names and not subfolders:
                # An empty folder (a topic with no day yet) as S3 consoles create one.
                key = f"{self.prefix}/{Path(folder).relative_to(self.local).as_posix()}/"
                current[key] = (0, 0)
                if key not in self._synced:
                    client.put_object(Bucket=self.bucket, Key=key, Body=b"")
            for name in names:
                path = Path(folder) / name
                stat = path.stat()
                key = f"{self.prefix}/{path.relative_to(self.local).as_posix()}"
                current[key] = (stat.st_size, stat.st_mtime_ns)
                if self._synced.get(key) != current[key]:
                    client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
                    modified = datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC)
                    set_last_modified(self.bucket, key, modified)
        for key in set(self._synced) - set(current):
            client.delete_object(Bucket=self.bucket, Key=key)
        self._synced = current
