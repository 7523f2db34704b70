"""Drift between a reference and a current profile, computed only from the profiles' aggregates.

Usage::

    spec = DriftSpec.from_config(cfg.monitoring.drift)
    result = dataset_drift(reference_profile, current_profile, spec)   # DatasetDrift (frozen)
    rows = drift_rows(result)        # long format: column, metric, value, threshold, status, ...

Both profiles must come from `driftline.profiling.profile.profile` with the same reference bins.
Nothing here touches data: every number is a function of histogram cells, quantiles and moments.

Cells. A numeric column has ``underflow, bin_0 … bin_{n-1}, overflow`` (±inf sit in the outer
cells); a categorical column has its top-K categories then ``__other__``. Nulls and NaN are not
values of the distribution (they are data quality), so ``n`` = non-missing values on each side.

The measures on cells (PSI, JS, KS with its bracket, chi-square of homogeneity, Wasserstein-1, L∞, total
variation, Benjamini–Hochberg) are in `driftline.monitoring.measures`; here they are applied to two
profiles (`compare`), judged against thresholds (`column_drift`, `dataset_drift` with FDR control and the
unseen-share rule), calibrated on reference chunks, and written as long-format rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from driftline.monitoring.measures import (
    Chi2,
    DriftError,
    KsBinned,
    Wasserstein,
    benjamini_hochberg,
    chi2_2xk,
    js_distance,
    ks_binned,
    linf,
    psi,
    total_variation,
    wasserstein_cells,
    wasserstein_quantiles,
)
from driftline.monitoring.spec import FEW_VALUES, METHOD_METRIC, PVALUE_METHODS, DriftSpec
from driftline.profiling.bins import NumericBins
from driftline.profiling.profile import CategoricalProfile, ColumnProfile, DatasetProfile, NumericProfile
from driftline.vocabulary import ALERT, INSUFFICIENT, OK, WARN, Status, finite_or_none

log = logging.getLogger(__name__)

WASSERSTEIN_MIN_NORM = 1e-3  # floor of the reference std dividing Wasserstein-1 (as Evidently)
# A quantile grid for profiles used in drift: Wasserstein-1 from quantiles is as fine as this grid.
DRIFT_QUANTILES: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(1, 100))
DATASET = "__dataset__"

DISTANCE_METRICS = ("psi", "js_distance", "wasserstein_norm")
PVALUE_METRICS = ("ks_pvalue", "chi2_pvalue")



# --------------------------------------------------------------------------- measures of two profiles


def cells(prof: ColumnProfile) -> tuple[int, ...]:
    """Cell counts of a column profile: (underflow, bins…, overflow), or (categories…, tail buckets…) for
    hashed categorical bins, else (categories…, other)."""
    if isinstance(prof, NumericProfile):
        if not prof.edges:
            return ()
        return (prof.underflow, *prof.bin_counts, prof.overflow)
    if prof.tail_counts:
        return (*prof.category_counts, *prof.tail_counts)
    return (*prof.category_counts, prof.other)


def unseen_count(ref: ColumnProfile, cur: ColumnProfile) -> int | None:
    """Current values the reference never held: numeric value cells → the gap and outer cells; categorical
    with a complete top K (no reference ``__other__``) → ``other``; hashed categorical → values the
    membership filter has certainly never seen (short only by its false positives); None where it is not
    known exactly (quantile cells, an incomplete top K without filter)."""
    if isinstance(cur, NumericProfile):
        if not _is_value_cells(cur.edges):
            return None
        return cur.underflow + cur.overflow + sum(cur.bin_counts[1::2])
    if cur.tail_counts:
        return cur.unseen
    return cur.other if isinstance(ref, CategoricalProfile) and ref.other == 0 else None


def unseen_threshold(expected: float, threshold: float) -> float:
    """The unseen share above which a column drifts: the expected share E plus ``threshold`` of the rest,
    E + t·(1 − E). If a fraction f of the values comes from a new population, the share is about
    E + f·(1 − E): so the rule reads "more than t of the values are new", whatever the cardinality."""
    return min(expected + threshold * (1.0 - expected), 1.0)


def _is_value_cells(edges: Sequence[float]) -> bool:
    return NumericBins("", tuple(edges)).discrete


@dataclass(frozen=True)
class Measures:
    """Every drift measure of one column (NaN where a measure does not apply or cannot be computed)."""

    column: str
    kind: str
    n_reference: int
    n_current: int
    distinct_edges: int
    discrete: bool
    psi: float
    js_distance: float
    linf: float
    total_variation: float
    chi2_statistic: float
    chi2_dof: int
    chi2_pvalue: float
    ks_statistic: float = math.nan
    ks_statistic_upper: float = math.nan
    ks_pvalue: float = math.nan
    wasserstein: float = math.nan
    wasserstein_lower: float = math.nan
    wasserstein_upper: float = math.nan
    wasserstein_norm: float = math.nan
    unseen_share: float = math.nan
    unseen_share_exact: bool = True
    expected_unseen: float = 0.0   # the reference's expected unseen share under no drift (Good–Turing)

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))


def _quantile_function(prof: NumericProfile, probs: Sequence[float]) -> list[float]:
    by_prob = dict(prof.quantiles)
    return [prof.min, *(by_prob[p] for p in probs), prof.max]


def compare(ref: ColumnProfile, cur: ColumnProfile) -> Measures:
    """All drift measures of one column from its reference and current profiles (same bins)."""
    name = ref.column
    if ref.kind != cur.kind:
        raise DriftError(f"{name}: expected a {ref.kind} current profile like the reference, found {cur.kind}")
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        if ref.edges != cur.edges:
            raise DriftError(
                f"{name}: expected the reference bin edges on both sides, found {len(ref.edges)} vs {len(cur.edges)} "
                "edges (profile the current data with the reference bins)"
            )
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile) and (
        ref.categories != cur.categories
    ):
        raise DriftError(
            f"{name}: expected the reference categories on both sides, found {len(ref.categories)} vs "
            f"{len(cur.categories)} categories (profile the current data with the reference bins)"
        )
    r, c = cells(ref), cells(cur)
    nr, nc = int(sum(r)), int(sum(c))
    unseen = unseen_count(ref, cur)
    chi = chi2_2xk(r, c) if r else Chi2(math.nan, 0, math.nan)
    common: dict[str, Any] = dict(
        column=name, kind=ref.kind, n_reference=nr, n_current=nc,
        psi=psi(r, c) if r else math.nan,
        js_distance=js_distance(r, c) if r else math.nan,
        linf=linf(r, c) if r else math.nan,
        total_variation=total_variation(r, c) if r else math.nan,
        chi2_statistic=chi.statistic, chi2_dof=chi.dof, chi2_pvalue=chi.pvalue,
    )
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        ks = ks_binned(r, c) if r else KsBinned(math.nan, math.nan, math.nan)
        w = _wasserstein(ref, cur)
        discrete = _is_value_cells(ref.edges)
        return Measures(
            **common, distinct_edges=len(set(ref.edges)) // (2 if discrete else 1),
            discrete=discrete or len(set(ref.edges)) <= FEW_VALUES,
            # value cells hold one value each and the reference has nothing in the gaps: the boundaries give exact KS
            ks_statistic=ks.statistic, ks_statistic_upper=ks.statistic if discrete else ks.upper,
            ks_pvalue=ks.pvalue,
            wasserstein=w.value, wasserstein_lower=w.lower, wasserstein_upper=w.upper,
            wasserstein_norm=w.value / _wasserstein_norm(ref),
            unseen_share=unseen / nc if unseen is not None and nc else math.nan,
        )
    if not (isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)):
        raise DriftError(f"{name}: expected numeric or categorical profiles, found {type(ref).__name__}")
    if unseen is not None:      # a complete top K, or the membership filter's count
        share, exact = (unseen / cur.count if cur.count else math.nan), True
    else:                       # an upper bound: "other" also holds known categories beyond the top K
        share, exact = (cur.other / cur.count if cur.count else math.nan), False
    return Measures(**common, distinct_edges=len(ref.categories) + 1, discrete=True, unseen_share=share,
                    unseen_share_exact=exact, expected_unseen=ref.expected_unseen)


def _wasserstein(ref: NumericProfile, cur: NumericProfile) -> Wasserstein:
    """From cells and offset sums when both profiles have them, else (a reference stored before offset sums
    existed) from the quantile functions."""
    if ref.count == 0 or cur.count == 0:
        return Wasserstein(math.nan, math.nan, math.nan)
    if ref.offset_sums and cur.offset_sums:
        return wasserstein_cells(ref.edges, _finite_cells(ref), ref.offset_sums, _finite_cells(cur), cur.offset_sums)
    ref_probs = {p for p, v in ref.quantiles if not math.isnan(v)}
    probs = sorted(ref_probs & {p for p, v in cur.quantiles if not math.isnan(v)})
    u = [0.0, *probs, 1.0]
    return wasserstein_quantiles(u, _quantile_function(ref, probs), _quantile_function(cur, probs))


def _finite_cells(prof: NumericProfile) -> tuple[int, ...]:
    return (prof.underflow_finite, *prof.bin_counts, prof.overflow_finite)


def _wasserstein_norm(ref: NumericProfile) -> float:
    """Reference population std (ddof 0, as ``numpy.std``), floored at `WASSERSTEIN_MIN_NORM`."""
    if ref.count < 2 or math.isnan(ref.std):
        return WASSERSTEIN_MIN_NORM
    return max(ref.std * math.sqrt((ref.count - 1) / ref.count), WASSERSTEIN_MIN_NORM)


# --------------------------------------------------------------------------- verdicts


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


@dataclass(frozen=True)
class DatasetDrift:
    """Dataset verdict: share of drifted columns among those with enough data, FDR-controlled."""

    columns: tuple[ColumnDrift, ...]
    evaluated: int
    insufficient: int
    drifted: int
    drift_share: float | None
    threshold: float
    fdr: float
    status: Status


def dataset_drift(
    reference: DatasetProfile, current: DatasetProfile, spec: DriftSpec, columns: Sequence[str] | None = None
) -> DatasetDrift:
    """Per-column drift of ``columns`` (default: all reference columns) and the dataset verdict.

    Columns decided by a p-value test count as drifted only if Benjamini–Hochberg at level
    ``spec.fdr`` rejects them among all tested columns; a column whose raw p-value is below its
    level but is not rejected is ``warn``. Distance-decided columns count when above threshold.
    Dataset status: ``insufficient_data`` if no column has enough data, ``alert`` if the drifted
    share reaches ``dataset_drift_share`` (≥, as Evidently), ``warn`` if some column drifted,
    else ``ok``.
    """
    names = list(reference.columns) if columns is None else list(columns)
    missing = [c for c in names if c not in reference.columns or c not in current.columns]
    if missing:
        raise DriftError(
            f"drift: expected profiles of {', '.join(names)} on both sides, found none for {', '.join(missing)} "
            f"(reference has {', '.join(reference.columns)}; current has {', '.join(current.columns)})"
        )
    results = [column_drift(reference.columns[c], current.columns[c], spec) for c in names]
    tested = [i for i, r in enumerate(results) if r.method in PVALUE_METHODS and r.drifted is not None]
    adjusted = benjamini_hochberg([results[i].decision_value for i in tested])  # type: ignore[misc]
    for i, q in zip(tested, adjusted, strict=True):
        r = results[i]
        rejected = q <= spec.fdr
        crossed = bool(r.decision_value is not None and r.threshold is not None and r.decision_value < r.threshold)
        status: Status = ALERT if (crossed and rejected) or r.unseen_alert else (WARN if crossed else OK)
        metrics = (*r.metrics, MetricResult("pvalue_adjusted", q, spec.fdr, ALERT if rejected else OK))
        results[i] = replace(r, drifted=bool((crossed and rejected) or r.unseen_alert), status=status,
                             pvalue_adjusted=q,
                             metrics=metrics)
    evaluated = [r for r in results if r.drifted is not None]
    drifted = sum(1 for r in evaluated if r.drifted)
    share = drifted / len(evaluated) if evaluated else None
    if share is None:
        status = INSUFFICIENT
    elif share >= spec.dataset_drift_share:
        status = ALERT
    else:
        status = WARN if drifted else OK
    log.info("drift: %d of %d evaluated columns drifted (%d insufficient): %s",
             drifted, len(evaluated), len(results) - len(evaluated), status)
    return DatasetDrift(
        columns=tuple(results), evaluated=len(evaluated), insufficient=len(results) - len(evaluated),
        drifted=drifted, drift_share=share, threshold=spec.dataset_drift_share, fdr=spec.fdr, status=status,
    )


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibratedThreshold:
    """mean + k·σ of a distance over reference chunks (each chunk compared with the whole reference)."""

    column: str
    metric: str
    mean: float
    std: float
    k: float
    chunks: int
    threshold: float


def calibrate_thresholds(
    reference: DatasetProfile,
    chunks: Sequence[DatasetProfile],
    *,
    k: float,
    min_rows: int,
    metrics: Sequence[str] = DISTANCE_METRICS,
) -> tuple[CalibratedThreshold, ...]:
    """Calibrated distance thresholds from reference chunk profiles (pure; NannyML-style).

    Each chunk (profiled with the reference bins) is compared with the whole reference; for each
    column and distance metric the threshold is mean + k·σ (σ with ddof 1) over chunks having at
    least ``min_rows`` values on both sides. Fewer than two usable chunks → no threshold for that
    (column, metric): the static one applies. Distances shrink with sample size, so chunks should
    be about the size of a monitoring window.
    """
    if k <= 0:
        raise DriftError(f"calibration k: expected > 0, found {k}")
    bad = [m for m in metrics if m not in DISTANCE_METRICS]
    if bad:
        raise DriftError(f"calibration: expected distance metrics ({', '.join(DISTANCE_METRICS)}), found {bad}")
    out = []
    for name, ref in reference.columns.items():
        values: dict[str, list[float]] = {m: [] for m in metrics}
        usable = 0
        for chunk in chunks:
            if name not in chunk.columns:
                raise DriftError(f"calibration: expected column {name} in every chunk profile, found it missing")
            m = compare(ref, chunk.columns[name])
            if min(m.n_reference, m.n_current) < min_rows:
                continue
            usable += 1
            for metric in metrics:
                v = m.value(metric)
                if not math.isnan(v):
                    values[metric].append(v)
        for metric, vs in values.items():
            if len(vs) < 2:
                if vs or not usable:  # NaN on every usable chunk: the metric does not apply (W1 of a categorical)
                    log.info("calibration: %s %s has %d usable chunks, keeping the static threshold", name, metric,
                             len(vs))
                continue
            mean, std = float(np.mean(vs)), float(np.std(vs, ddof=1))
            if std == 0:   # every chunk identical (a constant column): a threshold of mean + 0 would alert on one row
                log.info("calibration: %s %s is the same on every chunk, keeping the static threshold", name, metric)
                continue
            out.append(CalibratedThreshold(name, metric, mean, std, k, len(vs), mean + k * std))
    return tuple(out)


def threshold_map(calibrated: Sequence[CalibratedThreshold]) -> dict[tuple[str, str], float]:
    """(column, metric) → threshold, for `DriftSpec.with_calibrated`."""
    return {(c.column, c.metric): c.threshold for c in calibrated}


# --------------------------------------------------------------------------- long format


DRIFT_ROW_FIELDS = ("column", "metric", "value", "threshold", "status", "method", "reason", "n_reference", "n_current")


def drift_rows(result: DatasetDrift) -> list[dict[str, Any]]:
    """Long-format rows, one per (column, metric), see `DRIFT_ROW_FIELDS` and ``docs/monitoring.md``.

    Per column: every metric of `column_drift` (plus ``pvalue_adjusted`` for test-decided columns)
    and a ``drift`` verdict row (value 1/0, None when insufficient; ``method`` and ``reason`` set).
    Dataset rows (column ``__dataset__``): ``evaluated_columns``, ``insufficient_columns``,
    ``drifted_columns`` and the verdict ``drift_share`` (threshold = dataset_drift_share).
    """
    out: list[dict[str, Any]] = []
    for c in result.columns:
        common = dict(column=c.column, method=c.method, reason=c.reason, n_reference=c.n_reference,
                      n_current=c.n_current)
        for m in c.metrics:
            out.append({**common, "metric": m.metric, "value": m.value, "threshold": m.threshold, "status": m.status})
        out.append({**common, "metric": "drift", "value": None if c.drifted is None else float(c.drifted),
                    "threshold": c.threshold, "status": c.status})
    base = dict(column=DATASET, method=None, reason=None, n_reference=None, n_current=None, threshold=None)
    for metric, value in (("evaluated_columns", result.evaluated), ("insufficient_columns", result.insufficient),
                          ("drifted_columns", result.drifted)):
        out.append({**base, "metric": metric, "value": float(value), "status": OK})
    reason = "no column has enough data" if result.drift_share is None else None
    out.append({**base, "metric": "drift_share", "value": result.drift_share, "threshold": result.threshold,
                "status": result.status, "reason": reason})
    return [{k: r[k] for k in DRIFT_ROW_FIELDS} for r in out]


def drift_by_column(result: DatasetDrift) -> Mapping[str, ColumnDrift]:
    """Column name → its verdict."""
    return {c.column: c for c in result.columns}
