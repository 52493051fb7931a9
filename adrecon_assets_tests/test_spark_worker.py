"""`make test`'s scheduler (spark_worker.py) runs every test naming Spark on one xdist worker,
wherever it sits, and hands the other files out whole as `--dist loadfile` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each test records the worker that ran it; 4 tests name Spark (by file, name and parameter).
RECORD = """
import json, os, pathlib, pytest

@pytest.fixture(autouse=True)
def record(request):
    name = request.node.nodeid.replace("/", "_").replace(":", "_")
    (pathlib.Path(os.environ["RECORDS"]) / name).write_text(os.environ["PYTEST_XDIST_WORKER"])
"""
SUITE = {
    "conftest.py": RECORD
    + "from adrecon_assets_tests.spark_worker import pytest_xdist_make_scheduler  # noqa\n",
    "test_a_spark_file.py": "def test_one(): pass\ndef test_two(): pass\n",
    "test_b.py": "def test_b1(): pass\ndef test_runs_on_spark(): pass\n",
    "test_c.py": (
        "import pytest\n"
        "@pytest.mark.parametrize('engine', ['polars', 'spark'])\n"
        "def test_c(engine): pass\n"
    ),
    **{f"test_d{n}.py": "def test_d1(): pass\ndef test_d2(): pass\n" for n in range(4)},
}


@pytest.mark.slow
def test_spark_tests_of_every_file_run_on_one_worker(tmp_path: Path) -> None:
    suite, records = tmp_path / "suite", tmp_path / "records"
    suite.mkdir()
    records.mkdir()
    for name, text in SUITE.items():
        (suite / name).write_text(text)
    env = {**os.environ, "RECORDS": str(records), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
        + ["--dist", "loadfile", "--no-loadscope-reorder", str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    worker = {path.name: path.read_text() for path in records.iterdir()}
    assert len(worker) == 14, json.dumps(worker)
    spark = {name: w for name, w in worker.items() if "spark" in name}
    assert len(spark) == 4 and len(set(spark.values())) == 1, json.dumps(worker)
    # Files without Spark stay whole (loadfile): test_b1 alone, each test_d file on one worker.
    for n in range(4):
        assert len({w for name, w in worker.items() if f"test_d{n}.py" in name}) == 1
    assert set(worker.values()) == {"gw0", "gw1"}, json.dumps(worker)
