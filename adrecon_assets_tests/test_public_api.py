"""adrecon_assets uses Dagster's public API only: private modules change in any minor release."""

from __future__ import annotations

import ast
from pathlib import Path

import adrecon_assets

PACKAGE = Path(adrecon_assets.__file__).parent


def private_dagster_imports(source: str) -> list[str]:
    """Every `import dagster._x` / `from dagster._x import ...` (any `_` module of a dagster
    package, e.g. dagster_pyspark._y too) in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0].startswith("dagster") and any(part.startswith("_") for part in parts[1:]):
                found.append(f"line {node.lineno}: {name}")
    return found


def test_the_scan_finds_private_imports() -> None:
    source = "import dagster as dg\nfrom dagster._core.storage.tags import X\nimport dagster._utils"
    assert private_dagster_imports(source) == [
        "line 2: dagster._core.storage.tags",
        "line 3: dagster._utils",
    ]
    assert private_dagster_imports("from dagster import AssetKey\nimport dagster_pyspark\n") == []


def test_no_private_dagster_import_in_the_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): imports
        for path in sorted(PACKAGE.rglob("*.py"))
        if (imports := private_dagster_imports(path.read_text()))
    }
    assert offenders == {}
