"""`dagster definitions validate` accepts the code location, as the webserver would load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")


def test_dagster_definitions_validate_accepts_the_code_location(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-m", "adrecon_assets.definitions"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
