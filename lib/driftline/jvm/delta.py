"""delta-spark's JVM jars: which build matches the installed pyspark, where set-up put them, the session settings.

Delta publishes one ``io.delta:delta-spark_<spark minor>_2.13`` artifact per Spark minor; only the
Spark minors in `BUILDS` have one that driftline has checked. ``scripts/setup.sh`` runs
``python -m driftline.cli.delta_jars fetch`` once: the jars come from Maven Central, are checked against
their SHA-1 and land in `jar_dir` (inside the venv), so later sessions start offline. `build_spark`
then puts them on ``spark.jars`` with Delta's SQL extension and catalog (`DELTA_SESSION_CONF`): the
``native`` backend and ``storage.catalog`` can run. Without them the tables stay on the embedded
(delta-rs) backend and one warning line says why; a jar of another version — in that folder or in the
user's ``spark.jars`` — is an `EnvironmentProblem` naming the jar, the version expected and the one found.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import EnvironmentProblem

log = logging.getLogger(__name__)

MAVEN = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha1: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        return f"{MAVEN}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


# Spark minor → the delta-spark jars built for it (antlr4-runtime, delta's third dependency, ships with pyspark).
BUILDS: dict[str, tuple[Jar, ...]] = {
    "4.2": (
        Jar("io.delta", "delta-spark_4.2_2.13", "4.4.0", "c2ab26421b8de44a2161b5e0b7da7954049f1ca1"),
        Jar("io.delta", "delta-storage", "4.4.0", "a068e489ce20d7f79bc4ca2d3392f12adbb69ddd"),
    ),
}

# Static settings (they must be set before the session exists) that turn the jars into Delta SQL support.
DELTA_SESSION_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Set to "true" by `build_spark` when the jars above are driftline's own (read by ``storage.backend: auto``).
DELTA_JARS_CONF = "spark.driftline.deltaJars"

_JAR_NAME = re.compile(r"^(delta-spark(?:_[0-9.]+)?_2\.1[23]|delta-storage)-([0-9][0-9A-Za-z.\-]*)\.jar$")


def spark_minor() -> str:
    import pyspark

    return ".".join(pyspark.__version__.split(".")[:2])


def expected_jars() -> tuple[Jar, ...]:
    """The jars of the delta-spark build for the installed pyspark (empty: Delta has no build for it)."""
    return BUILDS.get(spark_minor(), ())


def jar_dir() -> Path:
    """``$DRIFTLINE_DELTA_JARS``, else ``<venv>/share/driftline/delta-jars``."""
    explicit = os.environ.get("DRIFTLINE_DELTA_JARS")
    return Path(explicit) if explicit else Path(sys.prefix) / "share" / "driftline" / "delta-jars"


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()  # noqa: S324 - Maven Central publishes SHA-1 checksums
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_foreign(jars: list[str]) -> None:
    """`EnvironmentProblem` when a delta jar among ``jars`` (paths or names) is not the version this pyspark needs."""
    want = {j.artifact: j for j in expected_jars()}
    for entry in jars:
        match = _JAR_NAME.match(Path(entry).name)
        if not match:
            continue
        artifact, version = match.groups()
        jar = want.get(artifact)
        if jar is None:
            builds = (", ".join(j.file_name for j in expected_jars())
                      or f"none (Delta has no build for Spark {spark_minor()})")
            raise EnvironmentProblem(
                f"delta jar {entry}: expected {builds} for pyspark {spark_minor()}, found {artifact} {version}"
            )
        if version != jar.version:
            raise EnvironmentProblem(
                f"delta jar {entry}: expected {jar.artifact} version {jar.version} for pyspark {spark_minor()}, "
                f"found version {version}"
            )


def session_jars(user_jars: str | None = None) -> list[Path]:
    """The delta-spark jars to put on ``spark.jars``; [] (one warning line) when they are not installed.

    `EnvironmentProblem` when a delta jar of another version sits in `jar_dir` or in ``user_jars``
    (the user's ``spark.jars``). Checksums are checked once, by `fetch`.
    """
    folder = jar_dir()
    present = sorted(p.name for p in folder.glob("*.jar")) if folder.is_dir() else []
    check_foreign([str(folder / name) for name in present] + [j for j in (user_jars or "").split(",") if j])
    wanted = expected_jars()
    if not wanted:
        log.warning("delta-spark: no build for pyspark %s is known to driftline; tables use the embedded "
                    "backend", spark_minor())
        return []
    missing = [j.file_name for j in wanted if j.file_name not in present]
    if missing:
        log.warning("delta-spark jars not installed (%s missing in %s): tables use the embedded backend; "
                    "scripts/setup.sh fetches them", ", ".join(missing), folder)
        return []
    return [folder / j.file_name for j in wanted]


def fetch(dest: Path | None = None) -> list[Path]:
    """Download the jars for the installed pyspark into ``dest`` (default `jar_dir`), each checked against its
    published SHA-1; a jar already there with the right checksum is kept. `EnvironmentProblem` on failure."""
    dest = dest or jar_dir()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for jar in expected_jars():
        target = dest / jar.file_name
        if target.is_file() and _sha1(target) == jar.sha1:
            out.append(target)
            continue
        try:
            with urllib.request.urlopen(jar.url, timeout=300) as response:  # noqa: S310 - fixed https URL
                data = response.read()
        except OSError as exc:
            raise EnvironmentProblem(f"delta jar {jar.file_name}: download from {jar.url} failed: {exc}") from None
        got = hashlib.sha1(data).hexdigest()  # noqa: S324
        if got != jar.sha1:
            raise EnvironmentProblem(f"delta jar {jar.file_name}: expected SHA-1 {jar.sha1}, found {got} ({jar.url})")
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, target)
        log.info("fetched %s (%.1f MB) into %s", jar.file_name, len(data) / 1e6, dest)
        out.append(target)
    return out
