"""Runs recorded in a test instance through public API (a `DagsterRun` added to the instance),
so the sensors' queries see queued, running and failed runs without launching any."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg


def add_run(
    instance: dg.DagsterInstance,
    *,
    job_name: str,
    tags: Mapping[str, str],
    status: dg.DagsterRunStatus = dg.DagsterRunStatus.NOT_STARTED,
    asset_selection: frozenset[dg.AssetKey] | None = None,
) -> dg.DagsterRun:
    return instance.add_run(
        dg.DagsterRun(
            job_name=job_name, tags=dict(tags), status=status, asset_selection=asset_selection
        )
    )
