"""Configuration slices of training: ``label:`` (task, horizon, threshold), ``estimator:`` and ``training:``
(windows, sampling, gate).

Every key is documented in ``docs/training.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftline.spec import Frozen


class LabelConfig(Frozen):
    task: Literal["classification", "regression"] = "classification"
    horizon_days: int = Field(14, ge=1, le=3650)
    threshold: float = Field(0.5, gt=0, lt=1)


class EstimatorConfig(Frozen):
    type: Literal[
        "logistic_regression",
        "hist_gradient_boosting",
        "random_forest",
        "ridge",
        "hist_gradient_boosting_regressor",
    ] = "logistic_regression"
    params: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    scale_numeric: bool = True
    seed: int = 42


Task = Literal["classification", "regression"]

CLASSIFICATION_METRICS = ("auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2")
HIGHER_IS_BETTER = frozenset({"auc", "accuracy", "precision", "recall", "f1", "r2"})

MetricName = Literal["auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1", "rmse", "mae", "r2"]


class GateConfig(Frozen):
    """Promotion gate: when does a challenger replace the champion (or, first, beat the baseline)?

    ``metric`` None means the task's default (``auc`` for classification, ``rmse`` for regression);
    ``direction`` None means the metric's natural direction (``higher`` for AUC, ``lower`` for RMSE).
    A challenger passes only when it is strictly better by at least both minimum improvements.
    """

    metric: MetricName | None = None
    direction: Literal["higher", "lower"] | None = None
    min_abs_improvement: float = Field(0.0, ge=0)
    min_rel_improvement: float = Field(0.0, ge=0)

    def metric_for(self, task: Task) -> str:
        """The gate metric for ``task`` (the configured one or the task default)."""
        return self.metric or ("auc" if task == "classification" else "rmse")

    def direction_for(self, task: Task) -> str:
        """``"higher"`` or ``"lower"``: which way is better for the gate metric."""
        if self.direction is not None:
            return self.direction
        return "higher" if self.metric_for(task) in HIGHER_IS_BETTER else "lower"


class RecencyConfig(Frozen):
    """Row weights of the fit (`driftline.training.pipeline.recency_weights`): newer and post-onset rows count more.

    weight = (``post_onset_weight`` if as_of ≥ onset else 1) × 0.5 ^ ((train_end − as_of) / ``half_life_days``),
    normalised to mean 1 and passed as ``sample_weight`` to the estimator. The defaults (1.0, null) weigh
    every row the same; ``post_onset_weight`` applies only to a retrain inside a drift episode (an onset).
    """

    post_onset_weight: float = Field(1.0, ge=1)
    half_life_days: float | None = Field(None, gt=0)

    @property
    def enabled(self) -> bool:
        return self.post_onset_weight != 1.0 or self.half_life_days is not None


ReferenceRows = Literal["train_and_validation", "validation", "post_onset"]


class ImportanceConfig(Frozen):
    """``training.importance``: permutation importance of each input column on the validation window, stored with
    the version (`driftline.training.importance`): the default weights of the ``drift_score`` retrain rule."""

    enabled: bool = True
    max_rows: int = Field(5000, ge=10)
    repeats: int = Field(5, ge=1, le=100)


class TrainingConfig(Frozen):
    """Windows of the time-based split, the driver-side sample cap and the promotion gate.

    For a run on date D the validation window ends ``label.horizon_days + 1`` days before D (the
    last as-of date whose whole label horizon ended before D), spans ``validation_days`` days, and
    the training window ends ``gap_days`` days before the validation window starts. A retrain inside a
    drift episode validates on post-onset dates only (`driftline.training.dataset.training_windows`).
    """

    train_days: int = Field(28, ge=1, le=3650)
    validation_days: int = Field(7, ge=1, le=3650)
    gap_days: int = Field(0, ge=0, le=3650)
    sample_cap: int | None = Field(None, ge=1)
    sample_seed: int = 42
    min_train_rows: int = Field(100, ge=1)
    min_validation_rows: int = Field(30, ge=1)
    gate: GateConfig = Field(default_factory=GateConfig)
    recency: RecencyConfig = Field(default_factory=RecencyConfig)
    importance: ImportanceConfig = Field(default_factory=ImportanceConfig)
    # the rows the reference profile (and its calibrated thresholds, and the Evidently sample) describe:
    # post_onset = rows from the episode's onset on (without an onset: every training + validation row)
    reference_rows: ReferenceRows = "post_onset"
