"""Contract rule 4 (aggregate per offer and placement) on the Polars engine.

Every run also asserts that the independent DuckDB reference agrees (see engine_runs.reconcile).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from adrecon_assets.rules import Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic

FIRST = "2026-01-01"
D = "2026-01-02"
DAY = date.fromisoformat(D)


def test_statistics_split_valid_and_refunded_clicks_per_offer_and_placement(paths: Paths) -> None:
    """Hand-computed: (o1, p1) has e1, e2 (emissions 2): c1 valid 100, c2 too_fast 100;
    (o1, p2) has e3 (emissions 1): c3 valid 250, c4 denylisted 250; (o2, p1) has e4, e5 and
    no click; c5 is an orphan and appears nowhere."""
    write_topic(
        paths.lake,
        Topic.EMISSIONS,
        D,
        [
            emission("e1", "o1", "p1", 100, f"{D}T08:00:00"),
            emission("e2", "o1", "p1", 100, f"{D}T09:00:00"),
            emission("e3", "o1", "p2", 250, f"{D}T09:00:00"),
            emission("e4", "o2", "p1", 10, f"{D}T09:00:00"),
            emission("e5", "o2", "p1", 10, f"{D}T09:30:00"),
        ],
    )
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [
            click("c1", "e1", "o1", f"{D}T10:00:00", user_id="u1"),
            click("c2", "e2", "o1", f"{D}T09:00:00.2", user_id="u2"),
            click("c3", "e3", "o1", f"{D}T10:00:00", user_id="u3"),
            click("c4", "e3", "o1", f"{D}T10:00:00", user_id="u4", ip="203.0.113.9"),
            click("c5", "e6", "o1", f"{D}T10:00:00", user_id="u5"),
        ],
    )
    write_denylist(paths.lake, ["203.0.113.0/24"])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [
        (DAY, "o1", "p1", 2, 1, 100, 1, 100),
        (DAY, "o1", "p2", 1, 1, 250, 1, 250),
        (DAY, "o2", "p1", 2, 0, 0, 0, 0),
    ]
    assert (run.totals.rows, run.totals.emissions, run.totals.clicks) == (3, 5, 2)
    assert (run.totals.cost_micros, run.totals.fraud_clicks, run.totals.refund_micros) == (
        350,
        2,
        350,
    )
    assert run.join.orphan_clicks == 1


def test_placement_of_a_click_comes_from_its_matched_emission(paths: Paths) -> None:
    """The same emission_id shows o1 on p1 yesterday and o2 on p2 today; each click takes the
    placement of its own (emission_id, offer_id) row."""
    write_topic(
        paths.lake, Topic.EMISSIONS, FIRST, [emission("e1", "o1", "p1", 40, f"{FIRST}T23:00:00")]
    )
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o2", "p2", 60, f"{D}T00:30:00")])
    write_topic(
        paths.lake,
        Topic.CLICKS,
        D,
        [click("c1", "e1", "o1", f"{D}T01:00:00"), click("c2", "e1", "o2", f"{D}T01:00:00")],
    )
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [
        (DAY, "o1", "p1", 0, 1, 40, 0, 0),
        (DAY, "o2", "p2", 1, 1, 60, 0, 0),
    ]


def test_only_orphan_clicks_give_no_rows(paths: Paths) -> None:
    write_topic(paths.lake, Topic.EMISSIONS, D, [])
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T10:00:00")])
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": "no_emission"}
    assert run.statistics == []
    assert run.flags.reasons["no_emission"] == 1


def test_money_is_summed_exactly_as_integer_micros(paths: Paths) -> None:
    """2**53 + 1 cannot be held by a float64; two of them must sum to exactly 2**54 + 2."""
    cost = 2**53 + 1
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o1", "p1", cost, f"{D}T08:00:00")])
    clicks = [click(f"c{n}", "e1", "o1", f"{D}T1{n}:00:00", user_id=f"u{n}") for n in (1, 2)]
    write_topic(paths.lake, Topic.CLICKS, D, clicks)
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [(DAY, "o1", "p1", 1, 2, 2 * cost, 0, 0)]
    written = pl.read_parquet(
        Warehouse(paths.warehouse).folder(Dataset.RECONCILED_STATISTICS, DAY) / "*.parquet"
    )
    measures = ["emissions", "clicks", "cost_micros", "fraud_clicks", "refund_micros"]
    assert all(written.schema[name] == pl.Int64 for name in measures)
    assert written.schema["date"] == pl.Date
