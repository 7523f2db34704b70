"""The pure pandas scoring core, without Spark: equal to scikit-learn on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from driftline.scoring.core import score_frame
from driftline.scoring.signature import ModelSignature
from driftline.training.pipeline import build_pipeline, model_frame
from driftline.training.spec import EstimatorConfig

NUM, CAT = ("x1", "x2"), ("plan",)


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, n)
    x1[::10] = np.nan                                             # 10 % nulls (R11)
    plan = rng.choice(["basic", "pro", "team"], n).astype(object)
    plan[::13] = None
    return pd.DataFrame({"id": [f"k{i}" for i in range(n)], "x1": x1, "x2": rng.integers(0, 5, n).astype(float),
                         "plan": plan})


def fitted(kind: str, pdf: pd.DataFrame):
    est = EstimatorConfig(type=kind, seed=1)
    x = model_frame(pdf, NUM, CAT)
    signal = np.nan_to_num(pdf["x1"].to_numpy()) + (pdf["plan"] == "pro").to_numpy()
    y = (signal > 0.3).astype(int) if kind in ("logistic_regression", "hist_gradient_boosting") else signal
    return build_pipeline(est, NUM, CAT).fit(x, y)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return frame()


@pytest.mark.parametrize(("kind", "task"), [("logistic_regression", "classification"),
                                            ("hist_gradient_boosting", "classification"),
                                            ("ridge", "regression"),
                                            ("hist_gradient_boosting_regressor", "regression")])
def test_scores_equal_scikit_learn_on_the_same_rows(data: pd.DataFrame, kind: str, task: str) -> None:
    model = fitted(kind, data)
    out = score_frame(data, model, ModelSignature(NUM, CAT, task), key="id", threshold=0.4)
    x = data[list(NUM + CAT)].astype({"plan": object})
    if task == "classification":
        expected = model.predict_proba(x.where(x.notna(), None).astype({"x1": float, "x2": float}))[:, 1]
        labels = pd.array((expected >= 0.4).astype("int32"), dtype="Int32")
    else:
        expected = model.predict(x.where(x.notna(), None).astype({"x1": float, "x2": float}))
        labels = pd.array([pd.NA] * len(data), dtype="Int32")
    assert_frame_equal(out, pd.DataFrame({"id": data["id"].to_numpy(), "score": expected.astype(float),
                                          "predicted_label": labels}))


def test_column_order_and_extra_columns_do_not_matter(data: pd.DataFrame) -> None:   # R10
    model = fitted("logistic_regression", data)
    sig = ModelSignature(NUM, CAT, "classification")
    shuffled = data[["plan", "x2", "id", "x1"]].assign(extra=1.0, other="z")
    assert_frame_equal(score_frame(shuffled, model, sig, key="id", threshold=0.5),
                       score_frame(data, model, sig, key="id", threshold=0.5))


def test_nulls_follow_the_pipeline_imputation(data: pd.DataFrame) -> None:           # R11
    model = fitted("logistic_regression", data)
    sig = ModelSignature(NUM, CAT, "classification")
    median = float(np.nanmedian(data["x1"]))
    filled = data.assign(x1=data["x1"].fillna(median), plan=data["plan"].where(data["plan"].notna(), "__missing__"))
    out = score_frame(data, model, sig, key="id", threshold=0.5)
    assert out["score"].notna().all()
    np.testing.assert_allclose(out["score"], score_frame(filled, model, sig, key="id", threshold=0.5)["score"],
                               rtol=0, atol=1e-12)


def test_unseen_category_encodes_as_all_zeros(data: pd.DataFrame) -> None:          # R14
    model = fitted("logistic_regression", data)
    sig = ModelSignature(NUM, CAT, "classification")
    row = data.iloc[[1]].assign(plan="enterprise")
    out = score_frame(row, model, sig, key="id", threshold=0.5)
    x = model_frame(row, NUM, CAT)
    z = model.named_steps["prep"].transform(x)
    assert z[0, 2:].tolist() == [0.0] * (z.shape[1] - 2)            # one-hot block all zeros
    assert out["score"].item() == pytest.approx(model.named_steps["model"].predict_proba(z)[0, 1], abs=1e-15)


def test_threshold_is_inclusive_and_empty_batches_work(data: pd.DataFrame) -> None:
    model = fitted("logistic_regression", data)
    sig = ModelSignature(NUM, CAT, "classification")
    out = score_frame(data, model, sig, key="id", threshold=0.5)
    thr = float(out["score"].iloc[0])
    again = score_frame(data, model, sig, key="id", threshold=thr)
    assert again["predicted_label"].iloc[0] == 1                    # score >= threshold is positive
    empty = score_frame(data.iloc[:0], model, sig, key="id", threshold=0.5)
    assert list(empty.columns) == ["id", "score", "predicted_label"] and len(empty) == 0
    assert str(empty["predicted_label"].dtype) == "Int32"
