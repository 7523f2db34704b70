"""One column's drift verdict: its measures (`driftline.monitoring.comparison.compare`) judged against the
spec's thresholds, before false-discovery control across columns (`driftline.monitoring.drift.dataset_drift`).

`column_drift` picks the decision method from the sample sizes (`DriftSpec.method_for`), gives every metric
of the method's family (p-value tests or distances) its threshold and status, applies the sample-size floor
(``insufficient_data``) and the unseen-share rule (never-seen values above the expected share + threshold:
the column drifts whatever the decision method says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from driftline.monitoring.comparison import DISTANCE_METRICS, PVALUE_METRICS, Measures, compare, unseen_threshold
from driftline.monitoring.spec import METHOD_METRIC, PVALUE_METHODS, DriftSpec
from driftline.profiling.types import ColumnProfile
from driftline.vocabulary import ALERT, INSUFFICIENT, OK, WARN, Status, finite_or_none


@dataclass(frozen=True)
class MetricResult:
    """One measured value with its threshold (None = descriptive) and status."""

    metric: str
    value: float | None
    threshold: float | None
    status: Status


@dataclass(frozen=True)
class ColumnDrift:
    """A column's drift verdict: decision ``method``, ``status``, why (``reason``) and every metric."""

    column: str
    kind: str
    method: str
    status: Status
    reason: str | None
    n_reference: int
    n_current: int
    drifted: bool | None
    decision_value: float | None
    threshold: float | None
    pvalue_adjusted: float | None
    metrics: tuple[MetricResult, ...]
    measures: Measures
    unseen_alert: bool = False   # never-seen values exceed the expected share by `DriftSpec.unseen_threshold`


def _metric_names(kind: str, unseen_exact: bool) -> tuple[str, ...]:
    shared = ("psi", "js_distance", "chi2_statistic", "chi2_pvalue", "linf", "total_variation")
    if kind == "numeric":
        return (*shared, "wasserstein_norm", "ks_statistic", "ks_statistic_upper", "ks_pvalue")
    return (*shared, "unseen_share_upper")   # `_unseen_result` adds unseen_share where it is known


def _unseen_result(m: Measures, spec: DriftSpec, reason: str | None) -> tuple[MetricResult | None, bool]:
    """The ``unseen_share`` row (threshold = expected share + ``unseen_threshold``) and whether it alerts;
    None where the unseen share is not known exactly (quantile cells, an upper bound)."""
    if math.isnan(m.unseen_share) or not m.unseen_share_exact:
        return None, False
    threshold = unseen_threshold(m.expected_unseen, spec.unseen_threshold)
    alert = reason is None and m.unseen_share > threshold
    status: Status = INSUFFICIENT if reason is not None else (ALERT if alert else OK)
    return MetricResult("unseen_share", finite_or_none(m.unseen_share), threshold, status), alert


def _crosses(metric: str, value: float, threshold: float) -> bool:
    return value < threshold if metric.endswith("_pvalue") else value > threshold


def column_drift(ref: ColumnProfile, cur: ColumnProfile, spec: DriftSpec) -> ColumnDrift:
    """Measures, decision method, thresholds and status of one column (before FDR across columns).

    Status: ``insufficient_data`` when either side has fewer than ``min_rows`` non-missing values
    or the decision metric cannot be computed (all-null, all-infinite); else ``alert`` when the
    decision metric crosses its threshold (p-value below the level, distance above it), ``ok``
    otherwise. Other metrics of the same family (tests or distances) get their thresholds and
    ``warn`` when they cross; metrics of the other family are descriptive (threshold None).
    """
    m = compare(ref, cur)
    nr, nc = m.n_reference, m.n_current
    method = spec.method_for(ref.column, ref.kind, nr, nc, m.distinct_edges, m.discrete)  # type: ignore[arg-type]
    decision_metric = METHOD_METRIC[method]
    family = PVALUE_METRICS if method in PVALUE_METHODS else DISTANCE_METRICS
    reason = None
    if min(nr, nc) < spec.min_rows:
        side, n = ("reference", nr) if nr < spec.min_rows else ("current", nc)
        reason = f"{side} has {n} non-missing values, expected at least {spec.min_rows} (monitoring.drift.min_rows)"
    elif math.isnan(m.value(decision_metric)):
        reason = f"{decision_metric} is not computable (no finite values on one side)"
    threshold = spec.threshold_for(ref.column, decision_metric, method)
    results = []
    for name in _metric_names(ref.kind, m.unseen_share_exact):
        if name == "unseen_share_upper" and (m.unseen_share_exact or ref.kind != "categorical"):
            continue
        raw = m.value(name if name != "unseen_share_upper" else "unseen_share")
        t = spec.threshold_for(ref.column, name, method) if name in family else None
        if reason is not None:
            status: Status = INSUFFICIENT
        elif raw is None or math.isnan(raw) or t is None or not _crosses(name, raw, t):
            status = OK
        else:
            status = ALERT if name == decision_metric else WARN
        results.append(MetricResult(name, finite_or_none(raw), t, status))   # an infinite distance: null value, crossed
    raw_decision = m.value(decision_metric)
    decision = finite_or_none(raw_decision)
    drifted = None if reason is not None or raw_decision is None or math.isnan(raw_decision) or threshold is None \
        else _crosses(decision_metric, raw_decision, threshold)
    if reason is None and raw_decision is not None and math.isinf(raw_decision):
        reason = f"{decision_metric} is beyond the double range (extreme values in the window); counted as crossing"
    unseen_row, unseen_alert = _unseen_result(m, spec, reason if drifted is None else None)
    if unseen_row is not None:
        results.append(unseen_row)
    if drifted is not None and unseen_alert:
        drifted = True
    status = INSUFFICIENT if drifted is None else (ALERT if drifted else OK)
    return ColumnDrift(
        column=ref.column, kind=ref.kind, method=method, status=status, reason=reason,
        n_reference=nr, n_current=nc, drifted=drifted, decision_value=decision, threshold=threshold,
        pvalue_adjusted=None, metrics=tuple(results), measures=m, unseen_alert=unseen_alert,
    )
