"""The one place a SparkSession is built.

Local default: ``local[*]`` from the pip ``pyspark``, UTC everywhere, Arrow on, Parquet timestamps
as TIMESTAMP_MICROS, few shuffle partitions, Python workers = this interpreter, and quiet logs: the
driver JVM starts with a log4j2 configuration at ``runtime.spark_log_level`` (default ERROR), so
Spark's start-up warnings are not printed (``quiet=False`` keeps Spark's own log4j defaults).
Under ``spark-submit`` the submitter owns master and resources: only session-level SQL settings
are applied. Java is checked before the JVM is started so a missing or old Java is one clear line.
With ``runtime.remote`` (or ``$SPARK_REMOTE``) the session is a Spark Connect client instead (`connect_session`):
no JVM here, only the session-level SQL settings a client may set; see ``docs/cluster.md``, Spark Connect.
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

    from driftline.tables.spec import StorageConfig


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
    delta_jars: bool = True  # put the delta-spark jars set-up fetched on the classpath (native backend, catalog)
    # a Spark Connect server to run on (sc://host:port[/;params]) instead of a JVM of our own; also $SPARK_REMOTE
    remote: str | None = Field(None, pattern=r"^sc://(\[[0-9A-Fa-f:.]+\]|[^\s/;:\[\]]+)(:\d+)?(/.*)?$")

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
                 submitted: bool = False, quiet: bool = True, storage: StorageConfig | None = None) -> dict[str, str]:
    """The ``spark.*`` settings `build_spark` gives the session: ours, then ``runtime.spark_conf`` (it wins),
    and — when driftline starts the JVM with ``runtime.jvm_fold`` — driftline's jar added to ``spark.jars``
    (built here if needed; creates the workspace's scratch folder). ``quiet`` (local only): the driver's
    log4j2 configuration file (`log4j_properties`). ``storage``: its ``catalog`` (Hive metastore) settings."""
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
    if storage is not None and workspace is not None:
        from driftline.tables.catalog import catalog_session_conf

        conf.update(catalog_session_conf(storage, workspace, conf, submitted))
    conf.update(runtime.spark_conf)  # the user's explicit settings win over ours
    from driftline.jvm import JVM_FOLD_CONF, session_jar

    conf[JVM_FOLD_CONF] = str(runtime.jvm_fold).lower()   # read by the profile pass, also under spark-submit
    if not submitted and runtime.jvm_fold:
        jar = session_jar()
        if jar is not None:
            conf["spark.jars"] = ",".join(filter(None, (conf.get("spark.jars"), str(jar))))
            log.info("driftline's JVM profile fold: %s", jar)
    if not submitted and runtime.delta_jars:
        from driftline.jvm.delta import DELTA_JARS_CONF, DELTA_SESSION_CONF, session_jars

        delta = session_jars(runtime.spark_conf.get("spark.jars"))
        if delta:
            conf["spark.jars"] = ",".join(filter(None, (conf.get("spark.jars"), *map(str, delta))))
            for key, value in DELTA_SESSION_CONF.items():
                conf.setdefault(key, value)   # a user's own extensions / catalog win
            conf[DELTA_JARS_CONF] = "true"
            # delta-spark replays a table's log in 50 tasks per snapshot by default: on a local session that is
            # most of a small read (a 1,000-row table: 0.4–0.6 s → 0.1–0.2 s with the session's own partitions;
            # one date of a 5 M-row table, planning: 8 tasks 0.17–0.20 s, 2 tasks 0.08–0.09 s, Parquet 0.05 s)
            conf.setdefault("spark.databricks.delta.snapshotPartitions", str(min(runtime.shuffle_partitions, 2)))
            log.info("delta-spark jars: %s", ", ".join(p.name for p in delta))
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
                quiet: bool = True, storage: StorageConfig | None = None) -> SparkSession:
    """Build (or join) the SparkSession for a job run; the caller passes it on, nobody else builds one.

    ``quiet=False`` (``--log-level DEBUG``) leaves Spark's own log4j defaults, start-up warnings included.
    """
    url = connect_url(runtime)
    if url is not None:
        return connect_session(runtime, url)
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
    for key, value in session_conf(runtime, workspace, submitted, quiet, storage).items():
        builder = builder.config(key, value)

    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(runtime.spark_log_level)
    log.info(
        "Spark %s session ready: master=%s, submitted=%s",
        spark.version, spark.sparkContext.master, submitted,
    )
    return spark


# --------------------------------------------------------------------------- Spark Connect

CONNECT_PORT = 15002   # Spark Connect's default port


def connect_url(runtime: RuntimeConfig) -> str | None:
    """The Spark Connect server of the run: ``runtime.remote``, else ``$SPARK_REMOTE``, else None (a classic
    session: driftline's own JVM, or the one ``spark-submit`` started)."""
    return runtime.remote or os.environ.get("SPARK_REMOTE") or None


def connect_conf(runtime: RuntimeConfig) -> dict[str, str]:
    """The settings a Connect client gives its session: driftline's session-level SQL settings, then
    ``runtime.spark_conf`` (it wins). The settings of a JVM driftline starts (UI, driver options, scratch
    folders, ``spark.jars``, Delta's extension and catalog) are the server's: it was started with them or not."""
    # a Connect client always exchanges data with the server as Arrow: pyspark's Arrow switches are not its own
    conf = {k: v for k, v in SESSION_CONF.items() if not k.startswith("spark.sql.execution.arrow.pyspark.")}
    conf["spark.sql.shuffle.partitions"] = str(runtime.shuffle_partitions)
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(runtime.arrow_batch_size)
    conf.update(runtime.spark_conf)
    return conf


def _reachable(url: str, timeout: float = 10.0) -> None:
    """`EnvironmentProblem` (one line) unless something listens at the URL's host and port: the Connect client
    itself would retry for minutes before failing."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit("http://" + url[len("sc://"):].split("/", 1)[0].split(";", 1)[0])
    host, port = where.hostname or "localhost", where.port or CONNECT_PORT
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise EnvironmentProblem(
            f"Spark Connect server {url}: expected one listening on {host}:{port}, found none ({exc}); "
            "start one (driftline connect-server) or unset runtime.remote / SPARK_REMOTE"
        ) from None


def connect_session(runtime: RuntimeConfig, url: str) -> SparkSession:
    """A Spark Connect session to ``url`` with the settings of `connect_conf` a Connect client may set.

    No JVM here: the server owns master, resources, logs and its classpath; static settings (``spark.jars``,
    ``spark.ui.*``, ``spark.sql.extensions``, ...) cannot be set from a client, so such a key of
    ``runtime.spark_conf`` is skipped with a warning. Nothing here touches ``sparkContext`` (a Connect session
    has none). One Python process holds either classic sessions or Connect ones (pyspark switches its
    functions module to Connect process-wide).
    """
    if url.startswith("sc://"):
        _reachable(url)
    from pyspark.sql import SparkSession

    try:
        spark = SparkSession.builder.remote(url).getOrCreate()
    except Exception as exc:  # noqa: BLE001 - pyspark's errors (a classic session in this process, a bad URL)
        raise EnvironmentProblem(f"Spark Connect server {url}: cannot open a session: {_first_line(exc)}") from None
    skipped = []
    for key, value in connect_conf(runtime).items():
        try:
            spark.conf.set(key, value)
        except Exception as exc:  # noqa: BLE001 - CANNOT_MODIFY_(STATIC_)CONFIG: a server-side setting
            if key in runtime.spark_conf:
                skipped.append(key)
            log.debug("Spark Connect: %s not set from the client: %s", key, _first_line(exc))
    if skipped:
        log.warning("Spark Connect: runtime.spark_conf %s not applied (static settings of the server: start it "
                    "with them)", ", ".join(sorted(skipped)))
    log.info("Spark Connect session ready: %s (server Spark %s)", url, spark.version)
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
