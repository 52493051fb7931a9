"""Reading the lake (contract section 2): folders, fingerprints, the denylist, and how the Polars
engine types files that are valid but not written exactly like ours."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from adrecon_assets.lake import Lake, LakeNotFoundError
from adrecon_assets.rules import IpRange, Topic
from adrecon_assets_tests.conftest import Paths, create_empty_lake
from adrecon_assets_tests.engine_runs import reconcile
from adrecon_assets_tests.lakes import click, emission, write_denylist, write_topic

D = "2026-01-02"
DAY = date.fromisoformat(D)


def test_missing_folder_is_an_empty_open_partition(tmp_path: Path) -> None:
    create_empty_lake(tmp_path)
    partition = Lake(tmp_path).partition(Topic.CLICKS, DAY)
    assert partition.files == () and not partition.closed and not partition.exists
    assert (
        partition.fingerprint
        == Lake(tmp_path).partition(Topic.CLICKS, date(2026, 1, 3)).fingerprint
    )


def test_missing_lake_root_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LakeNotFoundError, match=f"lake root {tmp_path / 'typo'} does not exist"):
        Lake(tmp_path / "typo").partition(Topic.CLICKS, DAY)


def test_missing_topic_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "emissions").mkdir()
    with pytest.raises(LakeNotFoundError, match=f"topic folder {tmp_path / 'clicks'} does not"):
        Lake(tmp_path).partition(Topic.CLICKS, DAY)


@pytest.mark.parametrize("root", ["gs://lake/events", "hdfs://namenode/lake", "s3://"])
def test_unsupported_lake_root_is_an_error_naming_it(root: str) -> None:
    with pytest.raises(LakeNotFoundError, match=root):
        Lake(root)


def test_partition_lists_parquet_files_only_and_sees_success(tmp_path: Path) -> None:
    write_topic(tmp_path, Topic.CLICKS, D, [], name="b")
    write_topic(tmp_path, Topic.CLICKS, D, [], name="a", closed=False)
    (Lake(tmp_path).folder(Topic.CLICKS, DAY) / "notes.txt").write_text("not data")
    partition = Lake(tmp_path).partition(Topic.CLICKS, DAY)
    assert [lake_file.path.name for lake_file in partition.files] == ["a.parquet", "b.parquet"]
    assert partition.closed


def test_late_file_changes_the_fingerprint(tmp_path: Path) -> None:
    write_topic(tmp_path, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T10:00:00")])
    before = Lake(tmp_path).partition(Topic.CLICKS, DAY).fingerprint
    assert Lake(tmp_path).partition(Topic.CLICKS, DAY).fingerprint == before
    write_topic(tmp_path, Topic.CLICKS, D, [click("c2", "e1", "o1", f"{D}T11:00:00")], name="late")
    assert Lake(tmp_path).partition(Topic.CLICKS, DAY).fingerprint != before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("cidr\n", [], id="header_only"),
        pytest.param("cidr\n\n  10.0.0.0/8 \n", [IpRange(167772160, 184549375)], id="blank_lines"),
        pytest.param(
            "cidr\r\n10.1.0.0/16\r\n10.0.0.0/8\r\n11.0.0.0/8\r\n",
            [IpRange(167772160, 201326591)],
            id="overlapping_and_adjacent_merge_crlf",
        ),
        pytest.param("cidr\n1.2.3.4/32\n", [IpRange(16909060, 16909060)], id="slash_32"),
    ],
)
def test_denylist_parses_to_merged_integer_ranges(
    tmp_path: Path, text: str, expected: list[IpRange]
) -> None:
    path = Lake(tmp_path).denylist_path
    path.parent.mkdir(parents=True)
    path.write_text(text, newline="")
    assert Lake(tmp_path).denylist() == expected


def test_missing_denylist_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LakeNotFoundError, match=r"reference/ip_denylist\.csv does not exist"):
        Lake(tmp_path).denylist()


def test_header_only_denylist_is_empty(tmp_path: Path) -> None:
    write_denylist(tmp_path, [])
    assert Lake(tmp_path).denylist() == []


def test_invalid_denylist_line_is_an_error_naming_it(tmp_path: Path) -> None:
    write_denylist(tmp_path, ["10.0.0.0/8", "10.0.0.0/33"])
    with pytest.raises(ValueError, match="10.0.0.0/33"):
        Lake(tmp_path).denylist()


def test_denylist_without_cidr_header_is_an_error(tmp_path: Path) -> None:
    path = Lake(tmp_path).denylist_path
    path.parent.mkdir(parents=True)
    path.write_text("network\n10.0.0.0/8\n")
    with pytest.raises(ValueError, match="cidr"):
        Lake(tmp_path).denylist()


def test_other_parquet_encodings_of_the_contract_types_are_read_alike(paths: Paths) -> None:
    """Extra columns, int32 costs, naive (UTC) and nanosecond or non-UTC timestamps: all valid
    contract input. Hand-computed: the click 1.5 s after its emission is valid."""
    folder = Lake(paths.lake).folder(Topic.EMISSIONS, DAY)
    folder.mkdir(parents=True)
    pl.DataFrame(
        {
            "emission_id": ["e1"],
            "offer_id": ["o1"],
            "placement": ["p1"],
            "click_cost_micros": pl.Series([250], dtype=pl.Int32),
            "emitted_at": pl.Series([datetime(2026, 1, 2, 10)], dtype=pl.Datetime("ns")),
            "campaign": ["ignored"],
        }
    ).write_parquet(folder / "naive-ns.parquet")
    clicks = write_topic(paths.lake, Topic.CLICKS, D, [], name="empty")
    pl.DataFrame(
        [click("c1", "e1", "o1", f"{D}T10:00:01.5")],
    ).with_columns(pl.col("clicked_at").dt.convert_time_zone("Europe/Paris")).write_parquet(
        clicks.parent / "paris.parquet"
    )
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.reasons == {"c1": None}
    assert run.statistics == [(DAY, "o1", "p1", 1, 1, 250, 0, 0)]


def test_files_of_one_folder_form_one_partition(
    paths: Paths,
) -> None:
    """Two files of one folder are one partition: a click in file b joins an emission in a."""
    write_topic(paths.lake, Topic.EMISSIONS, D, [emission("e1", "o1", "p1", 5, f"{D}T01:00:00")])
    write_topic(paths.lake, Topic.CLICKS, D, [click("c1", "e1", "o1", f"{D}T02:00:00")], "a")
    write_topic(paths.lake, Topic.CLICKS, D, [click("c2", "e1", "o1", f"{D}T03:00:00")], "b")
    run = reconcile(paths.lake, paths.warehouse, D)
    assert run.statistics == [(DAY, "o1", "p1", 1, 2, 10, 0, 0)]
