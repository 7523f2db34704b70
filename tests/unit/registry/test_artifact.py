"""Artifact integrity (R16, R17): hashes checked before deserialization; skops with trusted types only."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from driftline.errors import ArtifactIntegrityError
from driftline.registry import artifact
from driftline.registry.artifact import load_verified, serialize, sha256_bytes
from driftline.training.pipeline import build_pipeline, model_frame, predict_scores
from driftline.training.spec import EstimatorConfig
from tests.payload import Payload


class Custom:
    """A type outside the allow-list."""

    def __init__(self) -> None:
        self.x = 1


def fitted(kind: str):
    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({"a": rng.normal(size=200), "plan": rng.choice(["x", "y"], 200).astype(object)})
    y = (pdf["a"] > 0).astype(int).to_numpy() if kind not in ("ridge", "hist_gradient_boosting_regressor") \
        else pdf["a"].to_numpy() * 2
    params = {"n_estimators": 5} if kind == "random_forest" else {}
    x = model_frame(pdf, ["a"], ["plan"])
    return build_pipeline(EstimatorConfig(type=kind, params=params), ["a"], ["plan"]).fit(x, y), x


@pytest.fixture
def no_deserialize(monkeypatch):
    """Record every call of skops' deserializers: a refused artifact must never reach them."""
    calls: list[str] = []
    real = skops.io.loads

    def spy(*a, **kw):
        calls.append("loads")
        return real(*a, **kw)

    monkeypatch.setattr(skops.io, "loads", spy)
    monkeypatch.setattr(skops.io, "load", lambda *a, **kw: calls.append("load"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **kw: calls.append("pickle"))
    return calls


@pytest.mark.parametrize("kind", ["logistic_regression", "hist_gradient_boosting", "random_forest", "ridge",
                                  "hist_gradient_boosting_regressor"])
def test_every_estimator_round_trips_with_trusted_types_only(tmp_path: Path, kind: str) -> None:
    model, x = fitted(kind)
    data = serialize(model)
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    loaded = load_verified(path, sha256_bytes(data))
    task = "regression" if kind in ("ridge", "hist_gradient_boosting_regressor") else "classification"
    assert np.array_equal(predict_scores(loaded, x, task), predict_scores(model, x, task))


def test_truncated_artifact_is_refused_before_deserialization(tmp_path: Path, no_deserialize) -> None:
    model, _ = fitted("logistic_regression")
    data = serialize(model)
    path = tmp_path / "model.skops"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactIntegrityError) as err:
        load_verified(path, sha256_bytes(data))
    msg = str(err.value)
    assert f"expected SHA-256 {sha256_bytes(data)} (recorded at registration)" in msg
    assert f"found {sha256_bytes(data[: len(data) // 2])} ({len(data) // 2} bytes)" in msg
    assert "refusing to load" in msg and "\n" not in msg
    assert no_deserialize == []


def test_tampered_pickle_payload_never_runs(tmp_path: Path, no_deserialize) -> None:
    # the oracle: this payload really does create a file when unpickled
    probe = tmp_path / "probe-marker"
    pickle._loads(pickle.dumps(Payload(probe)))  # the pure-python unpickler (pickle.loads is spied on)
    assert probe.exists()

    marker = tmp_path / "pwned-marker"
    model, _ = fitted("logistic_regression")
    good = serialize(model)
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ArtifactIntegrityError, match=r"expected SHA-256 [0-9a-f]{64} \(recorded at registration\)"):
        load_verified(path, sha256_bytes(good))
    assert not marker.exists()
    assert no_deserialize == []


def test_payload_with_a_forged_hash_is_still_not_executed(tmp_path: Path) -> None:
    """Second defense: even if the recorded hash were replaced too, skops does not unpickle."""
    marker = tmp_path / "pwned-marker"
    evil = pickle.dumps(Payload(marker))
    path = tmp_path / "model.skops"
    path.write_bytes(evil)
    with pytest.raises(ArtifactIntegrityError, match="expected a skops archive, found unreadable content"):
        load_verified(path, sha256_bytes(evil))
    assert not marker.exists()


def test_untrusted_types_are_refused_on_save_and_load(tmp_path: Path) -> None:
    with pytest.raises(ArtifactIntegrityError, match=r"expected only trusted types, found .*Custom"):
        serialize(Custom())
    data = skops.io.dumps(Custom())
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    with pytest.raises(ArtifactIntegrityError, match=r"expected only trusted types, found .*Custom"):
        load_verified(path, sha256_bytes(data))


def test_missing_recorded_hash_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(b"anything")
    with pytest.raises(ArtifactIntegrityError, match="expected a SHA-256 recorded at registration, found none"):
        load_verified(path, "")
    assert artifact.MODEL_FILE == "model.skops"
