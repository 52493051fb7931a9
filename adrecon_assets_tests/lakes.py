"""Tiny hand-built lakes for tests: rows in, contract-shaped Parquet files out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from adrecon_assets.engines.polars_engine import polars_schema
from adrecon_assets.lake import LocalLake
from adrecon_assets.rules import SCHEMAS, Topic


def at(text: str) -> datetime:
    """A UTC timestamp from ISO text, e.g. at('2026-01-02T00:00:00.999999')."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def emission(
    emission_id: str, offer_id: str, placement: str, cost: int, emitted_at: str
) -> dict[str, Any]:
    return {
        "emission_id": emission_id,
        "offer_id": offer_id,
        "placement": placement,
        "click_cost_micros": cost,
        "emitted_at": at(emitted_at),
    }


def click(
    click_id: str,
    emission_id: str,
    offer_id: str,
    clicked_at: str,
    user_id: str = "u1",
    ip: str = "192.0.2.1",
) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "emission_id": emission_id,
        "offer_id": offer_id,
        "clicked_at": at(clicked_at),
        "user_id": user_id,
        "ip": ip,
    }


def frame(topic: Topic, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=polars_schema(SCHEMAS[topic]))


def write_topic(
    lake_root: Path,
    topic: Topic,
    day: date | str,
    rows: list[dict[str, Any]],
    name: str = "part-0",
    closed: bool = True,
) -> Path:
    """Write one Parquet file of `rows` into the day's folder (and `_SUCCESS` if closed)."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    folder = LocalLake(lake_root).folder(topic, day)
    folder.mkdir(parents=True, exist_ok=True)
    for other in Topic:  # a lake has both topic folders (contract 2)
        (Path(lake_root) / other.value).mkdir(exist_ok=True)
    ensure_denylist(Path(lake_root))
    path = folder / f"{name}.parquet"
    frame(topic, rows).write_parquet(path)
    if closed:
        (folder / "_SUCCESS").touch()
    return path


def ensure_denylist(lake_root: Path) -> None:
    """A lake always has its denylist (contract 2); an empty one unless a test writes one."""
    if not LocalLake(lake_root).denylist_path.exists():
        write_denylist(lake_root, [])


def write_denylist(lake_root: Path, cidrs: list[str]) -> Path:
    path = LocalLake(lake_root).denylist_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("cidr\n" + "".join(f"{cidr}\n" for cidr in cidrs))
    return path
