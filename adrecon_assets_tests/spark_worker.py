"""Every Spark test on one pytest-xdist worker, so `make test` starts one local JVM, not two.

`--dist loadfile` hands whole files to the two workers; the suite's Spark tests sit in several
files, so both workers used to start a session (~10 s of JVM start and warm-up each, ~1 GB).
`xdist_group` marks cannot fix this: pytest 9 no longer lets pytest-xdist 3.8 append the group
to a test's id, so the scheduler never sees the group. Instead the scheduler below keeps
loadfile's scopes but puts every test whose id names Spark into one scope, `SPARK_SCOPE`; the
collection hook in conftest.py checks that every test using the Spark session is named so.
"""

from __future__ import annotations

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

SPARK_SCOPE = "spark"


def names_spark(nodeid: str) -> bool:
    """Whether a test's id (file, name or parameters) says it is about Spark."""
    return SPARK_SCOPE in nodeid.lower()


def unnamed_spark_tests(items: list[pytest.Item]) -> list[str]:
    """The `spark` tests whose id does not name Spark: they would start a second JVM."""
    return [
        item.nodeid
        for item in items
        if item.get_closest_marker("spark") and not names_spark(item.nodeid)
    ]


class SparkTestsTogether(LoadFileScheduling):
    """`--dist loadfile`, except that the tests naming Spark form one unit of work."""

    def _split_scope(self, nodeid: str) -> str:
        return SPARK_SCOPE if names_spark(nodeid) else super()._split_scope(nodeid)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own choice of scheduler
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> SparkTestsTogether | None:
    """`--dist loadfile` with every Spark test on one worker (conftest.py registers this hook)."""
    if config.getvalue("dist") != "loadfile":
        return None
    return SparkTestsTogether(config, log)
