"""`make test-fast` selects and runs tests on two workers, and a selection of no test fails
(pytest's exit 5 goes through make), so neither make target can pass having run nothing.

`make test` itself is what CI runs (.ci/run); this test proves the quick loop the README
offers works on the same checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `-o` keeps make from reinstalling when pyproject.toml is newer than the install stamp.
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed-stamp"]


def make_test_fast(pytest_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAKE, "test-fast", f"PYTEST_ARGS={pytest_args}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_test_fast_runs_the_selected_tests_on_two_workers() -> None:
    result = make_test_fast("adrecon_assets_tests/test_public_api.py")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "bringing up nodes" in output  # pytest-xdist's workers
    # test_public_api.py holds 4 tests, none marked slow, spark, browser or serial.
    assert "4 passed" in output


def test_make_test_fast_fails_when_no_test_is_selected() -> None:
    # `-n 0` (the last -n wins): no workers to start for a selection that runs nothing.
    result = make_test_fast(
        "adrecon_assets_tests/test_public_api.py -k no_test_has_this_name -n 0"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "no tests ran" in output or "deselected" in output
