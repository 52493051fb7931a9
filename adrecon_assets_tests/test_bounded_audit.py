"""reconciled_statistics' audit and drift metadata on a day of 400,000 (offer_id, placement)
keys under a 64 MB DuckDB memory limit (issue 24): the day's staged rows, recount, previous
rows and their full joins need several times that, so DuckDB must spill, and the results are
still exact. Every expectation follows from the key number `i` (see `write_day`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from adrecon_assets import rules
from adrecon_assets.checks import reconciliation as recon_checks
from adrecon_assets.checks.thresholds import CheckThresholds
from adrecon_assets.metadata.markdown import corrections_metadata
from adrecon_assets.serving import DayTotals

KEYS = 400_000
DAY = "2026-01-02"
COST, FRAUD_COST = 1_000_000, 250_000  # micros: 1.00 and 0.25


def key_frame() -> pl.DataFrame:
    index = pl.int_range(0, KEYS, eager=True).alias("i")
    return pl.DataFrame(index).with_columns(
        offer_id=pl.format("offer-{}", pl.col("i").cast(pl.String).str.zfill(7)),
        placement=pl.format("placement-{}", (pl.col("i") % 40).cast(pl.String).str.zfill(2)),
    )


def write(frame: pl.DataFrame, folder: Path) -> Path:
    folder.mkdir()
    frame.write_parquet(folder / "part-0.parquet")
    return folder


def write_day(root: Path) -> tuple[Path, Path, pl.DataFrame]:
    """Per key i: 3 emissions; one valid click of COST micros; for i % 4 == 0 also a
    too_fast click of FRAUD_COST (refunded); for i % 10 == 0 also a no_emission click (not counted).
    Returns fraud_flags, emission_counts and the rule 4 rows."""
    keys = key_frame()
    clicks = pl.concat(
        [
            keys.with_columns(fraud_reason=pl.lit(None, pl.String), click_cost_micros=COST),
            keys.filter(pl.col("i") % 4 == 0).with_columns(
                fraud_reason=pl.lit("too_fast"), click_cost_micros=FRAUD_COST
            ),
            keys.filter(pl.col("i") % 10 == 0).with_columns(
                fraud_reason=pl.lit("no_emission"), click_cost_micros=7
            ),
        ]
    ).drop("i")
    fraud = (pl.col("i") % 4 == 0).cast(pl.Int64)
    rows = keys.with_columns(
        date=pl.lit(DAY).str.to_date(),
        emissions=pl.lit(3, pl.Int64),
        clicks=pl.lit(1, pl.Int64),
        cost_micros=pl.lit(COST, pl.Int64),
        fraud_clicks=fraud,
        refund_micros=fraud * FRAUD_COST,
    )
    counts = keys.select("offer_id", "placement", emissions=pl.lit(3, pl.Int64))
    return write(clicks, root / "flagged"), write(counts, root / "counts"), rows


@pytest.fixture
def small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "AUDIT_MEMORY_LIMIT", "64MB")
    monkeypatch.setattr(rules, "AUDIT_THREADS", 1)


def test_totals_balance_is_exact_on_a_day_larger_than_the_memory_limit(
    tmp_path: Path, small_memory: None
) -> None:
    flagged, counts, rows = write_day(tmp_path)
    # Staged with three faults: key 5 counts 2 clicks, key 7 is missing, one key is extra.
    staged = pl.concat(
        [
            rows.filter(pl.col("i") != 7).with_columns(
                clicks=pl.when(pl.col("i") == 5).then(2).otherwise(pl.col("clicks"))
            ),
            rows.head(1).with_columns(offer_id=pl.lit("offer-extra"), placement=pl.lit("p")),
        ]
    ).drop("i")
    results = recon_checks.statistics_check_results(
        write(staged, tmp_path / "staged"),
        DayTotals(None, 0, 0, 0, 0, 0, 0),
        flagged,
        counts,
        CheckThresholds(),
        spill_folder=tmp_path,
    )
    (check,) = [r for r in results if r.check_name == recon_checks.TOTALS_BALANCE]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == (
        "3 differences between the staged rows and the recount of fraud_flags: "
        "offer-0000005/placement-05: clicks 2 (recount 1); "
        "offer-0000007/placement-07: missing from the staged rows; "
        "offer-extra/p: staged but not in the recount"
    )
    metadata = {key: value.value for key, value in check.metadata.items()}
    # Recount: 400,000 keys x 3 emissions, 1 valid click of COST; 100,000 fraud clicks.
    # Staged: key 7 (3, 1, COST, 0, 0) is missing, the extra key is a copy of key 0 (3, 1,
    # COST, 1, FRAUD_COST) and key 5 has one more click.
    assert metadata == {
        "staged_rows": KEYS,
        "recount_rows": KEYS,
        "differences": 3,
        "staged_emissions": 3 * KEYS,
        "staged_clicks": KEYS + 1,
        "staged_cost_micros": COST * KEYS,
        "staged_fraud_clicks": KEYS // 4 + 1,
        "staged_refund_micros": FRAUD_COST * (KEYS // 4 + 1),
        "recount_emissions": 3 * KEYS,
        "recount_clicks": KEYS,
        "recount_cost_micros": COST * KEYS,
        "recount_fraud_clicks": KEYS // 4,
        "recount_refund_micros": FRAUD_COST * KEYS // 4,
    }


def test_drift_metadata_is_exact_on_a_day_larger_than_the_memory_limit(
    tmp_path: Path, small_memory: None
) -> None:
    _, _, rows = write_day(tmp_path)
    reconciled = write(rows.drop("i"), tmp_path / "reconciled")
    # The online layer counted no fraud, and 2 clicks (2 x COST) on every key i % 5 == 0.
    previous = rows.with_columns(
        clicks=pl.when(pl.col("i") % 5 == 0).then(2).otherwise(1),
        cost_micros=pl.when(pl.col("i") % 5 == 0).then(2 * COST).otherwise(COST),
        fraud_clicks=pl.lit(0, pl.Int64),
        refund_micros=pl.lit(0, pl.Int64),
        source=pl.lit("online"),
    ).drop("i", "date")
    previous_file = tmp_path / "previous_rows.parquet"
    previous.write_parquet(previous_file)
    values = corrections_metadata(previous_file, reconciled, "online", spill_folder=tmp_path)
    # Billed clicks and micros, previous -> reconciled: i % 20 == 0 (20,000 keys): 2 -> 2,
    # 2.00 -> 1.25; i % 5 == 0 only (60,000): 2 -> 1, 2.00 -> 1.00; i % 4 == 0 only (80,000):
    # 1 -> 2, 1.00 -> 1.25.
    assert (values["lost_clicks"], values["lost_micros"]) == (80_000, 80_000 * FRAUD_COST)
    assert (values["double_counted_clicks"], values["double_counted_micros"]) == (
        60_000,
        20_000 * (2 * COST - COST - FRAUD_COST) + 60_000 * COST,
    )
    assert (values["billed_fraud_clicks"], values["billed_fraud_micros"]) == (
        100_000,
        100_000 * FRAUD_COST,
    )
    # Largest corrections: -1.00 on each i % 5 == 0 key, listed by key (Markdown escapes "-");
    # 160,000 keys changed (i % 5 == 0 or i % 4 == 0).
    table = values["largest_corrections"].value.splitlines()
    assert table[2:4] == [
        "| offer\\-0000000 | placement\\-00 | 2 | 1 | 1 | 2.00 | 1.00 | -1.00 |",
        "| offer\\-0000005 | placement\\-05 | 2 | 1 | 0 | 2.00 | 1.00 | -1.00 |",
    ]
    assert table[-1] == "159990 more keys changed."
