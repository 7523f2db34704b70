"""Shared fixtures: one SparkSession for the whole session, built by driftline's own builder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.runtime import RuntimeConfig, build_spark

ROOT = Path(__file__).resolve().parents[1]

# The Delta backend every `storage.backend: auto` of this test run resolves to, subprocesses included:
# scripts/test.sh runs the suite on the embedded backend, then the tests marked ``both_backends`` again
# with DRIFTLINE_STORAGE_BACKEND=native (delta-spark).
os.environ.setdefault("DRIFTLINE_STORAGE_BACKEND", "embedded")
TEST_BACKEND = os.environ["DRIFTLINE_STORAGE_BACKEND"]


@pytest.fixture(scope="session")
def spark_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-workspace")


@pytest.fixture(scope="session")
def spark(spark_workspace: Path) -> Iterator[object]:
    """Local[2] session with UI off and two shuffle partitions: small data, fast tests. One JVM runs the whole
    suite (the demo test's scenario included, which Spark's default 1 GB heap could not hold after the tests
    before it: an OutOfMemoryError ends the JVM and every later test), so 3 GB of heap."""
    os.environ.setdefault("TZ", "UTC")
    session = build_spark(
        RuntimeConfig(master="local[2]", shuffle_partitions=2, app_name="driftline-tests", driver_memory="3g"),
        workspace=spark_workspace,
    )
    yield session
    session.stop()


@pytest.fixture
def conf_dir() -> Path:
    """The project's own conf/ folder (read only)."""
    return ROOT / "conf"
