"""The engine resources: assets ask for `engine` and get Polars or Spark per environment."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.engines.base import Engine
from adrecon_assets.engines.polars_engine import PolarsEngine


class EngineResource(dg.ConfigurableResource):
    """What assets depend on; `definitions.py` binds one implementation per environment."""

    @property
    def engine_name(self) -> str:
        return self.get_engine().name

    def get_engine(self) -> Engine:
        raise NotImplementedError


class PolarsEngineResource(EngineResource):
    """Single-machine engine: Polars lazy scans with the streaming engine."""

    def get_engine(self) -> Engine:
        return PolarsEngine()
