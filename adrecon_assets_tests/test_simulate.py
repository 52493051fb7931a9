"""The simulator writes a contract lake with exact ground truth, and the pipeline finds it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adrecon_assets.definitions import ASSETS
from adrecon_assets.lake import SUCCESS_MARKER, Lake
from adrecon_assets.partitions import first_day
from adrecon_assets.rules import EMISSIONS_SCHEMA, JOIN_KEY, SCHEMAS, FraudReason, Topic
from adrecon_assets.warehouse import Dataset, Warehouse
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.reference import reference_day
from adrecon_assets_tests.test_pipeline import expected_rows, serving_rows
from adrecon_simulate import FaultRates, SimulationConfig, cli, generate_day, simulate
from adrecon_simulate.catalogue import build_catalogue
from adrecon_simulate.emission_copies import (
    bill_winning_terms,
    winning_terms,
    with_arrival,
)
from adrecon_simulate.labels import NO_FAULT
from adrecon_simulate.traffic import day_start_micros
from adrecon_simulate.writer import LATE_FILE, read_labels

START = date(2026, 3, 1)
CONTRACT_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def config_for(root: Path, days: int = 2, rows: int = 5_000, seed: int = 7) -> SimulationConfig:
    return SimulationConfig(
        lake=root / "lake",
        serving_db=root / "serving.duckdb",
        start=START,
        days=days,
        emissions_per_day=rows,
        seed=seed,
        files_per_day=3,
    )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> SimulationConfig:
    config = config_for(tmp_path_factory.mktemp("simulated"))
    simulate(config)
    return config


def day_files(config: SimulationConfig, topic: Topic, day: date) -> list[Path]:
    return [lake_file.path for lake_file in Lake(config.lake).partition(topic, day).files]


def read_day(config: SimulationConfig, topic: Topic, day: date) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(path) for path in day_files(config, topic, day)])


def test_lake_layout_and_file_schemas_match_the_contract(small_run: SimulationConfig) -> None:
    lake = Lake(small_run.lake)
    for day in small_run.days_list:
        for topic, schema in SCHEMAS.items():
            partition = lake.partition(topic, day)
            names = sorted(path.name for path in day_files(small_run, topic, day))
            assert partition.closed
            assert names[:3] == ["late-00000.parquet", "part-00000.parquet", "part-00001.parquet"]
            assert names[3:] == ["part-00002.parquet"]
            for path in day_files(small_run, topic, day):
                file_schema = pq.read_schema(path)
                assert file_schema.names == schema.column_names
                for column in schema.columns:
                    assert file_schema.field(column.name).type == CONTRACT_ARROW_TYPES[column.kind]
                table = pq.read_table(path)
                assert all(table.column(name).null_count == 0 for name in table.column_names)
    assert lake.denylist_path.read_text().splitlines()[0] == "cidr"
    assert len(lake.denylist()) >= 3
    assert read_day(small_run, Topic.EMISSIONS, START)["click_cost_micros"].min() >= 0


def test_every_timestamp_lies_inside_its_folders_day(small_run: SimulationConfig) -> None:
    for day in small_run.days_list:
        for topic, schema in SCHEMAS.items():
            stamps = read_day(small_run, topic, day)[schema.timestamp_column].dt.date()
            assert stamps.min() == day and stamps.max() == day


def test_late_files_are_newer_than_the_success_marker(small_run: SimulationConfig) -> None:
    for day in small_run.days_list:
        for topic in Topic:
            folder = Lake(small_run.lake).folder(topic, day)
            success = (folder / SUCCESS_MARKER).stat().st_mtime_ns
            assert (folder / LATE_FILE).stat().st_mtime_ns > success
            assert pq.read_metadata(folder / LATE_FILE).num_rows > 0


def test_labels_live_outside_the_lake_and_name_every_click(small_run: SimulationConfig) -> None:
    assert small_run.labels_root == small_run.lake.parent / "ground_truth"
    assert not list(small_run.lake.rglob("*labels*"))
    for day in small_run.days_list:
        labels = read_labels(small_run.labels_root, day)
        click_ids = read_day(small_run, Topic.CLICKS, day)["click_id"]
        assert labels["click_id"].is_unique().all()
        assert set(labels["click_id"]) == set(click_ids)
        assert labels["duplicate_copies"].sum() == click_ids.len() - click_ids.n_unique()
        assert (labels.filter(pl.col("fault") != NO_FAULT).height) > 0


def test_online_rows_billed_everything_and_missed_the_late_files(
    small_run: SimulationConfig,
) -> None:
    with duckdb.connect(str(small_run.serving_db), read_only=True) as connection:
        rows = connection.execute(
            "SELECT date, min(source), max(source), sum(emissions), sum(clicks), "
            "sum(fraud_clicks), sum(refund_micros) FROM offer_placement_stats "
            "GROUP BY date ORDER BY date"
        ).fetchall()
    assert [row[0] for row in rows] == small_run.days_list
    for day, first_source, last_source, emissions, clicks, fraud, refund in rows:
        assert (first_source, last_source) == ("online", "online")
        assert (fraud, refund) == (0, 0)
        late_emissions = pq.read_metadata(
            Lake(small_run.lake).folder(Topic.EMISSIONS, day) / LATE_FILE
        ).num_rows
        # Every on-time emission row, resent copies counted twice: 5000 originals and
        # 25 exact + 15 conflicting copies (+ 1 copy of the day before on the second day).
        emission_rows = read_day(small_run, Topic.EMISSIONS, day).height
        assert emission_rows == 5_040 + (day > START)
        assert emissions == emission_rows - late_emissions
        on_time = (
            read_day(small_run, Topic.CLICKS, day).height
            - pq.read_metadata(Lake(small_run.lake).folder(Topic.CLICKS, day) / LATE_FILE).num_rows
        )
        # It saw only on-time rows (duplicates included, orphans unplaceable) and lost 1-3 %.
        assert 0.9 * on_time < clicks < on_time


def test_same_seed_same_lake_and_labels(tmp_path: Path, small_run: SimulationConfig) -> None:
    again = config_for(tmp_path)
    simulate(again)
    other = config_for(tmp_path / "other", seed=8)
    simulate(other)
    for day in small_run.days_list:
        for topic in Topic:
            assert read_day(again, topic, day).equals(read_day(small_run, topic, day))
        assert read_labels(again.labels_root, day).equals(read_labels(small_run.labels_root, day))
        assert not read_day(other, Topic.CLICKS, day).equals(read_day(small_run, Topic.CLICKS, day))


def test_rates_of_a_50k_row_day_are_within_the_promised_ranges(tmp_path: Path) -> None:
    config = config_for(tmp_path, days=1, rows=50_000)
    yesterday = generate_day(config, START - timedelta(days=1))
    traffic = generate_day(
        config, START, carried_clicks=yesterday.spill, carried_emissions=yesterday.emission_spill
    )
    emissions, clicks = traffic.emissions, traffic.clicks
    originals = clicks.filter(~pl.col("is_copy"))
    copies = emissions.filter(pl.col("copy_kind") != "original")
    emissions = emissions.filter(pl.col("copy_kind") == "original")
    valid = originals.filter(pl.col("fault") == NO_FAULT).height
    invalid = clicks.height - valid
    assert 20 <= emissions["placement"].n_unique() <= 100
    assert emissions.group_by("emission_id").len()["len"].max() <= 6
    assert emissions.select(pl.struct("emission_id", "offer_id").is_unique().all()).item()
    assert 0.003 <= valid / emissions.height <= 0.02
    assert 0.05 <= invalid / clicks.height <= 0.10
    assert 0.01 <= clicks["is_copy"].sum() / clicks.height <= 0.03
    assert 0 < originals.filter(pl.col("fault") == "no_emission").height / clicks.height < 0.01
    # Emission copies at the configured shares of 50_000 original rows: 0.5 % exact, 0.3 %
    # conflicting (half later, half same time), 0.02 % re-stamped after midnight.
    assert dict(copies.group_by("copy_kind").len().iter_rows()) == {
        "exact": 250,
        "later": 75,
        "same_time": 75,
        "next_day": 10,
    }
    assert 0.005 <= copies.height / emissions.height <= 0.01
    # Zipf: the most shown offer is shown far more often than a typical one.
    shown = emissions.group_by("offer_id").len()["len"]
    assert shown.max() > 20 * shown.median()
    # Costs vary by offer, not per row.
    assert (
        emissions.group_by("offer_id")
        .agg(pl.col("click_cost_micros").n_unique())["click_cost_micros"]
        .max()
        == 1
    )
    assert emissions["click_cost_micros"].n_unique() > 100
    previous_day = originals.filter(pl.col("emission_id").str.starts_with("e20260228-"))
    assert previous_day.height > 0
    assert previous_day["clicked_at"].max().hour == 0


def key_frame(rows: list[tuple[int, int, int, int, int]]) -> pl.DataFrame:
    """Hand-built emission rows of START as (number, offer, placement, cost, emitted micros)."""
    columns = ["_number", "_offer", "_placement", "click_cost_micros", "_emitted"]
    return (
        pl.DataFrame(rows, schema=columns, orient="row")
        .with_columns(pl.lit(START.toordinal(), pl.Int64).alias("_day"))
        .select("_day", *columns)
    )


def test_winning_terms_follow_rule_1_earliest_then_cheapest_then_smallest_placement(
    tmp_path: Path,
) -> None:
    catalogue = build_catalogue(config_for(tmp_path))
    names = catalogue.placement_names.to_list()
    small, large = sorted([0, 1], key=lambda placement: names[placement])
    noon = day_start_micros(START) + 12 * 3_600_000_000
    originals = with_arrival(
        key_frame(
            [
                (0, 1, large, 500_000, noon),
                (1, 1, large, 500_000, noon),
                (2, 1, large, 500_000, noon),
                (3, 1, small, 200_000, noon),
                (4, 2, small, 200_000, noon),  # never resent: not among the winners
            ]
        )
    )
    copies = with_arrival(
        key_frame(
            [
                (0, 1, large, 300_000, noon),  # same time, cheaper: the copy wins
                (1, 1, small, 500_000, noon),  # same time and cost, smaller placement: wins
                (2, 1, small, 1_000, noon + 1),  # a microsecond later: loses however cheap
                (3, 1, small, 900_000, noon),  # same time, dearer: loses
            ]
        )
    ).with_columns(pl.Series("_row", [0, 1, 2, 3]))
    winners = winning_terms(catalogue, originals, copies).sort("emission_id")
    assert winners.rows() == [
        ("e20260301-0", "o00001", names[large], 300_000),
        ("e20260301-1", "o00001", names[small], 500_000),
        ("e20260301-2", "o00001", names[large], 500_000),
        ("e20260301-3", "o00001", names[small], 200_000),
    ]


def test_clicks_on_a_resent_key_are_billed_at_the_winning_terms() -> None:
    clicks = pl.DataFrame(
        {
            "click_id": ["c1", "c2", "c3", "c4"],
            "emission_id": ["e1", "e1", "e2", "e9"],
            "offer_id": ["o1", "o2", "o1", "o1"],
            "placement": ["home.top", "home.top", "mail.feed", None],
            "click_cost_micros": [500_000, 400_000, 200_000, None],
        }
    )
    winners = pl.DataFrame(
        {
            "emission_id": ["e1", "e2"],
            "offer_id": ["o1", "o1"],
            "placement": ["home.top", "feed.end"],
            "click_cost_micros": [300_000, 200_000],
        }
    )
    billed = bill_winning_terms(clicks, winners)
    assert billed.columns == clicks.columns
    assert billed.rows() == [
        ("c1", "e1", "o1", "home.top", 300_000),  # a cheaper copy won
        ("c2", "e1", "o2", "home.top", 400_000),  # another ad of the emission: untouched
        ("c3", "e2", "o1", "feed.end", 200_000),  # a smaller placement won
        ("c4", "e9", "o1", None, None),  # no emission at all: stays unbilled
    ]


def test_each_emission_copy_relates_to_its_original_as_its_kind(tmp_path: Path) -> None:
    config = config_for(tmp_path, days=1, rows=50_000)
    yesterday = generate_day(config, START - timedelta(days=1))
    traffic = generate_day(config, START, carried_emissions=yesterday.emission_spill)
    contract = EMISSIONS_SCHEMA.column_names
    originals = pl.concat(
        [day.emissions.filter(pl.col("copy_kind") == "original") for day in (yesterday, traffic)]
    ).select(contract)
    assert originals.select(pl.struct(*JOIN_KEY).is_unique().all()).item()
    copies = (
        traffic.emissions.filter(pl.col("copy_kind") != "original")
        .select(*contract, pl.col("copy_kind").cast(pl.String))
        .join(originals, on=list(JOIN_KEY), how="left", suffix="_original")
    )
    assert copies["emitted_at_original"].null_count() == 0  # every copy has its original
    same_terms = (pl.col("click_cost_micros") == pl.col("click_cost_micros_original")) & (
        pl.col("placement") == pl.col("placement_original")
    )
    same_time = pl.col("emitted_at") == pl.col("emitted_at_original")
    relation = copies.group_by("copy_kind").agg(
        pl.len().alias("rows"),
        (same_time & same_terms).sum().alias("exact"),
        (pl.col("emitted_at") > pl.col("emitted_at_original")).sum().alias("later"),
        (same_time & ~same_terms).sum().alias("same_time_other_terms"),
        (pl.col("emitted_at").dt.date() == START).sum().alias("emitted_today"),
        (pl.col("emitted_at_original").dt.date() == START).sum().alias("original_today"),
        (pl.col("click_cost_micros") < pl.col("click_cost_micros_original")).sum().alias("cheaper"),
    )
    by_kind = {row["copy_kind"]: row for row in relation.iter_rows(named=True)}
    exact, later, same, next_day = (by_kind[k] for k in ("exact", "later", "same_time", "next_day"))
    assert exact["exact"] == exact["rows"] == 250
    assert later["later"] == later["rows"] == later["emitted_today"] == later["original_today"]
    assert same["same_time_other_terms"] == same["rows"] == 75
    assert next_day["later"] == next_day["rows"] == next_day["emitted_today"] == 10
    assert next_day["original_today"] == 0
    # Conflicting copies undercut their original often enough to win on price.
    assert same["cheaper"] > 10 and later["cheaper"] > 10
    # No copy is ever emitted before its original (so the winner's emitted_at is the original's).
    assert copies.filter(pl.col("emitted_at") < pl.col("emitted_at_original")).height == 0


def test_resent_rows_land_in_other_files_and_in_the_late_file(
    small_run: SimulationConfig,
) -> None:
    contract = EMISSIONS_SCHEMA.column_names
    for day in small_run.days_list:
        rows = pl.concat(
            [
                pl.read_parquet(path).with_columns(pl.lit(path.name).alias("file"))
                for path in day_files(small_run, Topic.EMISSIONS, day)
            ]
        )
        identical = (
            rows.group_by(contract)
            .agg(pl.len(), pl.col("file").n_unique().alias("files"), pl.col("file"))
            .filter(pl.col("len") > 1)
        )
        # 0.5 % of 5000 rows are exact copies.
        assert (identical["len"] - 1).sum() == 25
        assert (identical["files"] > 1).sum() >= identical.height // 2
        assert identical["file"].list.contains(LATE_FILE).any()
        resent_from_yesterday = rows.filter(
            ~pl.col("emission_id").str.starts_with(f"e{day:%Y%m%d}-")
        )
        assert resent_from_yesterday.height == (1 if day > START else 0)
        assert (resent_from_yesterday["emitted_at"].dt.date() == day).all()


def test_bot_bursts_have_four_or_more_clicks_within_minutes(tmp_path: Path) -> None:
    traffic = generate_day(config_for(tmp_path, days=1, rows=50_000), START)
    bursts = (
        traffic.clicks.filter((pl.col("fault") == "click_flood") & ~pl.col("is_copy"))
        .group_by("user_id", "offer_id")
        .agg(pl.len(), (pl.col("clicked_at").max() - pl.col("clicked_at").min()).alias("span"))
    )
    assert bursts.height > 0
    assert bursts["len"].min() >= 1 and (bursts["len"] >= 4).sum() >= bursts.height - 1
    assert bursts["span"].max() < timedelta(minutes=10)


def test_cli_rejects_bad_arguments_with_clear_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process (argparse's exit 2 and its message on stderr); the entry point itself runs as a
    process in the next test."""
    base = ["--serving-db", str(tmp_path / "s.duckdb"), "--days", "1", "--seed", "1"]
    cases = {
        "expected a date YYYY-MM-DD": ["--lake", str(tmp_path / "l"), "--start", "2026-02-30"],
        "--emissions-per-day must be at least 1": [
            "--lake",
            str(tmp_path / "l"),
            "--start",
            "2026-01-01",
            "--emissions-per-day",
            "0",
        ],
        "lies inside the lake": [
            "--lake",
            str(tmp_path / "l"),
            "--start",
            "2026-01-01",
            "--labels",
            str(tmp_path / "l" / "truth"),
        ],
        "--ctr-scale must be in": [
            "--lake",
            str(tmp_path / "l"),
            "--start",
            "2026-01-01",
            "--ctr-scale",
            "0",
        ],
    }
    for message, arguments in cases.items():
        if "--emissions-per-day" not in arguments:
            arguments = [*arguments, "--emissions-per-day", "10"]
        with pytest.raises(SystemExit) as exited:
            cli.main([*base, *arguments])
        stderr = capsys.readouterr().err
        assert exited.value.code == 2, stderr
        assert message in stderr
    assert not (tmp_path / "l").exists()


def test_cli_writes_a_lake_and_prints_one_summary_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "adrecon_simulate.cli",
            "--lake",
            str(tmp_path / "lake"),
            "--serving-db",
            str(tmp_path / "s.duckdb"),
            "--start",
            "2026-03-01",
            "--days",
            "2",
            "--emissions-per-day",
            "2000",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.count("\n") == 1
    assert completed.stdout.startswith("simulated 2026-03-01..2026-03-02")
    assert (tmp_path / "ground_truth" / "date_partition=2026-03-02" / "labels.parquet").exists()


def reasons_against_labels(flags: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """One row per click: the pipeline's reason ("none" if valid) beside the expected one."""
    return labels.join(flags, on="click_id", how="full", coalesce=True).with_columns(
        pl.col("fraud_reason").fill_null(NO_FAULT)
    )


def precision_recall(joined: pl.DataFrame) -> dict[str, tuple[float, float, int]]:
    """Per reason: precision and recall of fraud_reason against expected_reason, and support."""
    table = {}
    for reason in [r.value for r in FraudReason] + [NO_FAULT]:
        predicted = joined["fraud_reason"] == reason
        actual = joined["expected_reason"] == reason
        hits = int((predicted & actual).sum())
        support = int(actual.sum())
        table[reason] = (hits / max(int(predicted.sum()), 1), hits / max(support, 1), support)
    return table


def clicks_on_resent_keys(config: SimulationConfig, day: date, flags: pl.DataFrame) -> list[int]:
    """How many of the day's matched clicks meet emission duplicates in the lake's D-1 and D:
    keys whose rows disagree in time or terms, and keys with rows in both days' folders. Read
    from the lake, not the simulator, so a vacuous simulation cannot pass unnoticed."""
    window = pl.concat(
        [
            read_day(config, Topic.EMISSIONS, folder).with_columns(pl.lit(folder).alias("folder"))
            for folder in (day - timedelta(days=1), day)
        ]
    )
    keys = window.group_by(JOIN_KEY).agg(
        pl.struct("emitted_at", "click_cost_micros", "placement").n_unique().alias("versions"),
        pl.col("folder").n_unique().alias("folders"),
    )
    matched = flags.join(keys, on=list(JOIN_KEY))
    return [
        matched.filter(pl.col("versions") > 1).height,
        matched.filter(pl.col("folders") > 1).height,
    ]


def test_pipeline_finds_the_injected_faults_on_a_simulated_lake(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    """Labels, the independent reference and the Polars pipeline agree on a 3-day lake. Emission
    copies run at about ten times their default rates so that, at this size, clicks meet keys
    whose copy wins rule 1 and keys resent into the next day."""
    config = SimulationConfig(
        lake=paths.lake,
        serving_db=paths.serving_db,
        start=START,
        days=3,
        emissions_per_day=40_000,
        # At 40k rows a day only a handful of clicks cross midnight; with this seed some of
        # them do on both reconciled days, onto keys resent into the next day.
        seed=13,
        rates=FaultRates(
            emission_exact_copies=0.02,
            emission_conflicting_copies=0.05,
            emission_next_day_copies=0.005,
        ),
    )
    simulate(config)
    first, *reconciled = config.days_list
    raw_emissions = [asset for asset in ASSETS if dg.AssetKey("raw_emissions") in asset.keys]
    assert dg.materialize(
        raw_emissions, resources=polars_resources, partition_key=first.isoformat()
    ).success
    all_flags, all_labels = [], []
    for day in reconciled:
        result = dg.materialize(ASSETS, resources=polars_resources, partition_key=day.isoformat())
        assert result.success
        folder = Warehouse(paths.warehouse).folder(Dataset.FRAUD_FLAGS, day)
        flags = pl.read_parquet(folder / "*.parquet")
        labels = read_labels(config.labels_root, day)
        assert flags.height == labels.height  # duplicates removed, nothing lost
        # Clicks on resent emissions are joined to rule 1's winner, as the labels say.
        terms = ["click_id", "placement", "click_cost_micros"]
        assert flags.select(terms).sort("click_id").equals(labels.select(terms).sort("click_id"))
        # The independent DuckDB reference agrees on every serving row and every reason.
        assert serving_rows(paths.serving_db, day) == expected_rows(paths, day)
        _, expected_reasons = reference_day(paths.lake, day, first_day())
        assert dict(flags.select("click_id", "fraud_reason").rows()) == expected_reasons
        conflicting, across_midnight = clicks_on_resent_keys(config, day, flags)
        print(
            f"\n{day}: clicks on conflicting emission copies {conflicting}, "
            f"on keys resent into the day {across_midnight}"
        )
        assert conflicting > 0 and across_midnight > 0
        all_flags.append(flags.select("click_id", "fraud_reason"))
        all_labels.append(labels.drop("placement", "click_cost_micros"))
    joined = reasons_against_labels(pl.concat(all_flags), pl.concat(all_labels))
    table = precision_recall(joined)
    print("\nreason          precision  recall  clicks")
    for reason, (precision, recall, support) in table.items():
        print(f"{reason:<15} {precision:9.4f}  {recall:6.4f}  {support:6d}")
    for reason, (precision, recall, support) in table.items():
        assert support > 0 and precision >= 0.9 and recall >= 0.9, (reason, precision, recall)
    # The labels are exact by construction, so the pipeline should agree click for click.
    disagreements = joined.filter(pl.col("fraud_reason") != pl.col("expected_reason"))
    assert disagreements.height == 0, disagreements
    with duckdb.connect(str(paths.serving_db), read_only=True) as connection:
        sources = dict(
            connection.execute(
                "SELECT date, string_agg(DISTINCT source) FROM offer_placement_stats GROUP BY date"
            ).fetchall()
        )
    assert sources == {first: "online", **dict.fromkeys(reconciled, "offline")}


def test_ctr_scale_multiplies_clicks_and_keeps_emissions_mix_and_labels(tmp_path: Path) -> None:
    """`ctr_scale` (the benchmark's knob for ~0.8M clicks on a 20M-row day) leaves the emission
    rows as they were, multiplies the clicks, keeps the fault shares, and the labels still agree
    with the independent DuckDB reference click for click."""
    assert config_for(tmp_path / "default").ctr_scale == 1.0
    base = config_for(tmp_path / "base", rows=20_000)
    scaled = dataclasses.replace(
        base, lake=tmp_path / "scaled" / "lake", serving_db=None, ctr_scale=6.4
    )
    scaled_again = dataclasses.replace(scaled, lake=tmp_path / "again" / "lake")
    for config in (base, scaled, scaled_again):
        simulate(config)
    day = base.days_list[-1]
    # Scaled after the draw: same placements, each CTR exactly 6.4 times the default one.
    assert build_catalogue(scaled).placement_ctr == pytest.approx(
        6.4 * build_catalogue(base).placement_ctr, rel=1e-12
    )
    # The day's own emission rows (originals and same-day copies) do not depend on the clicks;
    # which D-1 rows are re-stamped into D and which rows are held late do.
    own = [
        read_day(config, Topic.EMISSIONS, day)
        .filter(pl.col("emission_id").str.starts_with(f"e{day:%Y%m%d}-"))
        .sort(pl.all())
        for config in (base, scaled)
    ]
    assert own[0].height > 0 and own[0].equals(own[1])
    base_labels = read_labels(base.labels_root, day)
    labels = read_labels(scaled.labels_root, day)
    assert labels.equals(read_labels(scaled_again.labels_root, day))
    assert read_day(scaled, Topic.CLICKS, day).equals(read_day(scaled_again, Topic.CLICKS, day))
    # ~117 valid clicks at 20k rows by default; 6.4x that give or take sampling noise.
    valid = (labels["fault"] == NO_FAULT).sum()
    assert 5.5 <= valid / (base_labels["fault"] == NO_FAULT).sum() <= 7.5
    assert 0.05 <= 1 - valid / labels.height <= 0.10
    clicks = read_day(scaled, Topic.CLICKS, day)
    assert 0.01 <= 1 - labels.height / clicks.height <= 0.03  # resent click rows
    _, reasons = reference_day(scaled.lake, day, base.days_list[0])
    expected = dict(labels.select("click_id", "expected_reason").rows())
    assert {click: reason or NO_FAULT for click, reason in reasons.items()} == expected
    assert set(expected.values()) == {NO_FAULT, *(reason.value for reason in FraudReason)}


def test_ctr_scale_must_keep_every_ctr_a_probability(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert dataclasses.replace(config, ctr_scale=50.0).ctr_scale == 50.0  # a 2 % CTR becomes 1
    for scale in (0.0, -1.0, 50.5):
        with pytest.raises(ValueError, match="ctr-scale must be in"):
            dataclasses.replace(config, ctr_scale=scale)
