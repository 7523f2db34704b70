"""Registry round trip through MLflow (tmp SQLite): register, verified load, aliases, `driftline models`."""

from __future__ import annotations

import pickle
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from driftline.cli.models import models_command
from driftline.errors import ArtifactIntegrityError
from driftline.registry.client import (
    CHAMPION,
    PREVIOUS,
    ModelRegistry,
    clear_cache,
    configure,
    ensure_experiment,
    log_model,
    tracking_setup,
)
from driftline.registry.spec import MlflowConfig
from driftline.training.pipeline import build_pipeline, model_frame, predict_scores
from driftline.training.spec import EstimatorConfig
from tests.payload import Payload

MODEL = "toy"

MODEL_YAML = """
name: toy
entity_key: id
sources:
  events: {table: toy_events, key: id, timestamp: ts}
  labels: {table: toy_labels, key: id, timestamp: label_ts, value: y}
features:
  - {name: a, kind: aggregate, agg: sum, column: amount, window: 7d}
"""




@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A workspace with three registered versions of ``toy`` (C = 0.01, 1, 100) and a conf dir."""
    ws = tmp_path_factory.mktemp("ws")
    conf = tmp_path_factory.mktemp("conf")
    (conf / "models").mkdir()
    (conf / "base.yaml").write_text("workspace: .driftline\n")
    (conf / "models" / "toy.yaml").write_text(MODEL_YAML)
    setup = tracking_setup(MlflowConfig(experiment="toy-exp"), ws)
    registry = ModelRegistry(setup, MODEL)
    configure(setup)
    exp = ensure_experiment(registry.client, setup)
    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({"a": rng.normal(size=120)})
    x = model_frame(pdf, ["a"], [])
    y = (pdf["a"] + rng.normal(size=120) > 0).astype(int).to_numpy()
    models = {}
    for c in (0.01, 1.0, 100.0):
        model = build_pipeline(EstimatorConfig(params={"C": c}), ["a"], []).fit(x, y)
        with mlflow.start_run(experiment_id=exp) as run:
            logged = log_model(registry, model, x.head(3), infer_signature(x, predict_scores(model, x, "classification")))
            v = registry.register(logged.model_uri, run.info.run_id, logged.sha256, logged.size,
                                  {"driftline.date": "2026-01-10"})
        models[v.version] = model
    return {"ws": ws, "conf": conf, "setup": setup, "registry": registry, "models": models, "x": x}


def cli(world, *args: str) -> int:
    return models_command([*args, "--model", MODEL, "--conf-dir", str(world["conf"]),
                           "--workspace", str(world["ws"])])


def test_defaults_live_under_the_workspace(world) -> None:
    setup = world["setup"]
    assert setup.tracking_uri == f"sqlite:///{world['ws'].resolve() / 'mlflow.db'}"
    assert setup.registry_uri == setup.tracking_uri
    assert setup.artifact_location == (world["ws"].resolve() / "mlartifacts").as_uri()
    assert any((world["ws"] / "mlartifacts").rglob("model.skops"))


def test_round_trip_loads_the_same_model_after_hash_check(world) -> None:
    registry, x = world["registry"], world["x"]
    clear_cache()
    versions = registry.versions()
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert all(len(v.sha256 or "") == 64 for v in versions)
    for v in versions:
        loaded = registry.load(v.version)
        want = predict_scores(world["models"][v.version], x, "classification")
        assert np.array_equal(predict_scores(loaded, x, "classification"), want)
    assert registry.load("2") is registry.load("2")   # cached per (version, hash)


def _artifact_file(registry: ModelRegistry, version: str) -> Path:
    uri = registry.artifact_uri(registry.get(version))
    return Path(uri.removeprefix("file://"))


def test_tampered_and_truncated_artifacts_are_refused_before_loading(world, tmp_path: Path) -> None:
    registry = world["registry"]
    clear_cache()
    path = _artifact_file(registry, "3")
    original = path.read_bytes()
    marker = tmp_path / "pwned"
    try:
        path.write_bytes(pickle.dumps(Payload(marker)))
        with pytest.raises(ArtifactIntegrityError, match=r"model.skops of toy v3: expected SHA-256 [0-9a-f]{64} \(recorded at registration\)"):
            registry.load("3")
        assert not marker.exists()
        # promoting a version whose artifact does not verify is refused, aliases untouched (exit 1)
        assert cli(world, "promote", "3") == 1
        assert registry.alias(CHAMPION) is None or registry.alias(CHAMPION).version != "3"
        path.write_bytes(original[:100])
        with pytest.raises(ArtifactIntegrityError, match=r"found [0-9a-f]{64} \(100 bytes\)"):
            registry.load("3")
    finally:
        path.write_bytes(original)
    assert registry.load("3") is not None


def test_models_promote_rollback_and_list(world, capsys) -> None:
    registry = world["registry"]
    assert cli(world, "promote", "1") == 0
    assert "champion is now v1 (no previous champion)" in capsys.readouterr().out
    assert cli(world, "promote", "2") == 0
    assert "champion is now v2 (previous: v1)" in capsys.readouterr().out
    assert (registry.alias(CHAMPION).version, registry.alias(PREVIOUS).version) == ("2", "1")

    assert cli(world, "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["VERSION", "ALIASES", "CREATED"]
    assert out[1].split()[:2] == ["3", "-"] and out[2].split()[:2] == ["2", "champion"]
    assert out[3].split()[:2] == ["1", "previous"] and "2026-01-10" in out[3]

    assert cli(world, "rollback") == 0
    assert "rolled back champion v2 → v1" in capsys.readouterr().out
    assert registry.alias(CHAMPION).version == "1" and registry.alias(PREVIOUS) is None
    assert "driftline.rolled_back_at" in registry.get("2").tags

    assert cli(world, "rollback") == 2   # nothing left to roll back to: usage problem, nothing changed
    err = capsys.readouterr().err.strip()
    assert err == ("driftline models: error: model toy: expected a version with alias 'previous' "
                   "to roll back to, found none")
    assert registry.alias(CHAMPION).version == "1"

    assert cli(world, "promote", "99") == 2
    err = capsys.readouterr().err.strip()
    assert err == ("driftline models: error: model toy: expected an existing version, "
                   "found no version 99 (versions: 1, 2, 3)")
    assert cli(world, "promote", "1") == 0
    assert "already the champion" in capsys.readouterr().out


def test_models_usage_errors_and_help(world, capsys) -> None:
    assert models_command(["--help"]) == 0
    assert "promote VERSION" in capsys.readouterr().out
    assert models_command(["list"]) == 2                    # --model is required
    assert "--model" in capsys.readouterr().err
    assert models_command(["frobnicate", "--model", MODEL]) == 2
    assert cli(world, "list", "--set", "mlflow.experimentt=x") == 2
    assert "mlflow.experimentt: unknown key" in capsys.readouterr().err


def test_models_adopt_usage_errors_before_spark(world, capsys) -> None:
    """`driftline models adopt`: its arguments and dates are checked before a model is read or Spark starts."""
    assert models_command(["adopt", "--help"]) == 0
    assert "--reference-from" in capsys.readouterr().out
    assert cli(world, "adopt", "--reference-from", "2026-01-01", "--reference-to", "2026-01-31") == 2
    assert "--model-uri" in capsys.readouterr().err
    base = ["adopt", "--model-uri", "models:/x/1", "--reference-from"]
    assert cli(world, *base, "2026-02-30", "--reference-to", "2026-03-01") == 2
    assert "expected a real calendar date as YYYY-MM-DD, found '2026-02-30'" in capsys.readouterr().err
    assert cli(world, *base, "2026-02-10", "--reference-to", "2026-02-01") == 2
    assert capsys.readouterr().err.strip() == ("driftline models: error: --reference-to: expected a date on or after "
                                               "--reference-from 2026-02-10, found 2026-02-01")
    assert cli(world, *base, "2026-02-01", "--reference-to", "2026-02-10", "--date", "2026-02-10") == 2
    assert capsys.readouterr().err.strip() == ("driftline models: error: --reference-to: expected a date before the "
                                               "run's date 2026-02-10 (labels known before it are used), found "
                                               "2026-02-10")
