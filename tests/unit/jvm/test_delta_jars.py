"""delta-spark jars: the build for the installed pyspark, the one-line errors and warning, the session settings."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from driftline.errors import EnvironmentProblem
from driftline.jvm import delta
from driftline.runtime import RuntimeConfig, session_conf


def test_the_pinned_pyspark_has_a_delta_build_and_set_up_installed_it() -> None:
    jars = delta.expected_jars()
    assert [j.artifact for j in jars] == [f"delta-spark_{delta.spark_minor()}_2.13", "delta-storage"]
    for jar in jars:   # scripts/setup.sh fetched them, checksums as published
        path = delta.jar_dir() / jar.file_name
        assert hashlib.sha1(path.read_bytes()).hexdigest() == jar.sha1


def test_the_session_gets_the_jars_and_delta_sql_settings(monkeypatch, tmp_path: Path) -> None:
    conf = session_conf(RuntimeConfig(jvm_fold=False))
    assert conf["spark.jars"].split(",") == [str(delta.jar_dir() / j.file_name) for j in delta.expected_jars()]
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert conf["spark.databricks.delta.snapshotPartitions"] == "2"    # min(runtime.shuffle_partitions, 2), not 50
    one = session_conf(RuntimeConfig(jvm_fold=False, shuffle_partitions=1))
    assert one["spark.databricks.delta.snapshotPartitions"] == "1"
    off = session_conf(RuntimeConfig(jvm_fold=False, delta_jars=False))
    assert "spark.jars" not in off and "spark.sql.extensions" not in off
    assert "spark.sql.extensions" not in session_conf(RuntimeConfig(jvm_fold=False), submitted=True)


def test_missing_jars_are_one_warning_line_and_the_embedded_backend(monkeypatch, tmp_path: Path, caplog) -> None:
    monkeypatch.setenv("DRIFTLINE_DELTA_JARS", str(tmp_path / "none"))
    with caplog.at_level(logging.WARNING, logger="driftline.jvm.delta"):
        conf = session_conf(RuntimeConfig(jvm_fold=False))
    assert "spark.jars" not in conf and "spark.sql.extensions" not in conf
    [record] = caplog.records
    message = record.getMessage()
    assert "\n" not in message and "tables use the embedded backend" in message
    assert all(j.file_name in message for j in delta.expected_jars())


@pytest.mark.parametrize(("name", "found"), [
    ("delta-spark_4.2_2.13-4.3.0.jar", "found version 4.3.0"),
    ("delta-spark_4.1_2.13-4.4.0.jar", "found delta-spark_4.1_2.13 4.4.0"),
    ("delta-storage-3.2.0.jar", "found version 3.2.0"),
])
def test_a_mismatched_jar_is_one_line_naming_jar_expected_and_found(monkeypatch, tmp_path: Path, name: str,
                                                                      found: str) -> None:
    if delta.spark_minor() != "4.2":
        pytest.skip("the expected versions below are those of pyspark 4.2")
    (tmp_path / name).write_bytes(b"not a jar")
    monkeypatch.setenv("DRIFTLINE_DELTA_JARS", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as err:
        session_conf(RuntimeConfig(jvm_fold=False))
    line = str(err.value)
    assert "\n" not in line and name in line and found in line and "expected" in line and "4.4.0" in line
    # the same check for a jar the user puts on spark.jars themselves
    monkeypatch.delenv("DRIFTLINE_DELTA_JARS")
    with pytest.raises(EnvironmentProblem, match=found):
        session_conf(RuntimeConfig(jvm_fold=False, spark_conf={"spark.jars": f"/opt/x/{name}"}))


def test_fetch_refuses_a_download_whose_checksum_differs(monkeypatch, tmp_path: Path) -> None:
    repo = tmp_path / "maven"
    for jar in delta.expected_jars():
        target = repo / jar.url[len(delta.MAVEN) + 1:]
        target.parent.mkdir(parents=True)
        target.write_bytes(b"tampered")
    monkeypatch.setattr(delta, "MAVEN", repo.as_uri())
    dest = tmp_path / "jars"
    with pytest.raises(EnvironmentProblem, match="expected SHA-1 .* found " + hashlib.sha1(b"tampered").hexdigest()):
        delta.fetch(dest)
    assert not list(dest.glob("*.jar")), "nothing half-written"
