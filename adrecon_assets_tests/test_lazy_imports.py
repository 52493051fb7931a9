"""Loading the definitions (every CLI command, webserver and daemon start) imports no heavy
library that only some runs need: pyspark with the Spark engine, matplotlib for charts,
pandera for the staged-day checks, pandas (which pyarrow.dataset imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

DEFERRED = ("pyspark", "dagster_pyspark", "matplotlib", "pandera", "pandas")


def modules_loaded_by_definitions(engine: str) -> set[str]:
    """Top-level packages imported by `import adrecon_assets.definitions` in a fresh process."""
    script = (
        "import json, sys; import adrecon_assets.definitions; "
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "ADRECON_ENGINE": engine},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_polars_definitions_load_without_spark_charts_pandera_or_pandas() -> None:
    loaded = modules_loaded_by_definitions("polars")
    assert "dagster" in loaded  # the probe sees real imports
    assert loaded.isdisjoint(DEFERRED), sorted(loaded & set(DEFERRED))


def test_spark_definitions_load_without_starting_pyspark() -> None:
    # The Spark resource is configured at load time; pyspark is imported when a run starts it.
    assert modules_loaded_by_definitions("spark").isdisjoint(DEFERRED)
