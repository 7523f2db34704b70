"""Permutation importance computed in a few batched predict calls equals scikit-learn's
`permutation_importance` (the oracle) on awkward columns: heavy tails, a 0/1 flag, a few-valued integer, a
high-cardinality string and nulls; classification (float labels, as the monitor passes them) and regression;
shuffled copies split over several predict calls or scored in one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance

from driftline.training import importance
from driftline.training.importance import SCORING, permutation_importances
from driftline.training.pipeline import build_pipeline, fit_pipeline, model_frame
from driftline.training.spec import EstimatorConfig, ImportanceConfig

NUMERIC, CATEGORICAL = ["heavy", "flag", "few", "t3"], ["hc"]


def awkward(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pdf = pd.DataFrame({
        "heavy": rng.pareto(1.2, n), "flag": (rng.random(n) < 0.1).astype(float),
        "few": rng.poisson(2, n).astype(float), "t3": rng.standard_t(3, n),
        "hc": np.array([f"c{i}" for i in rng.zipf(1.4, n) % 3000], dtype=object),
    })
    pdf.loc[rng.random(n) < 0.05, "heavy"] = np.nan
    pdf.loc[rng.random(n) < 0.05, "hc"] = None
    x = model_frame(pdf, NUMERIC, CATEGORICAL)
    signal = np.log1p(np.nan_to_num(x["heavy"].to_numpy())) + 1.5 * x["flag"].to_numpy() - 0.3 * x["few"].to_numpy()
    y_reg = signal + rng.normal(0, 0.5, n)
    y_cls = (y_reg > np.median(y_reg)).astype("float64")
    return x, y_cls, y_reg


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "logistic_regression"])
@pytest.mark.parametrize("batch_cells", [2_500_000, 5_000])   # one predict call, or a block per call
def test_classification_importances_equal_scikit_learn(kind, batch_cells, monkeypatch) -> None:
    monkeypatch.setattr(importance, "BATCH_CELLS", batch_cells)
    x, y, _ = awkward(900, 1)
    model = fit_pipeline(build_pipeline(EstimatorConfig(type=kind), NUMERIC, CATEGORICAL), x, y)
    cfg = ImportanceConfig(repeats=4, max_rows=700)
    got = permutation_importances(model, x, y, "classification", cfg, seed=11)
    xs, ys = importance.sample(x, y, 700, 11)
    oracle = permutation_importance(model, xs, ys, scoring=SCORING["classification"], n_repeats=4, random_state=11)
    assert list(got) == [*NUMERIC, *CATEGORICAL]
    np.testing.assert_allclose([m for m, _ in got.values()], oracle.importances_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([s for _, s in got.values()], oracle.importances_std, rtol=1e-12, atol=1e-15)
    assert got["flag"][0] > 0 and got["heavy"][0] > 0


def test_regression_importances_equal_scikit_learn(monkeypatch) -> None:
    monkeypatch.setattr(importance, "BATCH_CELLS", 12_500)   # 5 of the 21 blocks per call, the last call short
    x, _, y = awkward(500, 2)
    model = fit_pipeline(build_pipeline(EstimatorConfig(type="hist_gradient_boosting_regressor"), NUMERIC,
                                        CATEGORICAL), x, y)
    got = permutation_importances(model, x, y, "regression", ImportanceConfig(repeats=4), seed=3)
    oracle = permutation_importance(model, x, y, scoring=SCORING["regression"], n_repeats=4, random_state=3)
    np.testing.assert_allclose([m for m, _ in got.values()], oracle.importances_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([s for _, s in got.values()], oracle.importances_std, rtol=1e-12, atol=1e-15)


def test_one_class_or_off_gives_nothing() -> None:
    x, y, _ = awkward(200, 3)
    model = fit_pipeline(build_pipeline(EstimatorConfig(type="logistic_regression"), NUMERIC, CATEGORICAL), x, y)
    assert permutation_importances(model, x, np.zeros(200), "classification", ImportanceConfig(), seed=1) == {}
    assert permutation_importances(model, x, y, "classification", ImportanceConfig(enabled=False), seed=1) == {}


def test_a_model_with_string_classes_scores_as_scikit_learn() -> None:
    """An adopted model may have been fitted on "0"/"1" labels; the monitor passes 0.0/1.0."""
    x, y, _ = awkward(600, 4)
    model = fit_pipeline(build_pipeline(EstimatorConfig(type="logistic_regression"), NUMERIC, CATEGORICAL), x,
                         y.astype(int).astype(str))
    assert list(model.classes_) == ["0", "1"]
    got = permutation_importances(model, x, y, "classification", ImportanceConfig(repeats=3), seed=5)
    oracle = permutation_importance(model, x, y, scoring=SCORING["classification"], n_repeats=3, random_state=5)
    np.testing.assert_allclose([m for m, _ in got.values()], oracle.importances_mean, rtol=1e-12, atol=1e-15)


def test_batches_are_sized_by_the_encoded_width_of_a_high_cardinality_category(monkeypatch) -> None:
    """The batch is sized by the one-hot width the model builds (dense), not by the input's five columns."""
    x, y, _ = awkward(2_000, 6)
    model = fit_pipeline(build_pipeline(EstimatorConfig(type="logistic_regression"), NUMERIC, CATEGORICAL), x, y)
    width = importance.model_width(model, x)
    assert width == 4 + x["hc"].nunique() + 1            # numeric + one column per category + the missing one
    oracle = permutation_importance(model, x, y, scoring=SCORING["classification"], n_repeats=2, random_state=5)
    calls: list[int] = []
    predict = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda frame: calls.append(len(frame)) or predict(frame))
    monkeypatch.setattr(importance, "BATCH_CELLS", 2_000 * width * 3)     # three shuffled copies per call
    got = permutation_importances(model, x, y, "classification", ImportanceConfig(repeats=2), seed=5)
    assert calls == [6_000, 6_000, 6_000, 4_000]                          # 11 blocks: baseline + 5 columns × 2
    np.testing.assert_allclose([m for m, _ in got.values()], oracle.importances_mean, rtol=1e-12, atol=1e-15)


def test_a_sample_of_one_class_gives_nothing() -> None:
    x, _, _ = awkward(300, 7)
    y = np.zeros(300)
    y[[17]] = 1.0                                            # one positive, outside the 10-row sample below
    xs, ys = importance.sample(x, y, 10, 2)
    assert len(np.unique(ys)) == 1
    model = fit_pipeline(build_pipeline(EstimatorConfig(type="logistic_regression"), NUMERIC, CATEGORICAL), x, y)
    assert permutation_importances(model, x, y, "classification", ImportanceConfig(max_rows=10), seed=2) == {}
