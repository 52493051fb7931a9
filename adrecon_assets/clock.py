"""The one clock: an aware UTC now, so tests can pin it where a module reads it."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
