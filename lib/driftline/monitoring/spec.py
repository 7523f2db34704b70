"""What drift is measured and when it counts: small frozen specs, separate from the code that computes.

`DriftSpec.from_config` turns the ``monitoring.drift`` config slice into a spec; `DriftSpec.method_for`
picks a column's decision method from the sample sizes (Evidently's rule, see ``docs/monitoring.md``),
and `DriftSpec.threshold_for` its threshold (column override > calibrated > static).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import Field, field_validator, model_validator

from driftline.errors import ConfigError
from driftline.monitoring.custom import CustomMetricConfig, check_static
from driftline.spec import Frozen, Identifier

# --------------------------------------------------------------------------- the config slice (``monitoring:``)

DriftMethod = Literal["auto", "wasserstein", "psi", "js", "ks", "chi2"]


class ColumnDriftConfig(Frozen):
    """Per-column drift method and threshold (``monitoring.drift.columns.<column>``)."""

    method: DriftMethod = "auto"
    threshold: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _threshold_needs_method(self) -> ColumnDriftConfig:
        if self.threshold is not None and self.method == "auto":
            raise ValueError("threshold: expected an explicit method (wasserstein, psi, js, ks, chi2), found auto")
        if self.threshold is not None and self.method in ("ks", "chi2") and not 0 < self.threshold < 1:
            raise ValueError(f"threshold: expected a p-value level in (0, 1) for {self.method}, found {self.threshold}")
        return self


class DriftConfig(Frozen):
    psi_threshold: float = Field(0.2, ge=0)
    js_threshold: float = Field(0.1, ge=0, le=1)
    wasserstein_threshold: float = Field(0.1, ge=0)
    ks_pvalue: float = Field(0.05, gt=0, lt=1)
    chi2_pvalue: float = Field(0.05, gt=0, lt=1)
    bins: int = Field(10, ge=2, le=1000)
    top_k: int = Field(20, ge=1, le=10_000)
    min_rows: int = Field(100, ge=1)
    fdr: float = Field(0.05, gt=0, lt=1)
    dataset_drift_share: float = Field(0.5, gt=0, le=1)
    numeric_method: DriftMethod = "auto"
    categorical_method: Literal["auto", "psi", "js", "chi2"] = "auto"
    small_sample_rows: int = Field(1000, ge=1)
    discrete_values: int | None = Field(None, ge=0, le=1000)
    tail_buckets: int = Field(32, ge=0, le=4096)
    membership_fpr: float = Field(0.01, gt=0, lt=0.5)
    unseen_threshold: float = Field(0.1, gt=0, le=1)
    columns: dict[Identifier, ColumnDriftConfig] = Field(default_factory=dict)
    threshold_mode: Literal["static", "calibrated"] = "static"
    calibration_k: float = Field(3.0, gt=0)
    calibration_chunks: int = Field(10, ge=2, le=1000)


class PerformanceConfig(Frozen):
    """Late-label (realized) performance floors, and performance estimated before labels arrive (binary
    classification: a calibration table of ``estimated_cells`` score cells fitted on the validation window
    at train time; ``docs/monitoring.md``)."""

    min_label_coverage: float = Field(0.5, ge=0, le=1)
    min_labels: int = Field(100, ge=1)
    estimated: bool = True
    estimated_cells: int = Field(100, ge=10, le=1000)
    estimated_min_rows: int = Field(200, ge=1)


class MonitoringReportConfig(Frozen):
    evidently_rows: int = Field(5000, ge=0, le=100_000)


class MultivariateConfig(Frozen):
    """Multivariate drift: a domain classifier on the reference and window samples, its threshold calibrated
    on halvings of the reference sample (``monitoring.multivariate``; `driftline.monitoring.multivariate`)."""

    enabled: bool = True
    max_rows: int = Field(5000, ge=50, le=100_000)
    min_rows: int = Field(200, ge=20)
    folds: int = Field(5, ge=2, le=20)
    max_iter: int = Field(50, ge=5, le=1000)
    calibration_runs: int = Field(5, ge=2, le=100)
    calibration_k: float = Field(3.0, gt=0)
    min_auc: float = Field(0.55, ge=0.5, lt=1)
    dataset_drift: bool = False
    seed: int = 20260707


class FairnessConfig(Frozen):
    """Fairness across the groups of protected columns (``monitoring.fairness``; `driftline.monitoring.fairness`)."""

    protected: list[Identifier] = Field(default_factory=list)
    min_rows: int = Field(50, ge=1)
    max_parity_difference: float = Field(0.1, ge=0, le=1)
    min_parity_ratio: float = Field(0.8, ge=0, le=1)
    max_opportunity_difference: float = Field(0.1, ge=0, le=1)
    max_fpr_difference: float = Field(0.1, ge=0, le=1)
    gate: bool = False


class SegmentDriftConfig(Frozen):
    """Drift and data quality per value of each ``monitoring.segments`` column (``monitoring.segment_drift``;
    `driftline.monitoring.segments`). The train job stores the segments' reference profiles whenever segments are
    configured; this switches the monitor's per-segment pass on (it scans the window's rows: the score job's
    stored per-date profiles are not per segment)."""

    enabled: bool = False
    top_n: int = Field(10, ge=1, le=50)


class ImportanceDriftConfig(Frozen):
    """Permutation importance recomputed on the newest fully matured window against the training importance
    (``monitoring.importance_drift``; `driftline.monitoring.importance_drift`)."""

    enabled: bool = True
    min_rank_correlation: float = Field(0.5, ge=-1, le=1)


class MonitoringConfig(Frozen):
    window_days: int = Field(1, ge=1, le=366)
    segments: list[Identifier] = Field(default_factory=list)
    segment_drift: SegmentDriftConfig = Field(default_factory=SegmentDriftConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    report: MonitoringReportConfig = Field(default_factory=MonitoringReportConfig)
    multivariate: MultivariateConfig = Field(default_factory=MultivariateConfig)
    custom_metrics: dict[Identifier, CustomMetricConfig] = Field(default_factory=dict)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    importance_drift: ImportanceDriftConfig = Field(default_factory=ImportanceDriftConfig)

    @field_validator("segments")
    @classmethod
    def _segments_are_distinct(cls, value: list[str]) -> list[str]:
        twice = sorted({c for c in value if value.count(c) > 1})
        if twice:
            raise ValueError(f"expected distinct segment columns, found {', '.join(twice)} more than once")
        return value

    @model_validator(mode="after")
    def _custom_metrics_refer_to_each_other(self) -> MonitoringConfig:
        try:
            check_static(self.custom_metrics, key="custom_metrics")
        except ConfigError as exc:   # a ValueError: the loader names the file and the key path
            raise ValueError(str(exc)) from None
        return self


# --------------------------------------------------------------------------- the drift spec derived from it

Kind = Literal["numeric", "categorical"]

# method → the metric whose value decides drift, and whether that metric is a p-value (lower = drift)
METHOD_METRIC: Mapping[str, str] = {
    "wasserstein": "wasserstein_norm",
    "psi": "psi",
    "js": "js_distance",
    "ks": "ks_pvalue",
    "chi2": "chi2_pvalue",
}
PVALUE_METHODS = frozenset({"ks", "chi2"})
DISTANCE_METHODS = frozenset({"wasserstein", "psi", "js"})
NUMERIC_METHODS = frozenset(METHOD_METRIC)
CATEGORICAL_METHODS = frozenset({"psi", "js", "chi2"})
FEW_VALUES = 5  # ≤ this many distinct reference edges: a numeric column is treated as discrete (Evidently: ≤ 5 values)


class DriftSpecError(ConfigError):
    """A drift spec cannot be applied as asked (method not valid for the column kind, missing threshold)."""


@dataclass(frozen=True)
class ColumnDriftSpec:
    """Per-column override: method (``auto`` = chosen from sample sizes) and threshold (None = global)."""

    method: str = "auto"
    threshold: float | None = None


@dataclass(frozen=True)
class DriftSpec:
    """Thresholds, methods, sample-size floor and dataset rule of a drift comparison."""

    psi_threshold: float = 0.2
    js_threshold: float = 0.1
    wasserstein_threshold: float = 0.1
    ks_pvalue: float = 0.05
    chi2_pvalue: float = 0.05
    min_rows: int = 100
    fdr: float = 0.05
    dataset_drift_share: float = 0.5
    numeric_method: str = "auto"
    categorical_method: str = "auto"
    small_sample_rows: int = 1000
    # a column drifts when its share of never-seen values exceeds the reference's expected share by this
    unseen_threshold: float = 0.1
    columns: Mapping[str, ColumnDriftSpec] = field(default_factory=dict)
    # (column, metric) → calibrated threshold; used for distance metrics when no column override is set
    calibrated: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DriftConfig) -> DriftSpec:
        """The spec of a ``monitoring.drift`` config slice (calibrated thresholds are added later)."""
        return cls(
            psi_threshold=cfg.psi_threshold, js_threshold=cfg.js_threshold,
            wasserstein_threshold=cfg.wasserstein_threshold, ks_pvalue=cfg.ks_pvalue, chi2_pvalue=cfg.chi2_pvalue,
            min_rows=cfg.min_rows, fdr=cfg.fdr, dataset_drift_share=cfg.dataset_drift_share,
            numeric_method=cfg.numeric_method, categorical_method=cfg.categorical_method,
            small_sample_rows=cfg.small_sample_rows, unseen_threshold=cfg.unseen_threshold,
            columns={c: ColumnDriftSpec(v.method, v.threshold) for c, v in cfg.columns.items()},
        )

    def with_calibrated(self, thresholds: Mapping[tuple[str, str], float]) -> DriftSpec:
        """A copy whose distance thresholds are the calibrated ones where given."""
        return replace(self, calibrated=dict(thresholds))

    def static_threshold(self, metric: str) -> float | None:
        """The global threshold of ``metric`` (None for descriptive metrics)."""
        return {
            "psi": self.psi_threshold,
            "js_distance": self.js_threshold,
            "wasserstein_norm": self.wasserstein_threshold,
            "ks_pvalue": self.ks_pvalue,
            "chi2_pvalue": self.chi2_pvalue,
        }.get(metric)

    def threshold_for(self, column: str, metric: str, method: str) -> float | None:
        """Threshold of ``metric`` for ``column``: column override (decision metric) > calibrated > static."""
        override = self.columns.get(column)
        if override is not None and override.threshold is not None and METHOD_METRIC.get(method) == metric:
            return override.threshold
        if (column, metric) in self.calibrated:
            return self.calibrated[(column, metric)]
        return self.static_threshold(metric)

    def method_for(self, column: str, kind: Kind, n_reference: int, n_current: int, distinct_edges: int,
                   discrete: bool | None = None) -> str:
        """Decision method of ``column``: the configured one, or ``auto`` resolved from the sample sizes.

        ``auto`` (Evidently's rule, on the smaller side instead of the reference only): at most
        ``small_sample_rows`` values → KS for numeric (chi-square when discrete), chi-square for
        categorical; above → normalized Wasserstein for numeric (JS when discrete), JS distance for
        categorical. ``discrete``: the column has value cells (few distinct reference values); when not
        given, ≤ 5 distinct reference edges (references fitted before value cells existed).
        """
        override = self.columns.get(column)
        method = override.method if override is not None and override.method != "auto" else (
            self.numeric_method if kind == "numeric" else self.categorical_method
        )
        allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
        if method == "auto":
            small = min(n_reference, n_current) <= self.small_sample_rows
            if kind == "categorical":
                return "chi2" if small else "js"
            few = distinct_edges <= FEW_VALUES if discrete is None else discrete
            if small:
                return "chi2" if few else "ks"
            return "js" if few else "wasserstein"
        if method not in allowed:
            raise DriftSpecError(
                f"{column}: expected a {kind} drift method ({', '.join(sorted(allowed))}), found {method}"
            )
        return method
