"""The drift metadata of reconciled_statistics on Arrow tables (as the asset passes them):
hand-computed cases, and agreement with a per-key Python loop on random days."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from adrecon_assets.metadata.drift import Key, KeyTotals, drift
from adrecon_assets.metadata.markdown import corrections_metadata, largest_corrections_markdown


def serving_rows(totals: dict[Key, KeyTotals], source: str | None = None) -> pa.Table:
    """Rows shaped like `serving.day_rows` (emissions and source are not measures of drift)."""
    columns = {
        "offer_id": [key[0] for key in totals],
        "placement": [key[1] for key in totals],
        "emissions": [7] * len(totals),
        "clicks": [row.clicks for row in totals.values()],
        "cost_micros": [row.cost_micros for row in totals.values()],
        "fraud_clicks": [row.fraud_clicks for row in totals.values()],
        "refund_micros": [row.refund_micros for row in totals.values()],
    }
    if source is not None:
        columns["source"] = [source] * len(totals)
    return pa.table(columns)


# (a, y) vanished, (b, x) is unchanged, (c, z) is new; (a, x) lost billed clicks to fraud.
PREVIOUS = {
    ("a", "x"): KeyTotals(5, 5_000_000),
    ("a", "y"): KeyTotals(2, 2_000_000),
    ("b", "x"): KeyTotals(1, 1_000_000),
}
RECONCILED = {
    ("a", "x"): KeyTotals(3, 3_000_000, 1, 1_000_000),
    ("b", "x"): KeyTotals(1, 1_000_000),
    ("c", "z"): KeyTotals(4, 4_000_000),
}


def test_keys_on_one_side_count_as_zero_on_the_other() -> None:
    result = drift(serving_rows(PREVIOUS, "online"), serving_rows(RECONCILED))
    # Billed (valid + fraud): (a,x) 5 -> 4 and (a,y) 2 -> 0 double-counted 1 + 2 clicks,
    # 1.00 + 2.00; (c,z) 0 -> 4 lost 4 clicks, 4.00; fraud 0 -> 1 click, 1.00 billed.
    assert (result.double_counted_clicks, result.double_counted_micros) == (3, 3_000_000)
    assert (result.lost_clicks, result.lost_micros) == (4, 4_000_000)
    assert (result.billed_fraud_clicks, result.billed_fraud_micros) == (1, 1_000_000)
    # 8 + 4 - 3 - 1 = 8 valid clicks on both sides, likewise 8.00.
    assert result.previous == KeyTotals(8, 8_000_000, 0, 0)
    assert result.reconciled == KeyTotals(8, 8_000_000, 1, 1_000_000)


def test_largest_corrections_break_ties_by_key_and_count_the_rest() -> None:
    table = largest_corrections_markdown(
        serving_rows(PREVIOUS, "online"), serving_rows(RECONCILED), limit=2
    )
    # (c,z) +4.00 first; (a,x) and (a,y) both -2.00, (a,x) first by key; (b,x) unchanged.
    assert table.splitlines()[2:] == [
        "| c | z | 0 | 4 | 0 | 0.00 | 4.00 | 4.00 |",
        "| a | x | 5 | 3 | 1 | 5.00 | 3.00 | -2.00 |",
        "",
        "1 more keys changed.",
    ]


def test_identical_days_change_nothing() -> None:
    rows = serving_rows(RECONCILED)
    assert largest_corrections_markdown(rows, rows) == "No (offer_id, placement) changed."
    result = drift(rows, rows)
    assert (result.lost_clicks, result.double_counted_clicks, result.billed_fraud_clicks) == (
        0,
        0,
        0,
    )


def test_a_day_never_served_before_has_every_billed_click_lost() -> None:
    values = corrections_metadata(serving_rows({}, "online"), serving_rows(RECONCILED), None)
    # Billed: (a,x) 3 + 1 fraud, (b,x) 1, (c,z) 4 = 9 clicks; (3.00 + 1.00) + 1.00 + 4.00 = 9.00.
    assert (values["lost_clicks"], values["lost_micros"]) == (9, 9_000_000)
    assert values["online_drift"].value.startswith("No rows of this day")


def loop_drift(previous: dict[Key, KeyTotals], reconciled: dict[Key, KeyTotals]) -> list[int]:
    """The drift rule written as a per-key loop: the oracle for the vectorised version."""
    lost_c = lost_m = double_c = double_m = 0
    for key in previous.keys() | reconciled.keys():
        old, new = previous.get(key, KeyTotals()), reconciled.get(key, KeyTotals())
        lost_c += max(0, new.billed_clicks - old.billed_clicks)
        double_c += max(0, old.billed_clicks - new.billed_clicks)
        lost_m += max(0, new.billed_micros - old.billed_micros)
        double_m += max(0, old.billed_micros - new.billed_micros)
    return [lost_c, lost_m, double_c, double_m]


measures = st.builds(
    KeyTotals,
    st.integers(0, 50),
    st.integers(0, 10**12),
    st.integers(0, 5),
    st.integers(0, 10**9),
)
days = st.dictionaries(
    st.tuples(st.sampled_from(["o1", "o2", "o3"]), st.sampled_from(["top", "side", "é"])),
    measures,
    max_size=9,
)


@settings(max_examples=60, deadline=None)
@given(previous=days, reconciled=days)
def test_vectorised_drift_agrees_with_a_per_key_loop(
    previous: dict[Key, KeyTotals], reconciled: dict[Key, KeyTotals]
) -> None:
    result = drift(serving_rows(previous, "online"), serving_rows(reconciled))
    assert [
        result.lost_clicks,
        result.lost_micros,
        result.double_counted_clicks,
        result.double_counted_micros,
    ] == loop_drift(previous, reconciled)
    changed = sum(
        previous.get(key, KeyTotals()) != reconciled.get(key, KeyTotals())
        for key in previous.keys() | reconciled.keys()
    )
    table = largest_corrections_markdown(previous, reconciled, limit=100)
    listed = 0 if changed == 0 else len(table.splitlines()) - 2
    assert listed == changed
