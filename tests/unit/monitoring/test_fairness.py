"""Fairness rows (`driftline.monitoring.fairness`): rates and gaps against scikit-learn per group, the Spark
counts equal to the numpy ones, groups below the floor left out of the comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from driftline.monitoring.fairness import Counts, counts_of, fairness_rows, group_counts
from driftline.monitoring.spec import FairnessConfig
from driftline.vocabulary import ALERT, INSUFFICIENT, OK


def awkward(n: int = 3000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c", None, "tiny"], p=[0.4, 0.3, 0.27, 0.02, 0.01], size=n).astype(object)
    score = np.clip(rng.beta(2, 3, size=n) + np.where(group == "a", 0.15, 0.0), 0, 1)
    score[rng.random(n) < 0.03] = np.nan                    # unscored rows count nowhere
    label = (rng.random(n) < score * 0.9).astype(float)
    label[rng.random(n) < 0.3] = np.nan                     # labels not matured yet
    return pd.DataFrame({"g": group, "score": score, "label": label})


def test_rates_and_gaps_equal_scikit_learn_per_group() -> None:
    pdf = awkward()
    cfg = FairnessConfig(protected=["g"], min_rows=40)
    per_group, across = fairness_rows("g", counts_of(pdf["score"], pdf["label"], pdf["g"].tolist(), 0.5), cfg)
    kept: dict[str, dict[object, float]] = {"selection_rate": {}, "true_positive_rate": {},
                                            "false_positive_rate": {}}
    for value, part in pdf[pdf["score"].notna()].groupby(pdf["g"].fillna("__none__")):
        key = None if value == "__none__" else value
        got = {r["metric"]: r for r in per_group[key]}
        lab = part.dropna(subset=["label"])
        tn, fp, fn, tp = confusion_matrix(lab["label"].astype(int), (lab["score"] >= 0.5).astype(int),
                                          labels=[0, 1]).ravel()
        for metric, value_, n in (("selection_rate", float((part["score"] >= 0.5).mean()), len(part)),
                                  ("true_positive_rate", tp / (tp + fn) if tp + fn else None, tp + fn),
                                  ("false_positive_rate", fp / (fp + tn) if fp + tn else None, fp + tn)):
            assert got[metric]["n_current"] == n
            if n >= 40:
                assert got[metric]["value"] == pytest.approx(value_, abs=1e-12) and got[metric]["status"] == OK
                kept[metric][key] = value_
            else:
                assert got[metric]["status"] == INSUFFICIENT and got[metric]["value"] is None
    assert None in kept["selection_rate"] and "tiny" not in kept["selection_rate"]   # nulls are a group; tiny is below the floor
    by = {r["metric"]: r for r in across}
    sel, tpr, fpr = kept["selection_rate"], kept["true_positive_rate"], kept["false_positive_rate"]
    assert by["demographic_parity_difference"]["value"] == pytest.approx(max(sel.values()) - min(sel.values()))
    assert by["demographic_parity_ratio"]["value"] == pytest.approx(min(sel.values()) / max(sel.values()))
    assert by["equal_opportunity_difference"]["value"] == pytest.approx(max(tpr.values()) - min(tpr.values()))
    assert by["false_positive_rate_difference"]["value"] == pytest.approx(max(fpr.values()) - min(fpr.values()))
    assert by["demographic_parity_difference"]["status"] == ALERT    # group a is shifted up by 0.15
    assert "lowest g=" in by["demographic_parity_difference"]["reason"]
    assert by["demographic_parity_ratio"]["threshold"] == 0.8


def test_one_group_with_enough_rows_is_insufficient_and_a_zero_rate_has_no_ratio() -> None:
    cfg = FairnessConfig(min_rows=10)
    _, across = fairness_rows("g", {"a": Counts(100, 0, 20, 0, 80, 0), "b": Counts(5, 0, 1, 0, 4, 0)}, cfg)
    by = {r["metric"]: r for r in across}
    assert by["demographic_parity_difference"]["status"] == INSUFFICIENT
    assert "1 group(s) of g with at least 10 rows" in by["demographic_parity_difference"]["reason"]
    _, across = fairness_rows("g", {"a": Counts(100, 0, 20, 0, 80, 0), "b": Counts(50, 0, 10, 0, 40, 0)}, cfg)
    by = {r["metric"]: r for r in across}
    assert by["demographic_parity_difference"]["value"] == 0.0 and by["demographic_parity_difference"]["status"] == OK
    assert by["demographic_parity_ratio"]["value"] is None
    assert by["demographic_parity_ratio"]["status"] == INSUFFICIENT


def test_spark_counts_equal_the_numpy_counts(spark) -> None:
    pdf = awkward(800, 9)
    frame = spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None),
                                  "g string, score double, label double")
    assert group_counts(frame, "g", 0.5) == counts_of(pdf["score"], pdf["label"], pdf["g"].tolist(), 0.5)
