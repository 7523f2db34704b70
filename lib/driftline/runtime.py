"""The one place a SparkSession is built.

Local default: ``local[*]`` from the pip ``pyspark``, UTC everywhere, Arrow on, Parquet timestamps
as TIMESTAMP_MICROS, few shuffle partitions, Python workers = this interpreter, and quiet logs: the
driver JVM starts with a log4j2 configuration at ``runtime.spark_log_level`` (default ERROR), so
Spark's start-up warnings are not printed (``quiet=False`` keeps Spark's own log4j defaults).
Under ``spark-submit`` the submitter owns master and resources: only session-level SQL settings
are applied. Java is checked before the JVM is started so a missing or old Java is one clear line.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from driftline.errors import EnvironmentProblem
from driftline.spec import Frozen

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class RuntimeConfig(Frozen):
    """How the SparkSession is built (ignored where ``spark-submit`` already decided)."""

    master: str = "local[*]"
    app_name: str = "driftline"
    shuffle_partitions: int = Field(8, ge=1, le=100_000)
    driver_memory: str | None = Field(None, pattern=r"^\d+[kmgtKMGT]?$")
    arrow_batch_size: int = Field(10_000, ge=1)
    spark_log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "ERROR"
    spark_conf: dict[str, str] = Field(default_factory=dict)
    jvm_fold: bool = True   # compile driftline's JVM profile fold (needs javac) and load it; false: Arrow fold

log = logging.getLogger(__name__)

MIN_JAVA = 17

# Settings that hold for every session, local or submitted: correctness, not resources.
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Explicit file lists (the embedded Delta read) must not start a distributed listing job.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    # Avoid the per-task sort before partitioned writes; bounded by the number of partitions.
    "spark.sql.maxConcurrentOutputFileWriters": "32",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.hadoop.parquet.enable.summary-metadata": "false",
}

# Settings only applied when driftline starts the JVM itself (local mode).
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.adaptive.enabled": "true",
}


def under_spark_submit() -> bool:
    """True when this Python process was launched by ``spark-submit`` (the JVM already runs)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def java_version(java: str | None = None) -> int:
    """Major version of the Java that Spark would start; `EnvironmentProblem` if there is none."""
    exe = java or _java_executable()
    if exe is None:
        raise EnvironmentProblem(
            f"Java {MIN_JAVA}+ is required to run Spark, found no java (JAVA_HOME unset and no java on PATH); "
            "install it, e.g. apt-get install openjdk-17-jdk-headless (a JRE runs too, with a slower profiling fold)"
        )
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"Java {MIN_JAVA}+ is required, but {exe} -version failed: {exc}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise EnvironmentProblem(f"Java {MIN_JAVA}+ is required, cannot read the version printed by {exe} -version")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    return major


def check_java(java: str | None = None) -> None:
    """Raise `EnvironmentProblem` (one line) when Java is missing or older than 17."""
    major = java_version(java)
    if major < MIN_JAVA:
        raise EnvironmentProblem(
            f"Java {MIN_JAVA}+ is required by Spark 4, found Java {major} at {java or _java_executable()}; "
            "set JAVA_HOME to a Java 17 or newer"
        )


def _java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.exists() else None
    return shutil.which("java")


def session_conf(runtime: RuntimeConfig, workspace: str | os.PathLike[str] | None = None,
                 submitted: bool = False, quiet: bool = True) -> dict[str, str]:
    """The ``spark.*`` settings `build_spark` gives the session: ours, then ``runtime.spark_conf`` (it wins),
    and — when driftline starts the JVM with ``runtime.jvm_fold`` — driftline's jar added to ``spark.jars``
    (built here if needed; creates the workspace's scratch folder). ``quiet`` (local only): the driver's
    log4j2 configuration file (`log4j_properties`)."""
    conf = dict(SESSION_CONF)
    conf["spark.sql.shuffle.partitions"] = str(runtime.shuffle_partitions)
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(runtime.arrow_batch_size)
    if not submitted:
        conf.update(LOCAL_CONF)
        if quiet:
            path = log4j_properties(runtime.spark_log_level, workspace)
            conf["spark.driver.extraJavaOptions"] += f' "-Dlog4j.configurationFile={path}"'
        if runtime.driver_memory:
            conf["spark.driver.memory"] = runtime.driver_memory
        if workspace is not None:
            local_dir = Path(workspace) / "spark-tmp"
            local_dir.mkdir(parents=True, exist_ok=True)
            conf["spark.local.dir"] = str(local_dir.resolve())
            conf["spark.sql.warehouse.dir"] = str((Path(workspace) / "spark-warehouse").resolve())
    conf.update(runtime.spark_conf)  # the user's explicit settings win over ours
    from driftline.jvm import JVM_FOLD_CONF, session_jar

    conf[JVM_FOLD_CONF] = str(runtime.jvm_fold).lower()   # read by the profile pass, also under spark-submit
    if not submitted and runtime.jvm_fold:
        jar = session_jar()
        if jar is not None:
            conf["spark.jars"] = ",".join(filter(None, (conf.get("spark.jars"), str(jar))))
            log.info("driftline's JVM profile fold: %s", jar)
    return conf


LOG4J2 = """\
# written by driftline: Spark's driver logs at {level} on stderr, without the start-up warnings
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = stderr
# Spark's own logger set explicitly (to the root's level), so PySpark's start-up keeps it and prints no
# "Setting default log level" notice
logger.spark.name = org.apache.spark
logger.spark.level = {level}
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


def log4j_properties(level: str, workspace: str | os.PathLike[str] | None = None) -> Path:
    """A log4j2 configuration with the root logger at ``level``, in the workspace's scratch folder."""
    folder = Path(workspace) / "spark-tmp" if workspace is not None else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"driftline-log4j2-{level.lower()}.properties").resolve()
    text = LOG4J2.format(level=level.lower())
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def build_spark(runtime: RuntimeConfig, workspace: str | os.PathLike[str] | None = None,
                quiet: bool = True) -> SparkSession:
    """Build (or join) the SparkSession for a job run; the caller passes it on, nobody else builds one.

    ``quiet=False`` (``--log-level DEBUG``) leaves Spark's own log4j defaults, start-up warnings included.
    """
    submitted = under_spark_submit()
    if not submitted:
        check_java()
        # Python workers must be this interpreter, or they may lack driftline's dependencies.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(runtime.app_name)
    if not submitted:
        builder = builder.master(runtime.master)
    for key, value in session_conf(runtime, workspace, submitted, quiet).items():
        builder = builder.config(key, value)

    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(runtime.spark_log_level)
    log.info(
        "Spark %s session ready: master=%s, submitted=%s",
        spark.version, spark.sparkContext.master, submitted,
    )
    return spark
