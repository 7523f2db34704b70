"""Validation metrics, calibration table and trivial baselines (pure numpy/scikit-learn).

A metric that is undefined on the data (AUC with one class present) is ``NaN``, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from driftline.errors import DriftlineError

CALIBRATION_BINS = 10


def classification_metrics(y_true: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC, log loss, Brier score, and accuracy/precision/recall/F1 of ``p >= threshold``."""
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = np.asarray(y_true, dtype="int64")
    p = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    _check_lengths(y, p)
    y_hat = (p >= threshold).astype("int64")
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else math.nan,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "accuracy": float(accuracy_score(y, y_hat)),
        "precision": float(precision_score(y, y_hat, zero_division=0.0)),
        "recall": float(recall_score(y, y_hat, zero_division=0.0)),
        "f1": float(f1_score(y, y_hat, zero_division=0.0)),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (R² is NaN when the target is constant)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y = np.asarray(y_true, dtype="float64")
    yp = np.asarray(y_pred, dtype="float64")
    _check_lengths(y, yp)
    constant = bool(np.all(y == y[0])) if len(y) else True
    return {
        "rmse": float(math.sqrt(mean_squared_error(y, yp))),
        "mae": float(mean_absolute_error(y, yp)),
        "r2": math.nan if constant else float(r2_score(y, yp)),
    }


def task_metrics(task: str, y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """The metrics of ``task`` for scores (probabilities or predictions)."""
    if task == "classification":
        return classification_metrics(y_true, scores, threshold)
    return regression_metrics(y_true, scores)


def baseline_scores(task: str, y_train: np.ndarray, n: int) -> np.ndarray:
    """The trivial model: the training prior (classification) or the training mean (regression)."""
    value = float(np.mean(np.asarray(y_train, dtype="float64"))) if len(y_train) else 0.0
    return np.full(n, value, dtype="float64")


def calibration_table(y_true: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Reliability table on equal-width probability bins: bin, lower, upper, count, mean_predicted, observed_rate.

    Bins are ``[lower, upper)`` except the last, which includes 1.0; empty bins are kept (count 0,
    NaN rates) so tables of different runs line up row by row.
    """
    y = np.asarray(y_true, dtype="float64")
    p = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    _check_lengths(y, p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        rows.append({
            "bin": b,
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "count": n,
            "mean_predicted": float(p[mask].mean()) if n else math.nan,
            "observed_rate": float(y[mask].mean()) if n else math.nan,
        })
    return pd.DataFrame(rows, columns=["bin", "lower", "upper", "count", "mean_predicted", "observed_rate"])


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    """``{"auc": x}`` → ``{"<prefix>auc": x}`` (MLflow metric names)."""
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def _check_lengths(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise DriftlineError(f"evaluation: expected as many predictions as labels, found {len(b)} vs {len(a)}")
    if len(a) == 0:
        raise DriftlineError("evaluation: expected at least one labelled row, found none")
