"""The project uses Dagster's public API only: private modules change in any minor release.

The product (adrecon_assets, adrecon_simulate, benchmarks) has no exception. A test may import a
private module only where no public API does what it needs, saying why on the import's own line
after `# private-api:`; the scan counts such lines separately, so each stays visible here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import adrecon_assets

ROOT = Path(adrecon_assets.__file__).parents[1]
PRODUCT = ("adrecon_assets", "adrecon_simulate", "benchmarks")
TESTS = "adrecon_assets_tests"
EXCEPTION_MARK = "# private-api:"
# The tests' justified exceptions (file: private module), each explained where it stands.
TEST_EXCEPTIONS = {
    "production.py": ["dagster._grpc.client"],
    "test_healthcheck.py": ["dagster._daemon.types"],
}


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


def justified(source: str, found: str) -> bool:
    """Whether the import's line says why it is private, after the exception mark."""
    line = source.splitlines()[int(found.split(":")[0].removeprefix("line ")) - 1]
    return line.partition(EXCEPTION_MARK)[2].strip() != ""


def scan(folder: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Private imports under `folder` by file: (unjustified, justified)."""
    bare: dict[str, list[str]] = {}
    explained: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text()
        for found in private_dagster_imports(source):
            into = explained if justified(source, found) else bare
            into.setdefault(str(path.relative_to(folder)), []).append(found.split(": ")[1])
    return bare, explained


def test_the_scan_finds_private_imports() -> None:
    source = "import dagster as dg\nfrom dagster._core.storage.tags import X\nimport dagster._utils"
    assert private_dagster_imports(source) == [
        "line 2: dagster._core.storage.tags",
        "line 3: dagster._utils",
    ]
    assert private_dagster_imports("from dagster import AssetKey\nimport dagster_pyspark\n") == []


def test_an_exception_needs_its_reason_on_the_import_line() -> None:
    bare = "from dagster._utils import X  # private-api:\n"
    reasoned = "from dagster._utils import X  # private-api: no public way to build X\n"
    assert not justified(bare, "line 1: dagster._utils")
    assert justified(reasoned, "line 1: dagster._utils")


def test_no_private_dagster_import_in_the_product() -> None:
    offenders = {
        folder: {**bare, **explained}
        for folder in PRODUCT
        for bare, explained in [scan(ROOT / folder)]
        if bare or explained
    }
    assert offenders == {}


def test_the_tests_import_private_modules_only_where_they_say_why() -> None:
    bare, explained = scan(ROOT / TESTS)
    assert bare == {}
    assert explained == TEST_EXCEPTIONS
