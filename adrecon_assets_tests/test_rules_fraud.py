"""Contract rule 3 (one fraud_reason per click, first that applies) on the Polars engine.

Every run also asserts that the independent DuckDB reference agrees (see engine_runs.reconcile).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import DayRun, reconcile
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic

D = "2026-01-02"
DAY = date.fromisoformat(D)
DENYLISTED_IP = "198.51.100.7"


def run_day(
    paths: Paths,
    clicks: list[dict[str, Any]],
    denylist: list[str] | None = None,
    extra_emissions: list[dict[str, Any]] | None = None,
) -> DayRun:
    """Day D with emission e1 (offer o1, placement p1, 100 micros) long before every click."""
    emissions = [emission("e1", "o1", "p1", 100, f"{D}T00:00:00"), *(extra_emissions or [])]
    write_topic(paths.lake, Topic.EMISSIONS, D, emissions)
    write_topic(paths.lake, Topic.CLICKS, D, clicks)
    if denylist is not None:
        write_denylist(paths.lake, denylist)
    return reconcile(paths.lake, paths.warehouse, D)


def test_gap_of_0_999999_s_is_too_fast_but_exactly_1_s_is_not(paths: Paths) -> None:
    run = run_day(
        paths,
        [
            click("c1", "e2", "o1", f"{D}T10:00:00.999999", user_id="u1"),
            click("c2", "e3", "o1", f"{D}T10:00:01", user_id="u2"),
        ],
        extra_emissions=[
            emission("e2", "o1", "p1", 100, f"{D}T10:00:00"),
            emission("e3", "o1", "p1", 100, f"{D}T10:00:00"),
        ],
    )
    assert run.reasons == {"c1": "too_fast", "c2": None}


def test_click_before_its_emission_is_too_fast(paths: Paths) -> None:
    run = run_day(
        paths,
        [click("c1", "e2", "o1", f"{D}T09:59:59")],
        extra_emissions=[emission("e2", "o1", "p1", 100, f"{D}T10:00:00")],
    )
    assert run.reasons == {"c1": "too_fast"}


def test_reasons_follow_precedence_and_every_click_counts_for_flood(paths: Paths) -> None:
    """u1 clicks o1 seven times; hand-computed reasons:
    c1-c3: fewer than 3 earlier clicks, normal IP -> valid;
    c4: orphan (e9), denylisted IP, 3 earlier -> no_emission beats the rest;
    c5: denylisted IP, 4 earlier -> denylisted_ip beats click_flood;
    c6: 0.5 s after its emission, denylisted IP, 4 earlier in window -> too_fast;
    c7: c2 (exactly 600 s before) to c6 are 5 earlier in the window, whatever their reasons."""
    run = run_day(
        paths,
        [
            click("c1", "e1", "o1", f"{D}T10:00:00"),
            click("c2", "e1", "o1", f"{D}T10:01:00"),
            click("c3", "e1", "o1", f"{D}T10:02:00"),
            click("c4", "e9", "o1", f"{D}T10:03:00", ip=DENYLISTED_IP),
            click("c5", "e1", "o1", f"{D}T10:04:00", ip=DENYLISTED_IP),
            click("c6", "e2", "o1", f"{D}T10:10:00.5", ip=DENYLISTED_IP),
            click("c7", "e1", "o1", f"{D}T10:11:00"),
        ],
        denylist=["198.51.100.0/24"],
        extra_emissions=[emission("e2", "o1", "p1", 100, f"{D}T10:10:00")],
    )
    assert run.reasons == {
        "c1": None,
        "c2": None,
        "c3": None,
        "c4": "no_emission",
        "c5": "denylisted_ip",
        "c6": "too_fast",
        "c7": "click_flood",
    }
    assert run.flags.reasons == {
        "no_emission": 1,
        "too_fast": 1,
        "denylisted_ip": 1,
        "click_flood": 1,
    }
    assert run.statistics == [(DAY, "o1", "p1", 2, 3, 300, 3, 300)]


def test_three_earlier_clicks_make_a_flood_but_two_do_not(paths: Paths) -> None:
    run = run_day(paths, [click(f"c{n}", "e1", "o1", f"{D}T10:0{n}:00") for n in range(1, 5)])
    assert run.reasons == {"c1": None, "c2": None, "c3": None, "c4": "click_flood"}


def test_click_exactly_600_s_earlier_is_inside_the_flood_window(paths: Paths) -> None:
    clicks = [
        click("c1", "e1", "o1", f"{D}T10:00:00"),
        click("c2", "e1", "o1", f"{D}T10:00:01"),
        click("c3", "e1", "o1", f"{D}T10:00:02"),
        click("c4", "e1", "o1", f"{D}T10:10:00"),
    ]
    assert run_day(paths, clicks).reasons["c4"] == "click_flood"


def test_click_600_000001_s_earlier_is_outside_the_flood_window(paths: Paths) -> None:
    clicks = [
        click("c1", "e1", "o1", f"{D}T10:00:00"),
        click("c2", "e1", "o1", f"{D}T10:00:01"),
        click("c3", "e1", "o1", f"{D}T10:00:02"),
        click("c4", "e1", "o1", f"{D}T10:10:00.000001"),
    ]
    assert run_day(paths, clicks).reasons["c4"] is None


def test_clicks_at_the_same_instant_are_ordered_by_click_id(paths: Paths) -> None:
    """Only the click with the largest click_id has 3 others before it; file order is ignored."""
    ids = ["d", "b", "a", "c"]
    run = run_day(paths, [click(click_id, "e1", "o1", f"{D}T10:00:00") for click_id in ids])
    assert run.reasons == {"a": None, "b": None, "c": None, "d": "click_flood"}


def test_flood_window_slides_with_each_click(paths: Paths) -> None:
    """Clicks every 200 s: the one at 600 s has 0, 200, 400 in its window; at 800 s it has
    200, 400, 600; at 1000 s, 400, 600, 800."""
    times = ["10:00:00", "10:03:20", "10:06:40", "10:10:00", "10:13:20", "10:16:40"]
    run = run_day(paths, [click(f"c{n}", "e1", "o1", f"{D}T{t}") for n, t in enumerate(times)])
    assert run.reasons == {
        "c0": None,
        "c1": None,
        "c2": None,
        "c3": "click_flood",
        "c4": "click_flood",
        "c5": "click_flood",
    }


def test_flood_counts_only_the_same_user_and_offer(paths: Paths) -> None:
    run = run_day(
        paths,
        [
            click("c1", "e1", "o1", f"{D}T10:00:00", user_id="u1"),
            click("c2", "e1", "o1", f"{D}T10:00:01", user_id="u1"),
            click("c3", "e2", "o2", f"{D}T10:00:02", user_id="u1"),
            click("c4", "e1", "o1", f"{D}T10:00:03", user_id="u2"),
            click("c5", "e1", "o1", f"{D}T10:00:04", user_id="u1"),
        ],
        extra_emissions=[emission("e2", "o2", "p1", 100, f"{D}T00:00:00")],
    )
    assert set(run.reasons.values()) == {None}


def test_flood_counts_deduplicated_clicks_only(paths: Paths) -> None:
    """Three copies of c1 are one click, so c3 has two earlier clicks, not four."""
    copies = [click("c1", "e1", "o1", f"{D}T10:00:00") for _ in range(3)]
    others = [click("c2", "e1", "o1", f"{D}T10:00:01"), click("c3", "e1", "o1", f"{D}T10:00:02")]
    run = run_day(paths, copies + others)
    assert run.reasons == {"c1": None, "c2": None, "c3": None}


def test_clicks_with_other_reasons_count_toward_a_flood(paths: Paths) -> None:
    run = run_day(
        paths,
        [
            click("c1", "e9", "o1", f"{D}T10:00:00"),
            click("c2", "e2", "o1", f"{D}T10:00:00.5"),
            click("c3", "e1", "o1", f"{D}T10:00:01", ip=DENYLISTED_IP),
            click("c4", "e1", "o1", f"{D}T10:00:02"),
        ],
        denylist=[f"{DENYLISTED_IP}/32"],
        extra_emissions=[emission("e2", "o1", "p1", 100, f"{D}T10:00:00")],
    )
    assert run.reasons == {
        "c1": "no_emission",
        "c2": "too_fast",
        "c3": "denylisted_ip",
        "c4": "click_flood",
    }


def one_click_per_ip(ips: list[str]) -> list[dict[str, Any]]:
    """One click per address, each by its own user so that no flood interferes."""
    return [
        click(f"c{n}", "e1", "o1", f"{D}T10:00:00", user_id=f"u{n}", ip=ip)
        for n, ip in enumerate(ips)
    ]


def denylisted_ips(run: DayRun, ips: list[str]) -> list[str]:
    return [ip for n, ip in enumerate(ips) if run.reasons[f"c{n}"] == "denylisted_ip"]


@pytest.mark.parametrize(
    ("cidrs", "ips", "expected"),
    [
        pytest.param(
            ["192.0.2.0/24"],
            ["192.0.1.255", "192.0.2.0", "192.0.2.255", "192.0.3.0"],
            ["192.0.2.0", "192.0.2.255"],
            id="network_and_broadcast_in_neighbours_out",
        ),
        pytest.param(
            ["203.0.113.5/32"],
            ["203.0.113.4", "203.0.113.5", "203.0.113.6"],
            ["203.0.113.5"],
            id="slash_32_is_one_address",
        ),
        pytest.param(
            ["0.0.0.0/0"],
            ["0.0.0.0", "10.0.0.1", "255.255.255.255"],
            ["0.0.0.0", "10.0.0.1", "255.255.255.255"],
            id="slash_0_is_every_address",
        ),
        pytest.param(
            ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "11.0.0.0/8"],
            ["9.255.255.255", "10.1.2.3", "11.255.255.255", "12.0.0.0"],
            ["10.1.2.3", "11.255.255.255"],
            id="overlapping_and_adjacent_blocks",
        ),
        pytest.param(
            ["172.16.5.9/12"],
            ["172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0"],
            ["172.16.0.0", "172.31.255.255"],
            id="host_bits_in_the_cidr_are_ignored",
        ),
        pytest.param([], ["192.0.2.1", "0.0.0.0"], [], id="empty_denylist"),
    ],
)
def test_denylisted_ip_ranges(
    paths: Paths, cidrs: list[str], ips: list[str], expected: list[str]
) -> None:
    run = run_day(paths, one_click_per_ip(ips), denylist=cidrs)
    assert denylisted_ips(run, ips) == expected
    # Overlapping blocks must not duplicate a click: every click counted once.
    assert run.statistics == [
        (DAY, "o1", "p1", 1, len(ips) - len(expected), 100 * (len(ips) - len(expected)),
         len(expected), 100 * len(expected)),
    ]  # fmt: skip


def test_missing_denylist_file_flags_no_ip(paths: Paths) -> None:
    ips = ["192.0.2.1", "10.0.0.1"]
    run = run_day(paths, one_click_per_ip(ips))
    assert denylisted_ips(run, ips) == []


def test_clicks_of_the_previous_day_do_not_count_toward_a_flood(paths: Paths) -> None:
    """Only clicks of D count: three clicks just before midnight leave 00:01 on D valid."""
    previous = "2026-01-01"
    write_topic(
        paths.lake,
        Topic.CLICKS,
        previous,
        [click(f"c{n}", "e1", "o1", f"{previous}T23:5{n}:00") for n in (7, 8, 9)],
    )
    run = run_day(paths, [click("c4", "e1", "o1", f"{D}T00:01:00")])
    assert run.reasons == {"c4": None}
