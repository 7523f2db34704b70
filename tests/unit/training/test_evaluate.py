"""Metrics against hand-computed oracles (pairwise AUC, textbook formulas), calibration, baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftline.training.evaluate import (
    baseline_scores,
    calibration_table,
    classification_metrics,
    regression_metrics,
)

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.5, 0.7, 0.05])


def pairwise_auc(y: np.ndarray, p: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def test_classification_metrics_match_formulas() -> None:
    m = classification_metrics(Y, P, threshold=0.5)
    assert m["auc"] == pytest.approx(pairwise_auc(Y, P))
    assert m["log_loss"] == pytest.approx(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))
    assert m["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    yhat = (P >= 0.5).astype(int)   # threshold is inclusive: 0.5 → positive
    tp = int(((yhat == 1) & (Y == 1)).sum())
    fp = int(((yhat == 1) & (Y == 0)).sum())
    fn = int(((yhat == 0) & (Y == 1)).sum())
    assert (tp, fp, fn) == (4, 1, 1)
    assert m["accuracy"] == pytest.approx((yhat == Y).mean())
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # a higher threshold changes the thresholded metrics only
    m2 = classification_metrics(Y, P, threshold=0.75)
    assert m2["auc"] == m["auc"] and m2["recall"] == pytest.approx(2 / 5)


def test_auc_undefined_with_one_class_is_nan_not_a_guess() -> None:
    m = classification_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]), 0.5)
    assert math.isnan(m["auc"])
    assert m["precision"] == 0.0 and m["log_loss"] > 0


def test_regression_metrics_match_formulas() -> None:
    y = np.array([3.0, -0.5, 2.0, 7.0])
    yp = np.array([2.5, 0.0, 2.0, 8.0])
    m = regression_metrics(y, yp)
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean((y - yp) ** 2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(y - yp)))
    assert m["r2"] == pytest.approx(1 - np.sum((y - yp) ** 2) / np.sum((y - y.mean()) ** 2))
    assert math.isnan(regression_metrics(np.ones(3), np.array([1.0, 2.0, 3.0]))["r2"])


def test_calibration_table_counts_and_rates() -> None:
    t = calibration_table(Y, P, bins=4)   # bins [0,.25) [.25,.5) [.5,.75) [.75,1]
    assert t["count"].tolist() == [3, 2, 3, 2]
    assert t["observed_rate"].tolist() == pytest.approx([0.0, 0.5, 2 / 3, 1.0])
    assert t["mean_predicted"].tolist() == pytest.approx([
        np.mean([0.1, 0.2, 0.05]), np.mean([0.4, 0.35]), np.mean([0.6, 0.5, 0.7]), np.mean([0.8, 0.9])
    ])
    edge = calibration_table(np.array([1, 0]), np.array([1.0, 0.0]), bins=10)
    assert edge["count"].tolist() == [1] + [0] * 8 + [1]   # 1.0 lands in the last bin, empty bins kept
    assert math.isnan(edge["observed_rate"][3])


def test_baselines_are_prior_and_mean() -> None:
    assert baseline_scores("classification", np.array([0, 1, 1, 1]), 3).tolist() == [0.75] * 3
    assert baseline_scores("regression", np.array([1.0, 2.0, 6.0]), 2).tolist() == [3.0, 3.0]
