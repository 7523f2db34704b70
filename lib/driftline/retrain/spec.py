"""Configuration slice of the retrain job (``retrain:`` in the config): trigger rules and hysteresis.

Every key is documented in ``docs/retrain.md``. The policy is evaluated on the monitoring history
(``monitor_runs`` / ``monitor_metrics`` of the last windows), never on one run alone; the train
window of a retrain is the ``training:`` section's (the same windows as ``driftline train``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from driftline.spec import Frozen, Identifier

PerformanceMetric = Literal["auc", "log_loss", "brier", "rmse", "mae"]
QualityStatus = Literal["warn", "alert", "insufficient_data"]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class DriftRule(Frozen):
    """Dataset drift (``monitor_runs.dataset_drift``) in at least ``k`` of the last ``n`` monitored windows."""

    enabled: bool = True
    k: int = Field(2, ge=1, le=366)
    n: int = Field(3, ge=1, le=366)

    @model_validator(mode="after")
    def _k_of_n(self) -> DriftRule:
        if self.k > self.n:
            raise ValueError(f"expected k <= n (k of the last n windows), found k={self.k} > n={self.n}")
        return self


class DriftScoreRule(Frozen):
    """Drift-weighted score over the important features, at least ``threshold`` in ``k`` of the last ``n`` windows.

    Score of a window = sum(weight_i * drift_i) / sum(weight_i) over the features the monitor could
    evaluate in it (drift_i = the column's drift verdict vs the reference: 1 drifted, 0 not; columns
    with ``insufficient_data`` left out of both sums). weight_i = ``weights[feature]``, else
    ``default_weight`` (equal weights by default).
    """

    enabled: bool = False
    threshold: float = Field(0.5, gt=0, le=1)
    k: int = Field(1, ge=1, le=366)
    n: int = Field(1, ge=1, le=366)
    weights: dict[Identifier, Weight] = Field(default_factory=dict)
    default_weight: Weight = 1.0

    @model_validator(mode="after")
    def _k_of_n(self) -> DriftScoreRule:
        if self.k > self.n:
            raise ValueError(f"expected k <= n (k of the last n windows), found k={self.k} > n={self.n}")
        if self.default_weight == 0 and not any(w > 0 for w in self.weights.values()):
            raise ValueError("expected a positive weight (weights or default_weight), found all weights 0")
        return self

    def weight(self, feature: str) -> float:
        """The weight of ``feature`` (its explicit weight, else ``default_weight``)."""
        return self.weights.get(feature, self.default_weight)


class PerformanceRule(Frozen):
    """The latest window's late-label ``metric`` outside [``min``, ``max``] with at least ``min_labels`` labels."""

    enabled: bool = False
    metric: PerformanceMetric = "auc"
    min: float | None = None
    max: float | None = None
    min_labels: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _bound(self) -> PerformanceRule:
        if self.enabled and self.min is None and self.max is None:
            raise ValueError("expected a bound (min or max) for an enabled performance rule, found neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected min <= max, found min={self.min} > max={self.max}")
        return self


class QualityRule(Frozen):
    """Data-quality failures: ``monitor_runs.quality_status`` in ``statuses`` in ``k`` of the last ``n`` windows."""

    enabled: bool = False
    statuses: tuple[QualityStatus, ...] = ("warn",)
    k: int = Field(1, ge=1, le=366)
    n: int = Field(1, ge=1, le=366)

    @model_validator(mode="after")
    def _k_of_n(self) -> QualityRule:
        if self.k > self.n:
            raise ValueError(f"expected k <= n (k of the last n windows), found k={self.k} > n={self.n}")
        if not self.statuses:
            raise ValueError("expected at least one status, found none")
        return self


class PeriodCap(Frozen):
    """At most ``count`` retrains in any ``period_days`` days ending at the decision date."""

    count: int = Field(2, ge=1)
    period_days: int = Field(30, ge=1, le=3660)


class RetrainConfig(Frozen):
    """When the retrain job trains a challenger: any enabled rule fires, outside cooldown and under the cap."""

    enabled: bool = True
    drift: DriftRule = Field(default_factory=DriftRule)
    drift_score: DriftScoreRule = Field(default_factory=DriftScoreRule)
    performance: PerformanceRule = Field(default_factory=PerformanceRule)
    quality: QualityRule = Field(default_factory=QualityRule)
    cooldown_days: int = Field(7, ge=0, le=3660)
    max_per_period: PeriodCap = Field(default_factory=PeriodCap)
