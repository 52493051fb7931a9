"""`ServingStore.replace_days` on both stores (DuckDB file, PostgreSQL): a ranged step's days
published in one transaction, each a day replace with its reconciled_days entry, all or none;
and the day totals read back from one `day_rows` query."""

from __future__ import annotations

from datetime import date

import pytest

from adrecon_assets import serving
from adrecon_assets.serving import DayReplace, ServingStore, totals_of
from adrecon_assets_tests.test_serving import stats
from adrecon_assets_tests.test_serving_stores import rows_of

DAYS = [date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)]


def offline(day: date, offers: list[str], clicks: int, run: str) -> DayReplace:
    return DayReplace(
        serving.OFFER_PLACEMENT_STATS,
        day,
        stats(day, offers, clicks),
        {"source": serving.OFFLINE_SOURCE},
        run_id=run,
    )


def test_days_replaced_in_one_call_each_get_their_rows_and_marker(store: ServingStore) -> None:
    store.replace_day(
        serving.OFFER_PLACEMENT_STATS,
        DAYS[1],
        stats(DAYS[1], ["old"], 9),
        {"source": serving.ONLINE_SOURCE},
    )
    written = store.replace_days(
        [offline(DAYS[0], ["o1", "o2"], 5, "ranged"), offline(DAYS[1], ["o3"], 7, "ranged")]
    )
    assert written == 3
    assert rows_of(store, DAYS[0]) == [
        ("o1", "p1", 10, 5, 500, 1, 100, "offline"),
        ("o2", "p1", 10, 5, 500, 1, 100, "offline"),
    ]
    # The online row of DAYS[1] is replaced, not added to.
    assert rows_of(store, DAYS[1]) == [("o3", "p1", 10, 7, 700, 1, 100, "offline")]
    assert store.reconciled_days() == {DAYS[0]: "ranged", DAYS[1]: "ranged"}


def test_one_bad_day_publishes_none_of_the_days(store: ServingStore) -> None:
    """All or none: a key violation on the last day rolls back the days before it."""
    store.replace_days([offline(day, ["o1"], 1, "first") for day in DAYS])
    before = [rows_of(store, day) for day in DAYS]
    with pytest.raises(Exception, match="(?i)constraint|duplicate|unique"):
        store.replace_days(
            [
                offline(DAYS[0], ["o5"], 5, "second"),
                offline(DAYS[1], ["o6"], 6, "second"),
                offline(DAYS[2], ["o9", "o9"], 9, "second"),
            ]
        )
    assert [rows_of(store, day) for day in DAYS] == before
    assert store.reconciled_days() == dict.fromkeys(DAYS, "first")


def test_rows_of_another_day_are_refused_before_anything_is_written(store: ServingStore) -> None:
    store.replace_days([offline(DAYS[0], ["o1"], 1, "first")])
    misplaced = DayReplace(serving.OFFER_PLACEMENT_STATS, DAYS[1], stats(DAYS[2], ["o2"], 2))
    with pytest.raises(ValueError, match="got rows of other days: 2026-01-04"):
        store.replace_days([offline(DAYS[0], ["o7"], 7, "second"), misplaced])
    assert rows_of(store, DAYS[0]) == [("o1", "p1", 10, 1, 100, 1, 100, "offline")]


def test_totals_of_day_rows_equal_day_totals(store: ServingStore) -> None:
    store.replace_day(
        serving.OFFER_PLACEMENT_STATS,
        DAYS[0],
        stats(DAYS[0], ["o1", "o2", "o3"], 4),
        {"source": serving.ONLINE_SOURCE},
    )
    for day in DAYS[:2]:  # a day with rows, a day without
        totals = totals_of(store.day_rows(day))
        assert totals == store.day_totals(day)
    # Hand-computed: 3 rows of 10 emissions, 4 clicks (400 micros), 1 fraud click (100 micros).
    assert totals_of(store.day_rows(DAYS[0])) == serving.DayTotals(
        "online", 3, 30, 12, 1200, 3, 300
    )
    assert totals_of(store.day_rows(DAYS[1])) == serving.DayTotals(None, 0, 0, 0, 0, 0, 0)


def test_a_replace_keeps_no_key_of_the_old_day_and_every_new_value(store: ServingStore) -> None:
    """Keys that go, stay (with new values) and come: the day holds exactly the new rows,
    each with the new updated_at (the DuckDB store replaces by merging on the key)."""
    store.replace_days([offline(DAYS[0], ["o1", "o2"], 5, "first")])
    (before,) = store.fetch("SELECT max(updated_at) FROM offer_placement_stats")
    store.replace_days([offline(DAYS[0], ["o2", "o3"], 8, "second")])
    assert rows_of(store, DAYS[0]) == [
        ("o2", "p1", 10, 8, 800, 1, 100, "offline"),
        ("o3", "p1", 10, 8, 800, 1, 100, "offline"),
    ]
    (stamps,) = store.fetch(
        "SELECT count(DISTINCT updated_at), min(updated_at) > ? FROM offer_placement_stats",
        [before[0]],
    )
    assert stamps == (1, True)


def test_two_rows_of_one_existing_key_are_refused(store: ServingStore) -> None:
    """A second row of a key already in the day is a key violation, not a silent update."""
    store.replace_days([offline(DAYS[0], ["o1"], 1, "first")])
    with pytest.raises(Exception, match="(?i)duplicate|unique"):
        store.replace_days([offline(DAYS[0], ["o1", "o1"], 2, "second")])
    assert rows_of(store, DAYS[0]) == [("o1", "p1", 10, 1, 100, 1, 100, "offline")]
    assert store.reconciled_days() == {DAYS[0]: "first"}


def test_two_rows_of_one_key_in_a_new_day_are_refused(store: ServingStore) -> None:
    """The first write of a day (a plain INSERT in the DuckDB store) refuses a repeated key too,
    and leaves the other days and their markers as they were."""
    store.replace_days([offline(DAYS[0], ["o1"], 1, "first")])
    with pytest.raises(Exception, match="(?i)duplicate|unique"):
        store.replace_days([offline(DAYS[1], ["o2", "o2"], 2, "second")])
    assert rows_of(store, DAYS[1]) == []
    assert rows_of(store, DAYS[0]) == [("o1", "p1", 10, 1, 100, 1, 100, "offline")]
    assert store.reconciled_days() == {DAYS[0]: "first"}
