"""conftest.py's order: the tests naming Spark, then the slow files, longest (`slow(seconds=)`)
first, each file whole, then the quick files; pytest-xdist hands the files out in this order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = {
    "conftest.py": (
        "from adrecon_assets_tests.conftest import pytest_collection_modifyitems  # noqa\n"
    ),
    "test_a_quick.py": "def test_a(): pass\n",
    "test_b_short.py": (
        "import pytest\npytestmark = pytest.mark.slow(seconds=30)\n"
        "def test_b1(): pass\ndef test_b2(): pass\n"
    ),
    "test_c_unsaid.py": "import pytest\n@pytest.mark.slow\ndef test_c(): pass\n",
    "test_d_long.py": (
        "import pytest\ndef test_d1(): pass\n@pytest.mark.slow(seconds=300)\ndef test_d2(): pass\n"
    ),
    "test_e_spark.py": "def test_e(): pass\n",
}


def test_slow_files_run_longest_first_after_spark_each_file_whole(tmp_path: Path) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert collected == [
        "test_e_spark.py::test_e",
        "test_d_long.py::test_d1",
        "test_d_long.py::test_d2",
        "test_b_short.py::test_b1",
        "test_b_short.py::test_b2",
        "test_c_unsaid.py::test_c",
        "test_a_quick.py::test_a",
    ]
