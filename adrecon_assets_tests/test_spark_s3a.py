"""The Spark engine on an S3 lake: contract 2.1's variables become `spark.hadoop.fs.s3a.*`, and
a session without the S3A classes (the PySpark wheel has no hadoop-aws) fails at start saying
so and how to fix it, never with a Java stack trace."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
import pytest

from adrecon_assets.lake import S3Settings
from adrecon_assets.spark_s3a import (
    S3ASupportMissingError,
    lake_url,
    require_s3a,
    s3a_config,
    spark_url,
)
from adrecon_assets_tests.conftest import Paths
from adrecon_assets_tests.s3_server import S3Server

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_contract_variables_become_s3a_settings() -> None:
    settings = S3Settings.from_env(
        {
            "AWS_ENDPOINT_URL": "http://minio:9000",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_REGION": "eu-west-1",
            "AWS_ALLOW_HTTP": "true",
        }
    )
    assert s3a_config(settings) == {
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        "spark.hadoop.fs.s3a.access.key": "key",
        "spark.hadoop.fs.s3a.secret.key": "secret",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    }
    # Nothing set: S3A's own defaults and credential chain (instance profile, ...).
    assert s3a_config(S3Settings.from_env({})) == {}


def test_lake_urls_are_read_through_s3a() -> None:
    assert spark_url("s3://lake/events/clicks/x.parquet") == "s3a://lake/events/clicks/x.parquet"
    assert spark_url("/data/lake/clicks/x.parquet") == "/data/lake/clicks/x.parquet"
    # ... and named back as Polars names them in quarantined rows' source_file.
    assert lake_url("s3a://lake/events/clicks/date_partition%3D2026-01-02/a+b.parquet") == (
        "s3://lake/events/clicks/date_partition=2026-01-02/a+b.parquet"
    )
    assert lake_url("file:/data/lake/clicks/x.parquet") == "/data/lake/clicks/x.parquet"


def assert_explains_the_fix(message: str) -> None:
    assert "no S3A filesystem" in message
    assert "hadoop-aws" in message and "spark.jars.packages" in message
    assert "\tat " not in message and "Py4J" not in message  # no Java stack trace


@pytest.mark.spark
def test_session_without_hadoop_aws_fails_saying_how_to_fix_it(spark: SparkSession) -> None:
    with pytest.raises(S3ASupportMissingError) as raised:
        require_s3a(spark, "s3://lake/events")
    assert_explains_the_fix(str(raised.value))
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.spark
def test_spark_run_on_an_s3_lake_fails_at_start_with_the_fix(
    spark: SparkSession,
    paths: Paths,
    s3_env: S3Server,
    polars_resources: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adrecon_assets.assets.staging import raw_clicks
    from adrecon_assets.resources.spark import SparkEngineResource
    from adrecon_assets.resources.storage import StorageResource

    root = f"s3://{s3_env.new_bucket()}/events"
    monkeypatch.setenv("ADRECON_LAKE_ROOT", root)
    resources = {
        **polars_resources,
        "storage": StorageResource(lake_root=root, warehouse_root=str(paths.warehouse)),
        "engine": SparkEngineResource(spark_master="local[2]"),
    }
    result = dg.materialize(
        [raw_clicks], partition_key="2026-01-02", resources=resources, raise_on_error=False
    )
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_failure]
    message = str(failure.event_specific_data)
    assert_explains_the_fix(message)


def test_s3_settings_never_show_the_secret() -> None:
    settings = S3Settings.from_env(
        {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "hunter2", "AWS_SESSION_TOKEN": "t0k"}
    )
    assert "hunter2" not in repr(settings) and "t0k" not in repr(settings)
