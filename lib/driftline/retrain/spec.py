"""Configuration slice of the retrain job (``retrain:`` in the config): trigger rules, hysteresis and the
label wait of drift episodes.

Every key is documented in ``docs/retrain.md``. The policy is evaluated on the monitoring history
(``monitor_runs`` / ``monitor_metrics`` of the last windows), never on one run alone; the train
window of a retrain is the ``training:`` section's (the same windows as ``driftline train``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, model_validator

from driftline.spec import Frozen, Identifier

PerformanceMetric = Literal["auc", "log_loss", "brier", "rmse", "mae"]
EstimatedMetric = Literal["auc", "precision", "recall", "f1", "accuracy", "brier"]
QualityStatus = Literal["warn", "alert", "insufficient_data"]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def check_k_of_n(k: int, n: int) -> None:
    """A k-of-n rule needs k <= n."""
    if k > n:
        raise ValueError(f"expected k <= n (k of the last n windows), found k={k} > n={n}")


def check_bound(enabled: bool, low: float | None, high: float | None, rule: str) -> None:
    """An enabled bound rule needs ``min`` or ``max``, and ``min <= max``."""
    if enabled and low is None and high is None:
        raise ValueError(f"expected a bound (min or max) for an enabled {rule} rule, found neither")
    if low is not None and high is not None and low > high:
        raise ValueError(f"expected min <= max, found min={low} > max={high}")


class DriftRule(Frozen):
    """Dataset drift (``monitor_runs.dataset_drift``) in at least ``k`` of the last ``n`` monitored windows."""

    enabled: bool = True
    k: int = Field(2, ge=1, le=366)
    n: int = Field(3, ge=1, le=366)

    @model_validator(mode="after")
    def _k_of_n(self) -> DriftRule:
        check_k_of_n(self.k, self.n)
        return self


class DriftScoreRule(Frozen):
    """Drift-weighted score over the important features, at least ``threshold`` in ``k`` of the last ``n`` windows.

    Score of a window = sum(weight_i * drift_i) / sum(weight_i) over the features the monitor could
    evaluate in it (drift_i = the column's drift verdict vs the reference: 1 drifted, 0 not; columns
    with ``insufficient_data`` left out of both sums). weight_i = ``weights[feature]``; else 0 when
    ``default_weight`` is 0 (only the listed features count); else (with ``importance_weights``) the feature's
    permutation importance stored with the champion version (clipped at 0; when every stored importance is 0 or
    none was stored: not used); else ``default_weight``.
    """

    enabled: bool = False
    threshold: float = Field(0.5, gt=0, le=1)
    k: int = Field(1, ge=1, le=366)
    n: int = Field(1, ge=1, le=366)
    weights: dict[Identifier, Weight] = Field(default_factory=dict)
    default_weight: Weight = 1.0
    importance_weights: bool = True

    @model_validator(mode="after")
    def _k_of_n(self) -> DriftScoreRule:
        check_k_of_n(self.k, self.n)
        if self.default_weight == 0 and not any(w > 0 for w in self.weights.values()):
            raise ValueError("expected a positive weight (weights or default_weight), found all weights 0")
        return self

    def weight(self, feature: str, importance: Mapping[str, float] | None = None) -> float:
        """The weight of ``feature``: its explicit weight; else 0 with ``default_weight: 0`` (only the listed
        features count); else its importance (``importance``: the champion's permutation importances, used with
        ``importance_weights`` when one is positive); else ``default_weight``."""
        if feature in self.weights:
            return self.weights[feature]
        if self.default_weight == 0:
            return 0.0
        if self.importance_weights and importance and any(v > 0 for v in importance.values()):
            return max(importance.get(feature, 0.0), 0.0)
        return self.default_weight


class PerformanceRule(Frozen):
    """The latest window's late-label ``metric`` outside [``min``, ``max``] with at least ``min_labels`` labels."""

    enabled: bool = False
    metric: PerformanceMetric = "auc"
    min: float | None = None
    max: float | None = None
    min_labels: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _bound(self) -> PerformanceRule:
        check_bound(self.enabled, self.min, self.max, "performance")
        return self


class EstimatedPerformanceRule(Frozen):
    """The monitor's label-free estimate ``estimated_<metric>`` outside [``min``, ``max``] in ``k`` of the last
    ``n`` windows (``monitor_metrics`` rows of column ``__performance__``, the run's own window)."""

    enabled: bool = False
    metric: EstimatedMetric = "auc"
    min: float | None = None
    max: float | None = None
    k: int = Field(1, ge=1, le=366)
    n: int = Field(1, ge=1, le=366)

    @model_validator(mode="after")
    def _bound(self) -> EstimatedPerformanceRule:
        check_bound(self.enabled, self.min, self.max, "estimated_performance")
        check_k_of_n(self.k, self.n)
        return self

    @property
    def metric_name(self) -> str:
        """The ``monitor_metrics.metric`` of the estimate (``estimated_auc``)."""
        return f"estimated_{self.metric}"


class QualityRule(Frozen):
    """Data-quality failures: ``monitor_runs.quality_status`` in ``statuses`` in ``k`` of the last ``n`` windows."""

    enabled: bool = False
    statuses: tuple[QualityStatus, ...] = ("warn",)
    k: int = Field(1, ge=1, le=366)
    n: int = Field(1, ge=1, le=366)

    @model_validator(mode="after")
    def _k_of_n(self) -> QualityRule:
        check_k_of_n(self.k, self.n)
        if not self.statuses:
            raise ValueError("expected at least one status, found none")
        return self


class PeriodCap(Frozen):
    """At most ``count`` retrains in any ``period_days`` days ending at the decision date."""

    count: int = Field(2, ge=1)
    period_days: int = Field(30, ge=1, le=3660)


class WaitForLabels(Frozen):
    """Drift episodes: a label-free trigger arms the retrain, which fires once labels of the new regime matured.

    Fires when at least ``min_new_labels`` labels with an as-of date on/after the episode's onset have
    matured (timestamp before D 00:00 UTC) on at least ``min_new_days`` such as-of dates; at the latest
    ``max_wait_days`` after the onset, without them. Off (or without ``sources.labels``): every trigger
    fires at once, as before episodes existed.
    """

    enabled: bool = False
    min_new_labels: int = Field(500, ge=1)
    min_new_days: int = Field(3, ge=1, le=366)
    max_wait_days: int = Field(28, ge=1, le=366)

    @model_validator(mode="after")
    def _wait(self) -> WaitForLabels:
        if self.max_wait_days < self.min_new_days:
            raise ValueError(f"expected max_wait_days >= min_new_days, found max_wait_days={self.max_wait_days} "
                             f"< min_new_days={self.min_new_days}")
        return self


class RollbackRule(Frozen):
    """Automatic rollback of a newly promoted champion (`driftline.jobs.rollback`): the score job also scores the
    version holding the ``previous`` alias (role ``previous``); the retrain job compares the champion with it on
    the same rows whose labels matured (score dates of the last ``window_days``) and moves the champion alias back
    when the champion is worse on ``metric`` by more than ``margin`` with at least ``min_labels`` labelled rows —
    at most once per version, never on too few labels (``insufficient_data``). ``estimated_min``: also roll back
    when the champion's latest estimated ``estimated_<metric>`` (classification) is below it."""

    enabled: bool = False
    metric: PerformanceMetric = "log_loss"
    margin: float = Field(0.0, ge=0, allow_inf_nan=False)
    min_labels: int = Field(200, ge=1)
    window_days: int = Field(28, ge=1, le=366)
    estimated_min: float | None = Field(None, ge=0, le=1)


class CanaryRule(Frozen):
    """Canary rollout of a version that passed the promotion gate (`driftline.jobs.canary`): instead of becoming
    the champion at once it holds the ``canary`` alias, and the score job scores every row with both versions
    (role ``canary`` beside ``champion``) and publishes the canary's prediction for a deterministic hashed fraction
    of the entities (stable across days; a wider step keeps every entity of the narrower one). At each retrain date
    the canary is compared with the champion on the same rows of the days scored at the current step: ``metric``
    on rows whose label matured (at least ``min_labels``) and the PSI of its scores against the champion's. Worse
    by more than ``margin``, or a PSI above ``max_prediction_psi``: rolled back (the alias is removed). Holding for
    ``min_days`` scored days: widened to the next of ``steps``; after the last step: promoted (champion).
    Too few labels: ``insufficient_data`` (never widens). A first model (no champion) is promoted directly."""

    enabled: bool = False
    steps: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = Field((0.05, 0.25, 0.5), min_length=1, max_length=20)
    min_days: int = Field(3, ge=1, le=366)
    metric: PerformanceMetric = "log_loss"
    margin: float = Field(0.0, ge=0, allow_inf_nan=False)
    min_labels: int = Field(200, ge=1)
    max_prediction_psi: float | None = Field(0.25, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _increasing(self) -> CanaryRule:
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError(f"expected steps strictly increasing fractions in (0, 1), found {list(self.steps)}")
        return self


class RetrainConfig(Frozen):
    """When the retrain job trains a challenger: any enabled rule fires, outside cooldown and under the cap;
    with ``wait_for_labels`` a label-free trigger arms a drift episode that fires once post-onset labels matured."""

    enabled: bool = True
    drift: DriftRule = Field(default_factory=DriftRule)
    drift_score: DriftScoreRule = Field(default_factory=DriftScoreRule)
    performance: PerformanceRule = Field(default_factory=PerformanceRule)
    estimated_performance: EstimatedPerformanceRule = Field(default_factory=EstimatedPerformanceRule)
    quality: QualityRule = Field(default_factory=QualityRule)
    cooldown_days: int = Field(7, ge=0, le=3660)
    max_per_period: PeriodCap = Field(default_factory=PeriodCap)
    wait_for_labels: WaitForLabels = Field(default_factory=WaitForLabels)
    rollback: RollbackRule = Field(default_factory=RollbackRule)
    canary: CanaryRule = Field(default_factory=CanaryRule)
