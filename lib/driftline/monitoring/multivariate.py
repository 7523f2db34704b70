"""Multivariate drift: a domain classifier tells the window's rows from the reference's, with a calibrated threshold.

A change of the joint distribution that leaves every marginal as it was (two features whose correlation flips,
a mix of segments that swaps) is invisible to per-column drift. A classifier trained to tell reference rows
(label 0) from window rows (label 1) sees it: its cross-validated ROC AUC is ≈ 0.5 when the two are alike and
rises towards 1 as they part.

- **Rows.** The stored reference sample of the version (`driftline.monitoring.evidently_page.reference_sample`)
  and the window's sample (the stored daily samples' merge, or a seeded sample of the window), at most
  ``max_rows`` each, on the model's feature columns (the score is a function of them: it adds nothing).
- **Classifier.** scikit-learn's `HistGradientBoostingClassifier` (seeded, small: ``max_iter`` rounds, 15 leaves),
  which handles missing values and categories itself; string columns are coded by the reference sample: the (at
  most 254) values found on at least 5 of its rows keep their own code, the rest (rare and unseen values)
  share one, so a high-cardinality string (an id) is one value and cannot tell rows apart by their identity,
  while a shift towards unseen values still shows as a larger share of the shared code. ``folds``-fold
  stratified cross-validation (seeded); the AUC is of the out-of-fold probabilities (`domain_auc`).
- **Threshold.** Calibrated on the reference alone: ``calibration_runs`` seeded random halvings of the
  reference sample, the AUC of one half against the other, each the null distribution of no change. The
  threshold is ``max(mean, 0.5) + k · σ`` (a null mean below 0.5 is the halvings' noise, not room for a
  lower threshold) with σ the larger of the halvings' standard deviation and the Mann–Whitney
  null standard deviation √((n₀ + n₁ + 1) / (12 n₀ n₁)) at the halvings' sizes (a few halvings estimate σ
  loosely; a cross-validated AUC spreads at least this much), and never below ``min_auc`` (a
  practical floor: a tiny joint change, significant on many rows, is not worth an alert). The halvings are
  smaller than the comparison, so their spread is wider: the threshold errs towards fewer false alarms.
  A calibration is kept for the process (per reference sample and sizes): a run over many dates fits it once.

Pure pandas/numpy/scikit-learn on bounded samples, in the driver; documented in ``docs/monitoring.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.vocabulary import ALERT, INSUFFICIENT, OK

if TYPE_CHECKING:
    import pandas as pd

    from driftline.monitoring.spec import MultivariateConfig

MULTIVARIATE = "__multivariate__"   # the column of the multivariate rows in monitor_metrics
METRIC = "domain_auc"
METHOD = "domain_classifier"
MAX_CODES = 254                     # string values with their own code (HistGradientBoosting: ≤ 255 categories)
MIN_COUNT = 5                       # ... and at least this many reference rows (an id column codes as one value)
LEAVES = 15
LEARNING_RATE = 0.2


@dataclass(frozen=True)
class Calibration:
    """The null distribution of the AUC on halvings of the reference sample, and the threshold it gives."""

    mean: float
    std: float
    threshold: float
    runs: int


@dataclass(frozen=True)
class MultivariateDrift:
    """The domain classifier's verdict on one window."""

    auc: float | None
    threshold: float | None
    status: str
    reason: str
    n_reference: int
    n_current: int


def encode(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both samples as float matrices (numeric columns as numbers, booleans 1/0, missing NaN; categorical
    columns as codes of their values by reference frequency, rare and unseen values sharing `MAX_CODES`) and
    the mask of the categorical columns."""
    import pandas as pd

    ref_parts, cur_parts = [], []
    def number(s: pd.Series) -> np.ndarray:
        if s.dtype == object:   # booleans with nulls arrive as objects
            s = s.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
        elif pd.api.types.is_bool_dtype(s.dtype):
            s = s.astype("Float64")
        return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(dtype="float64", na_value=np.nan)

    for c in numeric:
        ref_parts.append(number(reference[c]))
        cur_parts.append(number(current[c]))
    for c in categorical:
        ref_values = reference[c].astype("string")
        cur_values = current[c].astype("string")
        counts = ref_values.value_counts(dropna=True)
        # by frequency, ties by value: the same codes on a rerun
        order = sorted(((v, n) for v, n in counts.items() if n >= MIN_COUNT),
                       key=lambda kv: (-kv[1], str(kv[0])))[:MAX_CODES]
        codes = {v: float(i) for i, (v, _) in enumerate(order)}

        def coded(s: pd.Series, codes: dict[Any, float] = codes) -> np.ndarray:
            return np.array([math.nan if pd.isna(v) else codes.get(v, float(MAX_CODES)) for v in s], dtype="float64")

        ref_parts.append(coded(ref_values))
        cur_parts.append(coded(cur_values))
    mask = np.array([False] * len(numeric) + [True] * len(categorical))
    ref_x = np.column_stack(ref_parts) if ref_parts else np.empty((len(reference), 0))
    cur_x = np.column_stack(cur_parts) if cur_parts else np.empty((len(current), 0))
    return ref_x, cur_x, mask


def domain_auc(ref_x: np.ndarray, cur_x: np.ndarray, mask: np.ndarray, *, folds: int, max_iter: int,
               seed: int) -> float:
    """Cross-validated ROC AUC of a classifier telling ``cur_x`` rows (1) from ``ref_x`` rows (0): the AUC of
    the out-of-fold probabilities of ``folds``-fold stratified cross-validation, every step seeded."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([ref_x, cur_x])
    y = np.concatenate([np.zeros(len(ref_x)), np.ones(len(cur_x))])
    model = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=LEARNING_RATE, max_leaf_nodes=LEAVES,
                                           categorical_features=mask if mask.any() else None,
                                           early_stopping=False, random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))


def null_std(n0: int, n1: int) -> float:
    """Standard deviation of the AUC of two same-distribution samples of sizes ``n0``, ``n1`` (Mann–Whitney)."""
    return math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1))


_CALIBRATIONS: dict[tuple[Any, ...], Calibration] = {}


def calibrate(ref_x: np.ndarray, mask: np.ndarray, n_current: int, cfg: MultivariateConfig, key: Any = None
              ) -> Calibration:
    """The threshold of `domain_auc` from ``cfg.calibration_runs`` seeded halvings of the reference sample (see the
    module docstring); kept for the process under ``key`` (the reference sample's identity) and the sizes."""
    cache_key = None if key is None else (key, len(ref_x), n_current, cfg)
    if cache_key is not None and cache_key in _CALIBRATIONS:
        return _CALIBRATIONS[cache_key]
    rng = np.random.default_rng(cfg.seed)
    half = len(ref_x) // 2
    aucs = []
    for run in range(cfg.calibration_runs):
        order = rng.permutation(len(ref_x))
        aucs.append(domain_auc(ref_x[order[:half]], ref_x[order[half:2 * half]], mask, folds=cfg.folds,
                               max_iter=cfg.max_iter, seed=cfg.seed + 1 + run))
    mean = float(np.mean(aucs))
    std = max(float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0, null_std(half, half))
    found = Calibration(mean, std, max(max(mean, 0.5) + cfg.calibration_k * std, cfg.min_auc), len(aucs))
    if cache_key is not None:
        _CALIBRATIONS[cache_key] = found
    return found


def multivariate_drift(reference: pd.DataFrame | None, current: pd.DataFrame | None, numeric: Sequence[str],
                       categorical: Sequence[str], cfg: MultivariateConfig, key: Any = None) -> MultivariateDrift:
    """The domain classifier's AUC on the two samples (at most ``cfg.max_rows`` rows each, seeded), its calibrated
    threshold and status: ``alert`` above the threshold, ``insufficient_data`` when a side has fewer than
    ``cfg.min_rows`` rows or no sample (the reason says which), else ``ok``."""
    n_ref = 0 if reference is None else min(len(reference), cfg.max_rows)
    n_cur = 0 if current is None else min(len(current), cfg.max_rows)
    if reference is None or current is None or n_ref < cfg.min_rows or n_cur < cfg.min_rows:
        what = ("no stored reference sample (a version trained before samples, or monitoring.report.evidently_rows "
                "is 0)" if reference is None else "no sample of the window" if current is None
                else f"{n_ref} reference / {n_cur} window sample rows, expected at least {cfg.min_rows} on each side")
        return MultivariateDrift(None, None, INSUFFICIENT, what, n_ref, n_cur)
    ref = reference.sample(n=n_ref, random_state=cfg.seed) if len(reference) > n_ref else reference
    cur = current.sample(n=n_cur, random_state=cfg.seed) if len(current) > n_cur else current
    ref_x, cur_x, mask = encode(ref, cur, numeric, categorical)
    cal = calibrate(ref_x, mask, n_cur, cfg, key)
    auc = domain_auc(ref_x, cur_x, mask, folds=cfg.folds, max_iter=cfg.max_iter, seed=cfg.seed)
    status = ALERT if auc > cal.threshold else OK
    reason = (f"threshold = max(max(null mean {cal.mean:.4f}, 0.5) + {cfg.calibration_k:g} × σ {cal.std:.4f}, floor "
              f"{cfg.min_auc:g}); null from {cal.runs} halvings of the reference sample")
    return MultivariateDrift(auc, cal.threshold, status, reason, n_ref, n_cur)


def multivariate_rows(result: MultivariateDrift) -> list[dict[str, Any]]:
    """The ``monitor_metrics`` row of the verdict: column `MULTIVARIATE`, metric ``domain_auc``."""
    return [{"column": MULTIVARIATE, "metric": METRIC, "value": result.auc, "threshold": result.threshold,
             "status": result.status, "method": METHOD, "reason": result.reason,
             "n_reference": result.n_reference, "n_current": result.n_current}]
