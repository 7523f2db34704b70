"""Fixtures of the table-layer tests: a fresh workspace, and a store per test on each backend.

``store`` runs a test on both backends (the table semantics are the same; ``native`` needs the
delta-spark jars and is marked ``native_delta``); tests of the embedded backend's own machinery
(staging folders, its read path, its fault-injection points) are marked `embedded_only`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.tables import CommitInfo, StorageConfig, TableStore, open_store
from driftline.tables.native import native_available

BACKENDS = ["embedded", pytest.param("native", marks=pytest.mark.native_delta)]
# For a test of the embedded backend's own machinery: ``store`` is only the embedded one.
embedded_only = pytest.mark.parametrize("store", ["embedded"], indirect=True)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def store_on(spark, backend: str, workspace: Path, **settings: object) -> TableStore:
    """A store of ``backend`` on ``workspace`` (skips the test when native is asked for without the jars)."""
    if backend == "native" and not native_available(spark):
        pytest.skip("delta-spark jars not on the classpath")
    return open_store(spark, StorageConfig(backend=backend, **settings), workspace)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, spark, workspace: Path) -> TableStore:
    return store_on(spark, request.param, workspace)


def commit_for(key: str, run_id: str = "run-1", job: str = "score") -> CommitInfo:
    return CommitInfo(job=job, run_id=run_id, key=key, code_version="abc123", config_hash="cfg1")
