"""Fixtures of the table-layer tests: a fresh workspace and embedded store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.tables import CommitInfo, StorageConfig, TableStore, open_store


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def store(spark, workspace: Path) -> TableStore:
    return open_store(spark, StorageConfig(backend="embedded"), workspace)


def commit_for(key: str, run_id: str = "run-1", job: str = "score") -> CommitInfo:
    return CommitInfo(job=job, run_id=run_id, key=key, code_version="abc123", config_hash="cfg1")
