"""Where the lake and the warehouse are, as a Dagster resource."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.lake import Lake
from adrecon_assets.warehouse import Warehouse


class StorageResource(dg.ConfigurableResource):
    """The raw event lake (read only) and the warehouse of intermediate outputs."""

    lake_root: str
    warehouse_root: str

    @property
    def lake(self) -> Lake:
        return Lake(self.lake_root)

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.warehouse_root)
