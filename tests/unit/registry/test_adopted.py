"""Reading MLflow models driftline did not train, and the adopted artifact (`driftline.registry.adopted`).

The MLflow model folders are written by MLflow's own flavors (``save_model``); the oracle for every prediction is
the library's own ``predict_proba`` / ``predict`` on the same rows.
"""

from __future__ import annotations

import pickle

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from driftline.errors import ArtifactIntegrityError, UsageError
from driftline.registry.adopted import AdoptedModel, is_adopted, pack, unpack
from driftline.registry.adopted_pyfunc import folder_bytes
from driftline.registry.adopted_read import read_mlflow_model
from driftline.registry.artifact import deserialize, serialize
from driftline.training.pipeline import predict_scores
from tests.payload import Payload


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.standard_t(2, 400), "flag": rng.integers(0, 2, 400).astype(float),
                      "few": rng.integers(0, 4, 400).astype(float)})
    x.loc[::17, "a"] = np.nan
    y = ((x["a"].fillna(0) + x["flag"] + rng.normal(size=400)) > 1).astype(int).to_numpy()
    return x, y


def shuffled(x: pd.DataFrame) -> pd.DataFrame:
    """The rows with the columns in another order and one extra column (scoring selects by name)."""
    return x.assign(extra="z")[["few", "extra", "flag", "a"]]


def test_xgboost_read_and_packed_predicts_as_the_library(tmp_path, data):
    x, y = data
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(x, y)
    mlflow.xgboost.save_model(model, tmp_path / "m", pip_requirements=["xgboost"])
    cand = read_mlflow_model(tmp_path / "m", False, "test")
    assert (cand.flavor, cand.model.kind, cand.model.task, cand.model.columns) == \
        ("xgboost", "xgboost", "classification", ("a", "flag", "few"))
    loaded = deserialize(pack("xgboost", cand.payload, cand.model.columns, "classification"), "test")
    assert isinstance(loaded, AdoptedModel)
    np.testing.assert_allclose(predict_scores(loaded, shuffled(x), "classification"),
                               model.predict_proba(x)[:, 1], rtol=0, atol=1e-9)


def test_lightgbm_booster_and_sklearn_classes(tmp_path, data):
    x, y = data
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7}, lgb.Dataset(x, y), 10)
    mlflow.lightgbm.save_model(booster, tmp_path / "b", pip_requirements=["lightgbm"])
    clf = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(x, y)
    mlflow.lightgbm.save_model(clf, tmp_path / "c", pip_requirements=["lightgbm"])   # skops, MLflow's default
    reg = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(x, x["few"] * 2.0)
    mlflow.lightgbm.save_model(reg, tmp_path / "r", pip_requirements=["lightgbm"])
    for folder, expected, task in (("b", booster.predict(x), "classification"),
                                   ("c", clf.predict_proba(x)[:, 1], "classification"),
                                   ("r", reg.predict(x), "regression")):
        cand = read_mlflow_model(tmp_path / folder, False, folder)
        assert cand.model.task == task, folder
        loaded = unpack(pack("lightgbm", cand.payload, cand.model.columns, task), folder)
        np.testing.assert_allclose(predict_scores(loaded, shuffled(x), task), expected, rtol=0, atol=1e-9)


def test_sklearn_skops_pipeline_is_adopted_without_pickle(tmp_path, data):
    x, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x.fillna(0), y)
    mlflow.sklearn.save_model(model, tmp_path / "s", serialization_format="skops",
                              pip_requirements=["scikit-learn"])
    cand = read_mlflow_model(tmp_path / "s", False, "s")
    assert cand.serialization == "skops"
    loaded = deserialize(pack("sklearn", cand.payload, cand.model.columns, "classification"), "s")
    np.testing.assert_allclose(predict_scores(loaded, shuffled(x.fillna(0)), "classification"),
                               model.predict_proba(x.fillna(0))[:, 1], rtol=0, atol=1e-12)


def test_pickled_model_refused_before_its_bytes_are_read(tmp_path, data):
    x, y = data
    mlflow.sklearn.save_model(LogisticRegression().fit(x.fillna(0), y), tmp_path / "p",
                              serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
    marker = tmp_path / "payload-ran"
    (tmp_path / "p" / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UsageError, match=r"stored as cloudpickle.*adopt\.trust_pickle: true"):
        read_mlflow_model(tmp_path / "p", False, "p")
    assert not marker.exists()


def test_trusted_pickle_is_stored_as_skops(tmp_path, data):
    x, y = data
    model = LogisticRegression().fit(x.fillna(0), y)
    mlflow.sklearn.save_model(model, tmp_path / "p", serialization_format="cloudpickle",
                              pip_requirements=["scikit-learn"])
    cand = read_mlflow_model(tmp_path / "p", True, "p")
    assert cand.serialization == "cloudpickle"
    assert not is_adopted(cand.payload) and cand.payload[:2] == b"PK"          # skops archive
    again = deserialize(cand.payload, "p")
    np.testing.assert_array_equal(again.coef_, model.coef_)


def test_multiclass_and_probability_free_models_are_refused(tmp_path, data):
    x, _ = data
    three = x["few"].clip(0, 2).astype(int)
    mlflow.xgboost.save_model(xgb.XGBClassifier(n_estimators=2).fit(x, three), tmp_path / "m3",
                              pip_requirements=["xgboost"])
    with pytest.raises(UsageError, match=r"expected a binary classifier with classes 0 and 1, found classes \[0, 1, 2\]"):
        read_mlflow_model(tmp_path / "m3", False, "m3")
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, three), 2)
    mlflow.lightgbm.save_model(booster, tmp_path / "l3", pip_requirements=["lightgbm"])
    with pytest.raises(UsageError, match="expected a LightGBM binary classifier or regressor, found objective multiclass"):
        read_mlflow_model(tmp_path / "l3", False, "l3")
    mlflow.sklearn.save_model(LinearSVC().fit(x.fillna(0), three.clip(0, 1)), tmp_path / "svc",
                              serialization_format="skops", pip_requirements=["scikit-learn"])
    with pytest.raises(UsageError, match="expected a classifier with predict_proba .* found LinearSVC without it"):
        read_mlflow_model(tmp_path / "svc", False, "svc")


def test_the_model_own_column_order_wins_over_the_signature(tmp_path, data):
    x, y = data
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7}, lgb.Dataset(x, y), 10)
    mlflow.lightgbm.save_model(booster, tmp_path / "b", pip_requirements=["lightgbm"],
                               signature=infer_signature(x[["few", "a", "flag"]]))     # another order
    cand = read_mlflow_model(tmp_path / "b", False, "b")
    assert cand.model.columns == ("a", "flag", "few")
    loaded = unpack(pack("lightgbm", cand.payload, cand.model.columns, "classification"), "b")
    np.testing.assert_allclose(predict_scores(loaded, shuffled(x), "classification"), booster.predict(x),
                               rtol=0, atol=1e-12)
    mlflow.lightgbm.save_model(booster, tmp_path / "other", pip_requirements=["lightgbm"],
                               signature=infer_signature(x[["a", "flag"]].assign(zz=1.0)))
    with pytest.raises(UsageError, match=r"expected the MLflow signature to name the model's own input columns "
                                         r"\(a, flag, few\), found a, flag, zz"):
        read_mlflow_model(tmp_path / "other", False, "other")


def test_a_skops_label_on_an_adopted_pyfunc_zip_runs_nothing(tmp_path, data):
    """The MLmodel file is not trusted: an adopted python_function artifact behind a 'skops' sklearn flavor is read
    as skops (and refused), never unpacked as an adopted model."""
    x, _ = data
    marker = tmp_path / "loaded"

    class Touch(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            marker.write_text("code ran")

        def predict(self, context, model_input):
            return np.zeros(len(model_input))

    mlflow.pyfunc.save_model(tmp_path / "py", python_model=Touch(), pip_requirements=["mlflow"])
    evil = pack("pyfunc", folder_bytes(tmp_path / "py"), ["a"], "classification")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "model.skops").write_bytes(evil)
    (tmp_path / "fake" / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n")
    marker.unlink(missing_ok=True)
    with pytest.raises(UsageError, match="expected a scikit-learn model driftline can store as skops"):
        read_mlflow_model(tmp_path / "fake", False, "fake")
    assert not marker.exists()


def test_python_function_model_only_with_trust_and_predict_is_the_score(tmp_path, data):
    x, _ = data
    marker = tmp_path / "loaded"

    class Squash(mlflow.pyfunc.PythonModel):      # defined here: cloudpickled by value, as a notebook's would be
        def load_context(self, context):
            marker.write_text("code ran")

        def predict(self, context, model_input):
            return 1 / (1 + np.exp(-model_input["a"].fillna(0) - model_input["flag"]))

    mlflow.pyfunc.save_model(tmp_path / "py", python_model=Squash(), pip_requirements=["mlflow"],
                             input_example=x.head(3))
    marker.unlink(missing_ok=True)                # MLflow ran it to infer the signature
    with pytest.raises(UsageError, match=r"python_function model is its own code.*adopt\.trust_pickle: true"):
        read_mlflow_model(tmp_path / "py", False, "py")
    assert not marker.exists()                    # refused before anything was loaded

    cand = read_mlflow_model(tmp_path / "py", True, "py", "classification")
    assert (cand.flavor, cand.model.kind, cand.model.columns) == ("python_function", "pyfunc", ("a", "flag", "few"))
    packed = pack("pyfunc", cand.payload, cand.model.columns, "classification")
    assert packed == pack("pyfunc", read_mlflow_model(tmp_path / "py", True, "py").payload, cand.model.columns,
                          "classification")     # the same folder gives the same bytes (and hash)
    marker.unlink(missing_ok=True)
    with pytest.raises(ArtifactIntegrityError, match=r"python_function model runs its own code when loaded; refused"):
        deserialize(packed, "py")                 # the config that loads it must trust it too
    assert not marker.exists()
    loaded = deserialize(packed, "py", allow_code=True)
    assert marker.exists()
    want = 1 / (1 + np.exp(-x["a"].fillna(0) - x["flag"]))
    np.testing.assert_allclose(predict_scores(loaded, shuffled(x), "classification"), want, rtol=0, atol=1e-12)

    mlflow.pyfunc.save_model(tmp_path / "nosig", python_model=Squash(), pip_requirements=["mlflow"])
    with pytest.raises(UsageError, match="expected a python_function model with an MLflow signature"):
        read_mlflow_model(tmp_path / "nosig", True, "nosig")


def test_adopted_artifact_is_deterministic_and_damage_is_refused(data):
    x, y = data
    payload = serialize(LogisticRegression().fit(x.fillna(0), y))
    a = pack("sklearn", payload, ["a", "flag", "few"], "classification")
    assert a == pack("sklearn", payload, ["a", "flag", "few"], "classification")
    assert is_adopted(a) and not is_adopted(payload) and not is_adopted(b"not a zip")
    with pytest.raises(ArtifactIntegrityError, match="expected kind sklearn, xgboost, lightgbm, pyfunc, logged, found 'onnx'"):
        unpack(pack("onnx", payload, ["a"], "classification"), "t")
    with pytest.raises(ArtifactIntegrityError, match="expected a LightGBM text model"):
        unpack(pack("lightgbm", b"garbage", ["a"], "classification"), "t")
    with pytest.raises(ArtifactIntegrityError, match="expected an XGBoost model with its class line"):
        unpack(pack("xgboost", b"garbage\n", ["a"], "classification"), "t")
