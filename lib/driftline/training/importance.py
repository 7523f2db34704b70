"""Permutation importance of each input column of a fitted pipeline on the validation window
(``training.importance``): how much the validation score drops when that column's values are shuffled.

scikit-learn's `sklearn.inspection.permutation_importance` on at most ``max_rows`` validation rows (a seeded
sample), ``repeats`` shuffles per column, seeded by ``training.sample_seed``; the score is the negative log loss
(classification) or the negative RMSE (regression), so an importance is the loss added by losing the column.
Stored with the version as MLflow run metrics ``importance.<column>`` and ``importance_std.<column>`` (`read`
gives them back); the ``drift_score`` retrain rule weighs features by them (`driftline.retrain.spec`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from driftline.training.spec import ImportanceConfig

log = logging.getLogger(__name__)

PREFIX, STD_PREFIX = "importance.", "importance_std."
SCORING = {"classification": "neg_log_loss", "regression": "neg_root_mean_squared_error"}


def sample(x: pd.DataFrame, y: np.ndarray, max_rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """At most ``max_rows`` rows of (x, y), a seeded uniform sample without replacement (every row when fewer)."""
    import numpy as np

    if len(x) <= max_rows:
        return x, y
    picked = np.sort(np.random.default_rng(seed).choice(len(x), size=max_rows, replace=False))
    return x.iloc[picked].reset_index(drop=True), y[picked]


def permutation_importances(model: Any, x: pd.DataFrame, y: np.ndarray, task: str, cfg: ImportanceConfig,
                            seed: int) -> dict[str, tuple[float, float]]:
    """Column → (mean, std) of the score drop over ``cfg.repeats`` shuffles; {} when off, or when the validation
    rows cannot be scored (one class only: log loss needs both)."""
    import numpy as np
    from sklearn.inspection import permutation_importance

    if not cfg.enabled or len(x) == 0:
        return {}
    if task == "classification" and len(np.unique(y)) < 2:
        log.warning("permutation importance not computed: the validation rows hold one class only")
        return {}
    xs, ys = sample(x, y, cfg.max_rows, seed)
    got = permutation_importance(model, xs, ys, scoring=SCORING[task], n_repeats=cfg.repeats, random_state=seed)
    return {str(c): (float(m), float(s))
            for c, m, s in zip(xs.columns, got.importances_mean, got.importances_std, strict=True)}


def as_metrics(importances: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """MLflow metrics of the importances (finite values only)."""
    out = {}
    for column, (mean, std) in importances.items():
        if math.isfinite(mean):
            out[f"{PREFIX}{column}"] = mean
        if math.isfinite(std):
            out[f"{STD_PREFIX}{column}"] = std
    return out


def read(metrics: Mapping[str, float]) -> dict[str, float]:
    """The mean importance per column from a run's metrics ({} for a version trained without them)."""
    return {k.removeprefix(PREFIX): float(v) for k, v in metrics.items() if k.startswith(PREFIX)}


def of_run(client: Any, run_id: str | None) -> dict[str, float]:
    """The importances stored on the MLflow run ``run_id`` (a version's training run); {} when none or unreadable."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return {}
    try:
        return read(client.get_run(run_id).data.metrics)
    except MlflowException as exc:
        log.info("importances of MLflow run %s not read: %s", run_id, " ".join(str(exc).split())[:200])
        return {}

