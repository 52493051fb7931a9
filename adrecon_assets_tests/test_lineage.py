"""The asset graph shows every dataset: emission_counts is an asset of the joined_clicks step."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.definitions import ASSETS, defs
from adrecon_assets.rules import Topic
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.lakes import click, emission, write_topic

DAY = "2026-01-01"


def parents(name: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in graph.get(dg.AssetKey(name)).parent_keys}


def test_emission_counts_is_written_by_the_join_step_and_read_by_the_statistics() -> None:
    (step,) = [asset for asset in ASSETS if dg.AssetKey("joined_clicks") in asset.keys]
    assert step.keys == {dg.AssetKey("joined_clicks"), dg.AssetKey("emission_counts")}
    assert parents("reconciled_statistics") == {"emission_counts", "fraud_flags"}
    assert "raw_emissions" in parents("emission_counts")


def test_a_day_materializes_emission_counts_with_its_counts(
    paths: Paths, polars_resources: dict[str, object]
) -> None:
    # Three emission rows, one an exact message duplicate: two deduplicated emissions on two
    # (offer_id, placement) keys.
    emissions = [
        emission("e1", "o1", "top", 1000, f"{DAY}T10:00:00"),
        emission("e1", "o1", "top", 1000, f"{DAY}T10:00:00"),
        emission("e2", "o2", "side", 500, f"{DAY}T11:00:00"),
    ]
    write_topic(paths.lake, Topic.EMISSIONS, DAY, emissions)
    write_topic(paths.lake, Topic.CLICKS, DAY, [click("c1", "e1", "o1", f"{DAY}T10:00:05")])
    result = dg.materialize(ASSETS[:5], partition_key=DAY, resources=polars_resources)
    assert result.success
    (counts,) = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("emission_counts")
    ]
    assert counts.metadata["rows"].value == 2
    assert counts.metadata["emissions"].value == 2
