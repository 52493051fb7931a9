"""The analysts' UI (contract 5): `dagster-webserver --read-only` on the project's workspace
answers queries and refuses every mutation an operator's UI would run."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from adrecon_assets_tests.webserver import PROJECT, Webserver, webserver

pytestmark = pytest.mark.slow

DAY = date(2026, 1, 2)
LOCATION = {"repositoryLocationName": "adrecon", "repositoryName": "__repository__"}
ERRORS = "__typename ... on Error { message }"


@dg.asset
def probe() -> int:
    """A run for the webserver to show (and refuse to terminate)."""
    return 1


def mutation_results(server: Webserver, run_id: str) -> dict[str, dict[str, str]]:
    """Each mutation's answer: typename and message."""
    backfill = server.graphql(
        "mutation($params: LaunchBackfillParams!) "
        f"{{ launchPartitionBackfill(backfillParams: $params) {{ {ERRORS} }} }}",
        {
            "params": {
                "selector": {
                    "partitionSetName": "reconcile_days_partition_set",
                    "repositorySelector": LOCATION,
                },
                "partitionNames": [DAY.isoformat()],
            }
        },
    )["launchPartitionBackfill"]
    launch = server.graphql(
        "mutation($params: ExecutionParams!) "
        f"{{ launchRun(executionParams: $params) {{ {ERRORS} }} }}",
        {
            "params": {
                "selector": {**LOCATION, "jobName": "reconcile_days"},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": str(DAY)}]},
            }
        },
    )["launchRun"]
    terminate = server.graphql(
        "mutation($id: String!) { terminateRun(runId: $id) "
        f"{{ {ERRORS} ... on TerminateRunFailure {{ message }} }} }}",
        {"id": run_id},
    )["terminateRun"]
    wipe = server.graphql(
        f"mutation($ranges: [PartitionsByAssetSelector!]!) "
        f"{{ wipeAssets(assetPartitionRanges: $ranges) {{ {ERRORS} }} }}",
        {"ranges": [{"assetKey": {"path": ["reconciled_statistics"]}}]},
    )["wipeAssets"]
    return {
        "launchPartitionBackfill": backfill,
        "launchRun": launch,
        "terminateRun": terminate,
        "wipeAssets": wipe,
    }


def test_read_only_webserver_refuses_mutations_and_answers_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        run_id = dg.materialize([probe], instance=instance).run_id
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ADRECON_LAKE_ROOT": str(tmp_path / "lake"),
        "ADRECON_WAREHOUSE": str(tmp_path / "warehouse"),
        "ADRECON_SERVING_DB": str(tmp_path / "serving.duckdb"),
    }
    with webserver(env, tmp_path / "webserver.log", "--read-only") as server:
        results = mutation_results(server, run_id)
        print("\n" + "\n".join(f"read-only: {name}: {r}" for name, r in results.items()))
        refused = {"__typename": "UnauthorizedError", "message": "Authorization failed"}
        assert results["launchPartitionBackfill"] == refused
        assert results["launchRun"] == refused
        assert results["wipeAssets"] == refused
        # The run exists, so Dagster answers with the run and its refusal.
        assert results["terminateRun"] == {
            "__typename": "TerminateRunFailure",
            "message": "You do not have permission to terminate this run",
        }
        # Queries work, and nothing was launched or wiped.
        data = server.graphql(
            "{ runsOrError { ... on Runs { results { runId status } } } "
            "assetNodes { assetKey { path } } "
            "permissions { permission value } }"
        )
    assert data["runsOrError"]["results"] == [{"runId": run_id, "status": "SUCCESS"}]
    assert {"path": ["reconciled_statistics"]} in [n["assetKey"] for n in data["assetNodes"]]
    granted = {p["permission"] for p in data["permissions"] if p["value"]}
    assert not granted & {"launch_pipeline_execution", "launch_partition_backfill", "wipe_assets"}
    with dg.DagsterInstance.get() as instance:
        assert instance.get_backfills() == []
