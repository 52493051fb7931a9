"""Contract rules 1-2 (deduplicate, join) on the Polars engine, with hand-computed expectations.

Every run also asserts that the independent DuckDB reference agrees (see engine_runs.reconcile).
"""

from __future__ import annotations

from datetime import date

from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic

FIRST = "2026-01-01"  # ADRECON_START_DATE's default: the first partition
D = "2026-01-02"
DAY = date.fromisoformat(D)


def test_duplicate_click_keeps_earliest_clicked_at(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p1", 100, f"{D}T09:00:00"),
            emission("e2", "o1", "p2", 200, f"{D}T09:00:00"),
        ],
    )
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T10:00:05")], "a")
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e2", "o1", f"{D}T10:00:03")], "b")
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.join.clicks_in == 2 and run.join.duplicate_clicks == 1
    assert run.statistics == [
        (DAY, "o1", "p1", 1, 0, 0, 0, 0),
        (DAY, "o1", "p2", 1, 1, 200, 0, 0),
    ]


def test_click_tie_on_clicked_at_keeps_smallest_emission_id(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p1", 100, f"{D}T09:00:00"),
            emission("e2", "o1", "p2", 200, f"{D}T09:00:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [click("c1", "e2", "o1", f"{D}T10:00:00"), click("c1", "e1", "o1", f"{D}T10:00:00")],
    )
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [
        (DAY, "o1", "p1", 1, 1, 100, 0, 0),
        (DAY, "o1", "p2", 1, 0, 0, 0, 0),
    ]


def test_click_tie_on_clicked_at_and_emission_keeps_smallest_offer_id(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o2", "p1", 100, f"{D}T09:00:00"),
            emission("e1", "o1", "p1", 200, f"{D}T09:00:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [click("c1", "e1", "o2", f"{D}T10:00:00"), click("c1", "e1", "o1", f"{D}T10:00:00")],
    )
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [
        (DAY, "o1", "p1", 1, 1, 200, 0, 0),
        (DAY, "o2", "p1", 1, 0, 0, 0, 0),
    ]


def test_click_tie_up_to_offer_keeps_smallest_user_id(paths: Paths) -> None:
    """u1 already clicked o1 three times in the window, so the kept row is a flood only if the
    tie-break keeps user u1 over u2."""
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o1", "p1", 100, f"{D}T09:00:00")])
    earlier = [click(f"c{n}", "e1", "o1", f"{D}T10:0{n}:00", user_id="u1") for n in (1, 2, 3)]
    duplicates = [
        click("c9", "e1", "o1", f"{D}T10:05:00", user_id="u2"),
        click("c9", "e1", "o1", f"{D}T10:05:00", user_id="u1"),
    ]
    write_topic(paths.lake, Topic.CLICKS, D, earlier + duplicates)
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": None, "c2": None, "c3": None, "c9": "click_flood"}


def test_click_tie_up_to_user_keeps_smallest_ip_as_text(paths: Paths) -> None:
    """'10.0.0.1' < '9.0.0.1' as strings (not as numbers): the denylisted row is kept."""
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o1", "p1", 100, f"{D}T09:00:00")])
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [
            click("c1", "e1", "o1", f"{D}T10:00:00", ip="9.0.0.1"),
            click("c1", "e1", "o1", f"{D}T10:00:00", ip="10.0.0.1"),
        ],
    )
    write_denylist(paths.lake, ["10.0.0.0/8"])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": "denylisted_ip"}


def test_duplicate_emission_keeps_earliest_emitted_at(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p1", 300, f"{D}T09:00:00"),
            emission("e1", "o1", "p2", 500, f"{D}T08:00:00"),
        ],
    )
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T10:00:00")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.join.duplicate_emissions == 1
    assert run.statistics == [(DAY, "o1", "p2", 1, 1, 500, 0, 0)]


def test_emission_tie_on_emitted_at_keeps_smallest_cost(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p1", 300, f"{D}T09:00:00"),
            emission("e1", "o1", "p2", 200, f"{D}T09:00:00"),
        ],
    )
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T10:00:00")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [(DAY, "o1", "p2", 1, 1, 200, 0, 0)]


def test_emission_tie_on_emitted_at_and_cost_keeps_smallest_placement(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p2", 200, f"{D}T09:00:00"),
            emission("e1", "o1", "p1", 200, f"{D}T09:00:00"),
        ],
    )
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T10:00:00")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [(DAY, "o1", "p1", 1, 1, 200, 0, 0)]


def test_click_after_midnight_joins_previous_day_emission(paths: Paths) -> None:
    write_topic(
        paths.lake, Topic.EMISSIONS, FIRST, [emission("e1", "o1", "p1", 700, f"{FIRST}T23:59:59")]
    )
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T00:00:01")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.join.matched_previous_day == 1
    assert run.reasons == {"c1": None}
    # The key's row on D: no emission of D, one valid click priced by the D-1 emission.
    assert run.statistics == [(DAY, "o1", "p1", 0, 1, 700, 0, 0)]


def test_first_partition_ignores_the_day_before_even_if_present(paths: Paths) -> None:
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        "2025-12-31",
        [emission("e1", "o1", "p1", 700, "2025-12-31T23:59:00")],
    )
    write_topic(paths.lake, Topic.CLICKS, FIRST, [click("c1", "e1", "o1", f"{FIRST}T00:01:00")])
    run = reconcile(paths.lake, paths.warehouse, FIRST)
    assert run.reasons == {"c1": "no_emission"}
    assert run.statistics == []


def test_emission_key_on_both_days_keeps_previous_day_row_and_is_not_counted_on_d(
    paths: Paths,
) -> None:
    write_topic(
        paths.lake, Topic.EMISSIONS, FIRST, [emission("e1", "o1", "p1", 100, f"{FIRST}T22:00:00")]
    )
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p2", 50, f"{D}T01:00:00"),
            emission("e2", "o1", "p2", 50, f"{D}T01:00:00"),
        ],
    )
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T02:00:00")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.join.emissions_of_day == 1
    assert run.statistics == [
        (DAY, "o1", "p1", 0, 1, 100, 0, 0),
        (DAY, "o1", "p2", 1, 0, 0, 0, 0),
    ]


def test_click_on_emission_two_days_before_is_an_orphan(paths: Paths) -> None:
    write_topic(
        paths.lake, Topic.EMISSIONS, FIRST, [emission("e1", "o1", "p1", 100, f"{FIRST}T23:00:00")]
    )
    write_topic(
        paths.lake, Topic.CLICKS, "2026-01-03", [click("c1", "e1", "o1", "2026-01-03T00:10:00")]
    )
    run = reconcile(paths.lake, paths.warehouse, "2026-01-03")
    assert run.reasons == {"c1": "no_emission"}
    assert run.join.orphan_clicks == 1
    assert run.statistics == []


def test_click_matches_only_its_own_offer(paths: Paths) -> None:
    """The join key is (emission_id, offer_id): the same emission_id with another offer is not
    a match."""
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o1", "p1", 100, f"{D}T09:00:00")])
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o2", f"{D}T10:00:00")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": "no_emission"}
    assert run.statistics == [(DAY, "o1", "p1", 1, 0, 0, 0, 0)]


def test_missing_day_folders_are_an_empty_day(paths: Paths) -> None:
    write_denylist(paths.lake, [])  # a lake always has one (contract 2); no day folder at all
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {}
    assert run.statistics == []
    assert run.totals.rows == 0


def test_folders_with_no_files_or_empty_files_are_an_empty_day(paths: Paths) -> None:
    write_topic(paths.lake, Topic.EMISSIONS, D, [])
    folder = paths.lake / "clicks" / f"date_partition={D}"
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").touch()
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {}
    assert run.statistics == []


def test_missing_previous_day_folder_counts_as_empty(paths: Paths) -> None:
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o1", "p1", 100, f"{D}T09:00:00")])
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [click("c1", "e1", "o1", f"{D}T10:00:00"), click("c2", "e0", "o1", f"{D}T00:00:10")],
    )
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": None, "c2": "no_emission"}
    assert run.statistics == [(DAY, "o1", "p1", 1, 1, 100, 0, 0)]


def test_click_tie_breaks_apply_in_contract_order(paths: Paths) -> None:
    """Each pair disagrees on the next two tie-break columns, so only the contract's order
    (emission_id before offer_id, user_id before ip) keeps the expected row:
    c1 keeps (e1, o2) over (e2, o1); c2 keeps (u1, 9.0.0.1) over (u2, 10.0.0.1), not denylisted."""
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o2", "p1", 100, f"{D}T09:00:00"),
            emission("e2", "o1", "p2", 200, f"{D}T09:00:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [
            click("c1", "e2", "o1", f"{D}T10:00:00", user_id="u7"),
            click("c1", "e1", "o2", f"{D}T10:00:00", user_id="u7"),
            click("c2", "e1", "o2", f"{D}T11:00:00", user_id="u2", ip="10.0.0.1"),
            click("c2", "e1", "o2", f"{D}T11:00:00", user_id="u1", ip="9.0.0.1"),
        ],
    )
    write_denylist(paths.lake, ["10.0.0.0/8"])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": None, "c2": None}
    assert run.statistics == [
        (DAY, "o1", "p2", 1, 0, 0, 0, 0),
        (DAY, "o2", "p1", 1, 2, 200, 0, 0),
    ]
