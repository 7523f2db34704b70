"""driftline's own JVM code: Java sources shipped with the package, compiled once per machine into a jar.

The profile pass (`driftline.profiling.fold.core_pass`) folds each task's rows on the JVM when the class
is loaded (``driftline.jvm.ProfileFold``): no rows cross to Python, so a window costs little more than a plain
Spark scan. `build_spark` compiles the sources with the ``javac`` of the Java that runs Spark (against
pyspark's own jars) into a cached jar and puts it on ``spark.jars``; without a JDK (a JRE only), under
``spark-submit`` without ``--jars``, with ``runtime.jvm_fold: false``, or on a Spark Connect session
(`is_connect`: no driver JVM in this process), the same statistics come from the Arrow + numpy fold instead
(same rows, same merge). `jar_path` is where the jar is; ``driftline jar``
(`driftline.cli.jar`) prints it.

The jar is cached at ``$DRIFTLINE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/driftline`` or ``~/.cache/driftline``)
under a name derived from the sources and the pyspark version, so an upgrade of either builds a new one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

SOURCES = Path(__file__).resolve().parent / "src"
PROFILE_FOLD = "driftline.jvm.ProfileFold"
JVM_FOLD_CONF = "spark.driftline.jvmFold"   # session setting from runtime.jvm_fold: "false" = never use the class


class JarBuildError(RuntimeError):
    """The Java sources could not be compiled (no javac, or javac failed)."""


def cache_dir() -> Path:
    explicit = os.environ.get("DRIFTLINE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "driftline"


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def jar_path() -> Path:
    """Where the jar of the current sources and pyspark version lives (built or not)."""
    import pyspark

    digest = hashlib.sha256(pyspark.__version__.encode())
    for src in _sources():
        digest.update(src.relative_to(SOURCES).as_posix().encode())
        digest.update(src.read_bytes())
    return cache_dir() / f"driftline-jvm-{digest.hexdigest()[:16]}.jar"


def _javac() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "javac").exists():
        return str(Path(home) / "bin" / "javac")
    return shutil.which("javac")


def build_jar() -> Path:
    """The jar of driftline's Java sources, compiled now unless cached; `JarBuildError` when it cannot be."""
    target = jar_path()
    if target.exists():
        return target
    javac = _javac()
    if javac is None:
        raise JarBuildError("no javac found (JAVA_HOME/bin/javac or on PATH): a JDK 17+ is needed, a JRE is not")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        classes = Path(tmp) / "classes"
        cmd = [javac, "--release", "17", "-nowarn", "-encoding", "UTF-8", "-cp", str(_pyspark_jars() / "*"),
               "-d", str(classes), *map(str, _sources())]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise JarBuildError(f"{javac} failed to run: {exc}") from None
        if done.returncode != 0:
            first = next((line for line in done.stderr.splitlines() if line.strip()), "no output")
            raise JarBuildError(f"{javac} exited with {done.returncode}: {first}")
        partial = Path(tmp) / target.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: driftline\n")
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        os.replace(partial, target)   # atomic: a concurrent build leaves one whole jar
    log.info("compiled driftline's JVM code into %s", target)
    return target


def session_jar() -> Path | None:
    """The jar to put on ``spark.jars`` when driftline starts the JVM, or None (logged) when it cannot be built."""
    try:
        return build_jar()
    except (JarBuildError, OSError) as exc:
        log.warning("driftline's JVM fold is off, profiles use the Arrow fold (slower): %s", exc)
        return None


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect session: no driver JVM in this process (no ``sparkContext``, ``_jvm``,
    ``_jsparkSession``, RDDs, broadcasts), so driftline's JVM code and py4j calls are out of reach.

    The one test of it; domain packages (tables, profiling, scoring, ...) import it from here. Checked on the
    session's class, so pyspark's Connect client (and its grpc dependencies) is never imported for the test."""
    return type(spark).__module__.startswith("pyspark.sql.connect.")


def java_class(spark: SparkSession, name: str) -> Any | None:
    """The py4j handle of class ``name`` in the driver JVM, or None when it is not on the classpath (or there is
    no driver JVM to reach: a Spark Connect session, `is_connect`)."""
    if is_connect(spark):
        return None
    from py4j.java_gateway import JavaClass

    try:
        node: Any = spark.sparkContext._jvm
    except Exception:  # noqa: BLE001 - no driver JVM to reach (a stopped context): no class, Arrow fold
        return None
    if node is None:
        return None
    for part in name.split("."):
        node = getattr(node, part)
    return node if isinstance(node, JavaClass) else None

