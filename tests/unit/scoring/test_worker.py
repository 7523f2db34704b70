"""The per-worker model cache: keyed by version and artifact hash, verified before loading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.errors import ArtifactIntegrityError
from driftline.registry.artifact import serialize, sha256_bytes
from driftline.scoring import worker
from driftline.training.pipeline import build_pipeline, model_frame
from driftline.training.spec import EstimatorConfig


@pytest.fixture
def artifact() -> tuple[bytes, str]:
    pdf = pd.DataFrame({"x1": np.arange(20.0), "plan": ["a", "b"] * 10})
    model = build_pipeline(EstimatorConfig(), ["x1"], ["plan"]).fit(model_frame(pdf, ["x1"], ["plan"]), [0, 1] * 10)
    data = serialize(model)
    worker.clear()
    return data, sha256_bytes(data)


def test_loaded_once_per_version_and_hash(artifact: tuple[bytes, str]) -> None:
    data, sha = artifact
    fetches: list[int] = []

    def fetch() -> bytes:
        fetches.append(1)
        return data

    first = worker.cached_model("m", "1", sha, fetch, threads=1)
    assert worker.cached_model("m", "1", sha, fetch, threads=1) is first
    assert len(fetches) == 1
    other = worker.cached_model("m", "2", sha, fetch, threads=1)
    assert other is not first and len(fetches) == 2
    assert worker.cached_keys() == [("m", "1", sha), ("m", "2", sha)]


def test_thread_limit_is_applied(artifact: tuple[bytes, str]) -> None:
    from threadpoolctl import threadpool_info

    data, sha = artifact
    worker.cached_model("m", "1", sha, lambda: data, threads=1)
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())


def test_bytes_that_do_not_match_the_hash_are_refused(artifact: tuple[bytes, str]) -> None:
    data, sha = artifact
    with pytest.raises(ArtifactIntegrityError, match="expected SHA-256"):
        worker.cached_model("m", "1", sha, lambda: data[:-10], threads=1)
    assert worker.cached_keys() == []
