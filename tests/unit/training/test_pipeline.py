"""Pipelines from config: every estimator fits, handles nulls and unseen categories, is reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.errors import ConfigError
from driftline.training.pipeline import (
    build_pipeline,
    check_estimator_task,
    estimator_params,
    model_frame,
    predict_scores,
)
from driftline.training.spec import EstimatorConfig

NUMERIC = ["a", "b"]
CATEGORICAL = ["plan"]


def data(seed: int = 0, n: int = 300) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    plan = rng.choice(["basic", "pro", None], size=n).astype(object)
    logit = 1.5 * a - b + (plan == "pro") * 1.0
    y_cls = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    y_reg = 2 * a - b + rng.normal(scale=0.1, size=n)
    pdf = pd.DataFrame({"a": a, "b": b, "plan": plan})
    pdf.loc[::17, "a"] = None
    return pdf, y_cls, y_reg


@pytest.mark.parametrize("kind,task", [
    ("logistic_regression", "classification"), ("hist_gradient_boosting", "classification"),
    ("random_forest", "classification"), ("ridge", "regression"),
    ("hist_gradient_boosting_regressor", "regression"),
])
def test_every_estimator_fits_and_scores_unseen_and_null_inputs(kind: str, task: str) -> None:
    pdf, y_cls, y_reg = data()
    y = y_cls if task == "classification" else y_reg
    params = {"n_estimators": 20} if kind == "random_forest" else {}
    cfg = EstimatorConfig(type=kind, params=params)
    x = model_frame(pdf, NUMERIC, CATEGORICAL)
    model = build_pipeline(cfg, NUMERIC, CATEGORICAL).fit(x, y)
    new = model_frame(pd.DataFrame({"a": [None, 0.5], "b": [0.1, None], "plan": ["enterprise", None]}),
                      NUMERIC, CATEGORICAL)
    scores = predict_scores(model, new, task)
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    fitted = predict_scores(model, x, task)
    if task == "classification":
        assert np.all((scores >= 0) & (scores <= 1))
        from sklearn.metrics import roc_auc_score
        assert roc_auc_score(y, fitted) > 0.7          # it learned the signal
    else:
        assert np.corrcoef(fitted, y)[0, 1] > 0.9


def test_same_seed_same_predictions_other_seed_differs() -> None:
    pdf, y, _ = data()
    x = model_frame(pdf, NUMERIC, CATEGORICAL)

    def fit(seed: int) -> np.ndarray:
        cfg = EstimatorConfig(type="random_forest", params={"n_estimators": 15, "max_features": 1}, seed=seed)
        return predict_scores(build_pipeline(cfg, NUMERIC, CATEGORICAL).fit(x, y), x, "classification")

    assert np.array_equal(fit(7), fit(7))
    assert not np.array_equal(fit(7), fit(8))


def test_scaling_is_optional_and_config_errors_name_keys() -> None:
    on = build_pipeline(EstimatorConfig(), NUMERIC, CATEGORICAL)
    off = build_pipeline(EstimatorConfig(scale_numeric=False), NUMERIC, CATEGORICAL)
    assert "scale" in dict(on.named_steps["prep"].transformers[0][1].steps)
    assert "scale" not in dict(off.named_steps["prep"].transformers[0][1].steps)
    assert estimator_params(EstimatorConfig(type="ridge", seed=3))["random_state"] == 3
    with pytest.raises(ConfigError, match=r"estimator.params: max_iterz not accepted by LogisticRegression"):
        estimator_params(EstimatorConfig(params={"max_iterz": 3}))
    with pytest.raises(ConfigError, match=r"expected one of ridge, hist_gradient_boosting_regressor .* found "
                                          r"'random_forest'"):
        check_estimator_task("random_forest", "regression")


def test_model_frame_types_and_missing_columns() -> None:
    pdf = pd.DataFrame({"a": ["1.5", None], "b": [1, 2], "plan": pd.Series([3, None], dtype=object)})
    x = model_frame(pdf, NUMERIC, CATEGORICAL)
    assert x["a"].dtype == "float64" and np.isnan(x["a"][1])
    assert x["plan"].tolist() == ["3", None]
    with pytest.raises(ConfigError, match="expected feature columns b, found them missing"):
        model_frame(pdf.drop(columns=["b"]), NUMERIC, CATEGORICAL)
