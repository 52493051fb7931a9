"""Where the lake and the warehouse are, as a Dagster resource."""

from __future__ import annotations

import dagster as dg

from adrecon_assets.lake import URL_PATTERN, Lake
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
        return Warehouse(warehouse_path(self.warehouse_root))


def warehouse_path(root: str) -> str:
    """The warehouse is a local or shared-filesystem path (its crash-safe swaps are filesystem
    renames, which object stores do not have): a URL such as s3://... is refused by name."""
    if URL_PATTERN.match(root):
        raise ValueError(
            f"ADRECON_WAREHOUSE={root!r}: the warehouse must be a local or shared-filesystem "
            "path (only the lake may be on object storage, ADRECON_LAKE_ROOT=s3://...)"
        )
    return root
