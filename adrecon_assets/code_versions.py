"""Each daily asset's code version: a hash of the source that decides its rows.

Dagster compares the code version recorded with each day's materialization to the asset's
current one, and shows a day computed by other code as stale ("code version changed") in the
UI. So a rule change (a threshold in rules.py, a fix in an engine) marks the days computed
before it stale, and backfilling those days clears it (docs/operating.md, "After a rule
change"). The hash is deliberately coarse: the rules and both engines count for every asset,
since either engine may have computed a day; a change in one asset module counts for its assets.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).parent
# What decides every asset's rows: the rules and the engines that implement them.
RULE_SOURCES: tuple[str, ...] = (
    "rules.py",
    "engines/base.py",
    "engines/polars_engine.py",
    "engines/spark_engine.py",
)
DIGEST_CHARS = 16


def source_code_version(files: Sequence[Path]) -> str:
    """A short sha256 of the files' names (relative to the package) and contents, in name order."""
    digest = hashlib.sha256()
    for path in sorted(set(files), key=lambda path: path.relative_to(PACKAGE).as_posix()):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:DIGEST_CHARS]


def asset_code_version(compute: Callable[..., Any], also: Sequence[str] = ()) -> str:
    """The code version of the asset computed by `compute`: the rule sources, the module that
    defines `compute`, and `also` (further package-relative files its rows depend on)."""
    module_file = sys.modules[compute.__module__].__file__
    assert module_file is not None, compute.__module__
    files = [PACKAGE / name for name in (*RULE_SOURCES, *also)]
    return source_code_version([*files, Path(module_file)])
