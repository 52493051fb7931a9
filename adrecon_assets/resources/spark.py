"""The Spark engine resource: a session per run, either a JVM of the run's own (stopped when the
run ends) or, with ADRECON_SPARK_REMOTE, a session on a warm Spark Connect server.

pyspark, dagster-pyspark and the Spark engine are imported only when a run uses this resource:
the definitions module builds it for every environment, and importing pyspark costs ~0.5-1 s
on every CLI, webserver and daemon start, also where the Polars engine is selected.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from adrecon_assets.engines.base import Engine
from adrecon_assets.lake import S3Settings
from adrecon_assets.resources.engine import EngineResource
from adrecon_assets.settings import load_settings
from adrecon_assets.spark_s3a import is_s3_root, prepare_session, s3a_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkEngineResource(EngineResource):
    """dagster-pyspark's `PySparkResource` session, plus the stop it never does.

    `spark_master` comes from ADRECON_SPARK_MASTER; `spark_config` overrides the tuning of
    `engines/spark_session.py` (never the parity settings). A session already running in the
    process (a test suite's) is reused and left running; one created here is stopped at teardown.
    With `spark_remote` (ADRECON_SPARK_REMOTE, `sc://host:port`) the run attaches to that Spark
    Connect server instead: a new server-side session with the `spark.sql.*` settings (parity
    ones included), released at teardown; the server and its JVM keep running.
    """

    spark_master: str = "local[*]"
    spark_remote: str = ""
    spark_config: dict[str, Any] = {}
    ui_enabled: bool = False
    app_name: str = "adrecon"
    _session: SparkSession | None = PrivateAttr(default=None)
    _owns_session: bool = PrivateAttr(default=False)

    @property
    def full_spark_config(self) -> dict[str, Any]:
        from adrecon_assets.engines.spark_session import spark_config  # deferred: see module doc

        overrides = self.spark_config
        if is_s3_root(load_settings().lake_root):
            overrides = {**s3a_config(S3Settings.from_env()), **overrides}
        return spark_config(self.spark_master, self.app_name, self.ui_enabled, overrides)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.spark_remote:
            self._attach_remote(context)
            return
        # Deferred imports: see the module docstring.
        from dagster_pyspark.resources import spark_session_from_config
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        # One SparkContext per process: if one runs already, take its session untouched
        # (getOrCreate with our config would overwrite its runtime settings).
        running = SparkContext._active_spark_context is not None
        self._owns_session = not running
        if running:
            self._session = SparkSession.builder.getOrCreate()
        else:
            self._session = spark_session_from_config(self.full_spark_config)
        # An S3 lake needs S3A: fail at start with the fix, not at the first read.
        prepare_session(self._session, load_settings().lake_root)

    def _attach_remote(self, context: dg.InitResourceContext) -> None:
        from adrecon_assets.engines.spark_session import attach_remote

        started = time.monotonic()
        session = attach_remote(self.spark_remote, self.full_spark_config)
        self._session, self._owns_session = session, True
        if context.log is not None:
            context.log.info(
                f"attached to Spark Connect in {time.monotonic() - started:.2f} s "
                f"(Spark {session.version})"
            )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._owns_session and self._session is not None:
            self._session.stop()
        self._session = None

    @property
    def spark_session(self) -> SparkSession:
        if self._session is None:
            raise RuntimeError("the Spark session exists only while a run executes")
        return self._session

    def get_engine(self) -> Engine:
        from adrecon_assets.engines.spark_engine import SparkEngine  # deferred: see module doc

        return SparkEngine(self.spark_session)
