"""Recency weights (pure) and the weighted fit: ``training.recency`` reaches the estimator as sklearn's own
``sample_weight`` would."""

from __future__ import annotations

import datetime as dt
import inspect

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from driftline.training.pipeline import (
    CLASSIFIERS,
    REGRESSORS,
    build_pipeline,
    estimator_class,
    fit_pipeline,
    model_frame,
    predict_scores,
    recency_weights,
)
from driftline.training.spec import EstimatorConfig, RecencyConfig, TrainingConfig

END = dt.date(2026, 2, 10)
ONSET = dt.date(2026, 2, 8)
DAYS = [dt.date(2026, 2, d) for d in (1, 4, 7, 8, 9, 10)]


def test_defaults_and_onset_weight_without_onset_are_off() -> None:
    assert TrainingConfig().recency == RecencyConfig(post_onset_weight=1.0, half_life_days=None)
    assert not RecencyConfig().enabled
    assert recency_weights(DAYS, END, ONSET, RecencyConfig()) is None
    assert recency_weights(DAYS, END, None, RecencyConfig(post_onset_weight=5)) is None   # no onset: nothing
    assert recency_weights([], END, ONSET, RecencyConfig(half_life_days=7)) is None


def test_post_onset_weight_alone() -> None:
    w = recency_weights(DAYS, END, ONSET, RecencyConfig(post_onset_weight=3))
    raw = np.array([1, 1, 1, 3, 3, 3], dtype=float)
    assert w is not None and np.allclose(w, raw / raw.mean()) and w.mean() == pytest.approx(1.0)


def test_half_life_and_onset_weight_multiply() -> None:
    cfg = RecencyConfig(post_onset_weight=2, half_life_days=3)
    w = recency_weights(pd.Series(pd.to_datetime(DAYS)), END, ONSET, cfg)   # datetimes work as dates
    ages = np.array([9, 6, 3, 2, 1, 0], dtype=float)
    raw = np.where(np.array(DAYS) >= ONSET, 2.0, 1.0) * 0.5 ** (ages / 3)
    assert w is not None and np.allclose(w, raw / raw.mean())
    assert w[-1] / w[-2] == pytest.approx(2 ** (1 / 3))          # one day newer: 2^(1/half-life) heavier
    assert w[2] * 2 / w[3] == pytest.approx(0.5 ** (1 / 3))      # the onset step on top of the decay
    only_decay = recency_weights(DAYS, END, None, RecencyConfig(post_onset_weight=2, half_life_days=3))
    assert only_decay is not None and np.allclose(only_decay, 0.5 ** (ages / 3) / (0.5 ** (ages / 3)).mean())


@pytest.mark.parametrize("bad", [{"post_onset_weight": 0.5}, {"half_life_days": 0}, {"half_life_days": -1}])
def test_recency_config_bounds(bad: dict) -> None:
    with pytest.raises(ValidationError):
        RecencyConfig(**bad)


@pytest.mark.parametrize("kind", [*CLASSIFIERS, *REGRESSORS])
def test_every_estimator_accepts_sample_weight(kind: str) -> None:
    assert "sample_weight" in inspect.signature(estimator_class(kind).fit).parameters


@pytest.mark.parametrize("kind,task", [
    ("logistic_regression", "classification"), ("hist_gradient_boosting", "classification"),
    ("random_forest", "classification"), ("ridge", "regression"),
    ("hist_gradient_boosting_regressor", "regression"),
])
def test_weighted_fit_equals_sklearns_own_fit_with_the_same_weights(kind: str, task: str) -> None:
    rng = np.random.default_rng(4)
    n = 240
    pdf = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                        "plan": rng.choice(["basic", "pro"], size=n).astype(object)})
    days = [END - dt.timedelta(days=int(d)) for d in rng.integers(0, 20, size=n)]
    y = (pdf["a"] + rng.normal(size=n) > 0).astype(int).to_numpy() if task == "classification" \
        else (2 * pdf["a"] - pdf["b"]).to_numpy()
    x = model_frame(pdf, ["a", "b"], ["plan"])
    est = EstimatorConfig(type=kind, params={"max_iter": 20} if "hist" in kind else {}, seed=5)
    w = recency_weights(days, END, END - dt.timedelta(days=5), RecencyConfig(post_onset_weight=4, half_life_days=4))
    assert w is not None and w.std() > 0.5
    ours = fit_pipeline(build_pipeline(est, ["a", "b"], ["plan"]), x, y, w)
    # sklearn by hand: the same preprocessing, then the estimator's own fit(X, y, sample_weight=w)
    prep = build_pipeline(est, ["a", "b"], ["plan"]).steps[0][1].fit(x)
    theirs = build_pipeline(est, ["a", "b"], ["plan"]).steps[1][1].fit(prep.transform(x), y, sample_weight=w)
    ours_scores = predict_scores(ours, x, task)
    expect = theirs.predict_proba(prep.transform(x))[:, 1] if task == "classification" \
        else theirs.predict(prep.transform(x))
    assert np.allclose(ours_scores, expect, rtol=1e-10, atol=1e-12)
    unweighted = predict_scores(fit_pipeline(build_pipeline(est, ["a", "b"], ["plan"]), x, y), x, task)
    assert not np.allclose(ours_scores, unweighted)                # the weights do change the fit
    with pytest.raises(ValueError, match="expected 240 weights"):
        fit_pipeline(build_pipeline(est, ["a", "b"], ["plan"]), x, y, w[:-1])
