"""The Spark engine on an S3 lake (contract 2.1): the same AWS_* settings as the Polars engine,
passed to Hadoop's S3A connector as `spark.hadoop.fs.s3a.*`, and lake files read as `s3a://`.

The PySpark wheel ships no `hadoop-aws` (the S3A classes), so on a plain `pip install` the
session cannot read `s3a://` URLs. `require_s3a` checks for the class when the session starts
and fails with what to do instead of a Java stack trace at the first read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from adrecon_assets.lake import S3_SCHEME, S3Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

S3A_SCHEME = "s3a://"
S3A_FILESYSTEM_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
# hadoop-aws must match the Hadoop of the Spark build (pyspark/jars/hadoop-client-api-*.jar).
HADOOP_AWS_HINT = (
    "add hadoop-aws matching Spark's Hadoop version, e.g. "
    "spark.jars.packages=org.apache.hadoop:hadoop-aws:<hadoop version> in spark_config (the "
    "SparkEngineResource) or spark-defaults.conf, or its jar (with the AWS SDK bundle) to "
    "pyspark/jars, or run on a cluster whose Spark has hadoop-aws; or use ADRECON_ENGINE=polars, "
    "which reads S3 without Java"
)


class S3ASupportMissingError(RuntimeError):
    """The Spark session has no S3A filesystem, so it cannot read an s3:// lake."""


def is_s3_root(lake_root: str) -> bool:
    return lake_root.startswith(S3_SCHEME)


def spark_url(url: str) -> str:
    """A lake file's URL as Spark reads it: s3:// objects through S3A, local paths unchanged."""
    return S3A_SCHEME + url[len(S3_SCHEME) :] if url.startswith(S3_SCHEME) else url


def lake_url(spark_uri: str) -> str:
    """The lake file's name as the Polars engine writes it, from the URI Spark reports:
    `s3a://bucket/key` -> `s3://bucket/key`, `file:/path` -> `/path` (percent-decoded; Python's
    `unquote`, unlike Spark's `url_decode`, keeps a `+`)."""
    parsed = urlparse(spark_uri)
    path = unquote(parsed.path)
    return f"{S3_SCHEME}{parsed.netloc}{path}" if parsed.scheme == "s3a" else path


def s3a_config(settings: S3Settings) -> dict[str, str]:
    """`spark.hadoop.fs.s3a.*` settings from contract 2.1's variables (unset ones left to S3A's
    own defaults and credential chain). Spark redacts keys matching secret/access.key/token in
    its UI and logs."""
    prefix = "spark.hadoop.fs.s3a."
    config: dict[str, str] = {}
    if settings.endpoint:
        config[prefix + "endpoint"] = settings.endpoint
        # S3-compatible stores (MinIO, Ceph, moto) address buckets by path, not by host name.
        config[prefix + "path.style.access"] = "true"
    if settings.region:
        config[prefix + "endpoint.region"] = settings.region
    if settings.access_key_id and settings.secret_access_key:
        config[prefix + "access.key"] = settings.access_key_id
        config[prefix + "secret.key"] = settings.secret_access_key
        provider = "SimpleAWSCredentialsProvider"
        if settings.session_token:
            config[prefix + "session.token"] = settings.session_token
            provider = "TemporaryAWSCredentialsProvider"
        config[prefix + "aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
    if settings.allow_http:
        config[prefix + "connection.ssl.enabled"] = "false"
    return config


def prepare_session(spark: SparkSession, lake_root: str) -> None:
    """For an S3 lake: fail now if S3A is missing, and set the S3A settings on the session's
    Hadoop configuration (also on a session someone else built, e.g. a test suite's)."""
    if not is_s3_root(lake_root):
        return
    require_s3a(spark, lake_root)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    for key, value in s3a_config(S3Settings.from_env()).items():
        hadoop.set(key.removeprefix("spark.hadoop."), value)


def require_s3a(spark: SparkSession, lake_root: str) -> None:
    """S3ASupportMissingError (with the fix) unless the session's JVM has the S3A classes."""
    try:
        spark.sparkContext._jvm.java.lang.Class.forName(S3A_FILESYSTEM_CLASS)  # type: ignore[union-attr]
    except Exception:  # py4j's error carries the Java stack trace: replaced by the fix
        raise S3ASupportMissingError(
            f"ADRECON_LAKE_ROOT={lake_root} is on S3, but this Spark session has no S3A "
            f"filesystem ({S3A_FILESYSTEM_CLASS} not found: the PySpark wheel does not include "
            f"hadoop-aws). To fix: {HADOOP_AWS_HINT}."
        ) from None
