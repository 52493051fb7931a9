"""day_accounting: every closed day since the start date that is not reconciled, with when its
lake closed, whatever the lookback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from adrecon_assets.day_accounting import (
    UnreconciledDay,
    account_days,
    lake_closures,
    unreconciled_closed_days,
    watermark,
)
from adrecon_assets.lake import Lake
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import emission, write_topic
from adrecon_assets_tests.sensor_lakes import (
    close_at,
    days_ago,
    record_materializations,
    sync_lake,
    write_day,
)

# Every test runs on a local lake and on the same lake in an S3 bucket (contract 2.1).
pytestmark = pytest.mark.usefixtures("lake_kind")


@pytest.fixture
def instance(paths: Paths) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def lake() -> Lake:
    """The lake the sensors read (ADRECON_LAKE_ROOT: the test's local lake or its bucket)."""
    from adrecon_assets.settings import load_settings

    sync_lake()
    return Lake(load_settings().lake_root)


def test_days_far_beyond_the_lookback_are_accounted_for(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    # 30 closed days (the default lookback is 14), of which the 3 newest are reconciled.
    days = [days_ago(count) for count in range(30, 0, -1)]
    for day in days:
        write_day(paths.lake, day)
    record_materializations(instance, paths.lake, days[-3:])
    now = datetime.now(UTC)
    unreconciled = unreconciled_closed_days(instance, lake(), now)
    assert [entry.day for entry in unreconciled] == days[:-3]
    assert all(isinstance(entry, UnreconciledDay) for entry in unreconciled)
    # The lake closed them moments ago (the markers were just written).
    assert all(now - timedelta(minutes=5) < entry.lake_closed_at <= now for entry in unreconciled)


def test_lake_closed_at_is_the_newest_marker_the_day_waits_for(
    paths: Paths, lake_kind: str
) -> None:
    day = days_ago(3)
    before = day - timedelta(days=1)
    write_day(paths.lake, before)
    write_day(paths.lake, day)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    close_at(paths.lake, Topic.CLICKS, day, base + timedelta(minutes=5))
    close_at(paths.lake, Topic.EMISSIONS, day, base + timedelta(minutes=2))
    # Clicks of D join emissions of D-1: its marker counts too.
    close_at(paths.lake, Topic.EMISSIONS, before, base + timedelta(minutes=9))
    closures = lake_closures(lake(), [day])
    newest = base + timedelta(minutes=9)
    if lake_kind == "s3":
        # The mirror keeps the files' times; Last-Modified has whole seconds, rounded up.
        assert newest <= closures[day] <= newest + timedelta(seconds=1)
        return
    assert closures == {day: newest}


def test_open_days_and_open_previous_emissions_are_not_closed(paths: Paths) -> None:
    open_day, waiting_day, empty_before = days_ago(6), days_ago(5), days_ago(3)
    write_day(paths.lake, open_day, closed=False)  # no _SUCCESS: open, and D+1 waits for it
    write_day(paths.lake, waiting_day)
    # empty_before - 1 has no emissions folder at all: an empty day, which holds nothing back.
    write_day(paths.lake, empty_before)
    rows = [emission("e9", "o1", "top", 1, f"{days_ago(2)}T01:00:00")]
    write_topic(paths.lake, Topic.EMISSIONS, days_ago(2), rows)  # clicks of it never closed
    closures = lake_closures(lake(), [open_day, waiting_day, empty_before, days_ago(2)])
    assert sorted(closures) == [empty_before]


def test_the_watermark_stops_at_the_oldest_unreconciled_day(
    instance: dg.DagsterInstance, paths: Paths
) -> None:
    days = [days_ago(count) for count in range(5, 0, -1)]
    for day in days:
        write_day(paths.lake, day)
    record_materializations(instance, paths.lake, [days[0], days[1], days[3]])
    account = account_days(instance, lake(), datetime.now(UTC))
    assert [entry.day for entry in account.unreconciled_closed] == [days[2], days[4]]
    assert watermark(days, account.reconciled) == days[1]
    # With the watermark, the days up to it are taken as reconciled without asking.
    again = account_days(instance, lake(), datetime.now(UTC), account.reconciled_through)
    assert again.unreconciled_closed == account.unreconciled_closed
