"""Permutation importance of each input column of a fitted pipeline on the validation window
(``training.importance``): how much the validation score drops when that column's values are shuffled.

The numbers of scikit-learn's `sklearn.inspection.permutation_importance` (the same shuffles for the same seed,
the same scores: a test pins them equal) on at most ``max_rows`` validation rows (a seeded sample), ``repeats``
shuffles per column, seeded by ``training.sample_seed``; the score is the negative log loss (classification) or
the negative RMSE (regression), so an importance is the loss added by losing the column. Computed here rather
than by that function: every shuffled copy of the rows is scored in a few large ``predict`` calls (at most
``BATCH_CELLS`` values each, counted on the width the pipeline encodes) instead of one call per column and
shuffle, whose fixed cost dominated at a few thousand rows (about half the time on a 10-column pipeline).
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
BATCH_CELLS = 2_500_000   # values (rows × columns) per predict call: shuffled copies are scored together up to it


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

    if not cfg.enabled or len(x) == 0:
        return {}
    xs, ys = sample(x, y, cfg.max_rows, seed)
    if task == "classification" and len(np.unique(ys)) < 2:
        log.warning("permutation importance not computed: the validation rows hold one class only")
        return {}
    drops = loss_increases(model, xs, ys, task, cfg.repeats, seed)
    return {str(c): (float(m), float(s))
            for c, m, s in zip(xs.columns, drops.mean(axis=1), drops.std(axis=1), strict=True)}


def shuffle_orders(n: int, repeats: int, seed: int) -> list[np.ndarray]:
    """The row order of a column after each of its ``repeats`` shuffles, as scikit-learn's permutation importance
    draws them: one seed drawn from ``RandomState(seed)``, the same shuffles for every column, and each repeat
    shuffling the column as the previous repeat left it."""
    import numpy as np

    column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    rng, shuffling, order = np.random.RandomState(column_seed), np.arange(n), np.arange(n)
    orders = []
    for _ in range(repeats):
        rng.shuffle(shuffling)
        order = order[shuffling]
        orders.append(order)
    return orders


def loss_increases(model: Any, x: pd.DataFrame, y: np.ndarray, task: str, repeats: int,
                   seed: int) -> np.ndarray:
    """(columns × repeats): the loss with that column shuffled minus the loss on the rows as they are."""
    import numpy as np
    import pandas as pd

    n, identity = len(x), np.arange(len(x))
    blocks = [(-1, identity)] + [(j, order) for j in range(x.shape[1]) for order in shuffle_orders(n, repeats, seed)]
    per_call = max(1, BATCH_CELLS // (n * model_width(model, x)))
    losses: list[float] = []
    for start in range(0, len(blocks), per_call):
        batch = blocks[start:start + per_call]
        # each column of the batch: the column taken in its shuffled order in its own blocks, as it is elsewhere
        frame = pd.concat([x.iloc[:, j].take(np.concatenate([order if k == j else identity for k, order in batch]))
                           .reset_index(drop=True) for j in range(x.shape[1])], axis=1)
        scored = model.predict_proba(frame) if task == "classification" else model.predict(frame)
        losses += [_loss(y, scored[i * n:(i + 1) * n], task) for i in range(len(batch))]
    return (np.asarray(losses[1:]) - losses[0]).reshape(x.shape[1], repeats)


def model_width(model: Any, x: pd.DataFrame) -> int:
    """The columns the model's last step sees per row: a scikit-learn Pipeline's transformed width (its one-hot
    encoder makes one column per category, dense), else the input's; a batch is sized by it, so a high-cardinality
    category gives one shuffled copy per call, as scikit-learn's own loop does."""
    from sklearn.pipeline import Pipeline

    width = max(x.shape[1], 1)
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        width = max(width, model[:-1].transform(x.iloc[:1]).shape[1])
    return width


def _loss(y: np.ndarray, scored: np.ndarray, task: str) -> float:
    """The loss scikit-learn's scorer computes: on two classes the log loss of the last class's probability (the
    labels taken from ``y``, as there), else of every class's; the RMSE of a regression."""
    from sklearn.metrics import log_loss, root_mean_squared_error

    if task == "classification":
        return float(log_loss(y, scored[:, -1] if scored.shape[1] == 2 else scored))
    return float(root_mean_squared_error(y, scored))


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

