"""Estimated binary-classification performance before labels arrive (CBPE) from one pass of per-cell aggregates.

Train time (`fit_cell_table`, on the validation window's scores and labels): cells on the score — quantile edges
of the validation scores plus the decision threshold, 0.0, 1.0 and ``1.0⁺`` (the next double, so a score of 1.0
has a cell of its own, as `driftline.profiling.bins.quantile_edges`); an isotonic calibrator of the labels on
the scores, stored per cell as ``c_k`` = the mean calibrated P(y = 1) of the validation rows in cell k (a cell
without validation rows: the calibrator at its midpoint). The table is stored with the version
(`driftline.monitoring.estimated_store.cell_rows`).

Monitor time (`estimate`): the window's profile of `CELL_COLUMN` (the score, counted in the table's cells:
``n_k``, offset sums, count / mean / std) gives per cell the expected positives ``P_k = n_k c_k`` and
negatives ``N_k = n_k − P_k``. The threshold is an edge, so a cell is predicted positive as a whole (left edge
≥ threshold, as the score job's ``predicted_label = score >= threshold``): expected TP / FP over those cells,
FN / TN over the others; AUC = [Σ_k P_k Σ_{j<k} N_j + ½ Σ_k P_k N_k] / (ΣP · ΣN) (ties within a cell count
½); Brier of the raw score = (Σ s² − 2 Σ_k c_k Σ_{s∈k} s + Σ_k n_k c_k) / n. Scores below 0 (−inf included)
take the first bin's ``c``, above ``1.0⁺`` (+inf included) the last bin's; the Brier uses finite scores only;
NaN / null scores are in no cell and count nowhere. Only valid while P(y | score) holds (see docs/monitoring.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from driftline.errors import DriftlineError
from driftline.monitoring.performance import PERFORMANCE
from driftline.profiling.bins import NumericBins
from driftline.profiling.types import NumericProfile
from driftline.vocabulary import ALERT, INSUFFICIENT, OK, WARN, finite_or_none

log = logging.getLogger(__name__)

CELL_COLUMN = "__score_cells__"  # the score, profiled in the table's cells
ESTIMATED_METRICS = ("auc", "precision", "recall", "f1", "accuracy", "brier")
PREFIX = "estimated_"  # monitor_metrics rows estimated_<metric>
ERROR_PREFIX = "estimated_error_"  # realized − estimated, once the window's labels matured
METHOD = "cbpe"
HIGHER_IS_WORSE = frozenset({"brier"})
WARN_SIGMAS, ALERT_SIGMAS = 2.0, 3.0  # the band of an estimate around the reference
ERROR_SIGMAS = 3.0  # |realized − estimated| beyond this many σ: warn
SIGMA_CAL = 0.003  # the calibrator's own error (docs/research/cbpe: isotonic at 20k validation rows), a constant
DEFAULT_CELLS = 100
MAX_EQUAL_CHUNKS, MIN_EQUAL_CHUNKS, CHUNK_ROWS = 20, 5, 1000


class EstimationError(DriftlineError):
    """Estimated performance asked of inputs that cannot give it (cells that do not match, bad labels)."""


@dataclass(frozen=True)
class CellTable:
    """A version's CBPE cells: ``edges`` (strictly increasing, the threshold one of them), ``probability``
    (``c_k`` per bin), the decision ``threshold``, on the validation window the ``reference`` estimates (the
    band's centre) and ``realized`` metrics, per metric the one-row sampling std ``spread`` of the estimate
    (σ₁: the std at n rows is σ₁/√n) and ``label_spread`` of realized − estimated (the label noise, same
    scaling), the ``cells`` asked for and the ``validation_rows``."""

    edges: tuple[float, ...]
    probability: tuple[float, ...]
    threshold: float
    reference: Mapping[str, float | None]
    realized: Mapping[str, float | None]
    spread: Mapping[str, float | None]
    label_spread: Mapping[str, float | None]
    cells: int
    validation_rows: int

    def bins(self) -> NumericBins:
        """The bins the monitor profiles `CELL_COLUMN` in."""
        return NumericBins(CELL_COLUMN, self.edges)


@dataclass(frozen=True)
class _Cells:
    """Per cell (underflow, bins…, overflow): rows (±inf in the outer cells), finite rows and Σ s (None
    without offset sums); finite count and Σ s² (None when unknown)."""

    n: np.ndarray
    finite: np.ndarray
    sums: np.ndarray | None
    count: int
    sum_sq: float | None


# --------------------------------------------------------------------------- cells


def _cell_index(edges: Sequence[float], x: np.ndarray) -> np.ndarray:
    """Cell of finite values as the profile fold counts them: 0 underflow, 1..n bins, n + 1 overflow."""
    e = np.asarray(edges, dtype=float)
    search = np.array([*e[:-1], np.nextafter(e[-1], np.inf)])
    return np.searchsorted(search, x, side="right")


def _cells_of_scores(edges: Sequence[float], scores: np.ndarray) -> _Cells:
    """The cells of raw scores (the numpy twin of the profile fold)."""
    s = np.asarray(scores, dtype=float)
    x = s[np.isfinite(s)]
    k = len(edges) + 1
    idx = _cell_index(edges, x)
    finite = np.bincount(idx, minlength=k).astype(float)
    n = finite.copy()
    n[0] += np.count_nonzero(s == -np.inf)
    n[-1] += np.count_nonzero(s == np.inf)
    return _Cells(n, finite, np.bincount(idx, weights=x, minlength=k), int(x.size), float(np.dot(x, x)))


def _cells_of_profile(profile: NumericProfile, edges: Sequence[float]) -> _Cells:
    """The cells of a window's profile of `CELL_COLUMN`; its edges must be the table's."""
    if tuple(profile.edges) != tuple(edges):
        raise EstimationError(f"estimate: expected the profile of {profile.column} in the table's "
                              f"{len(edges) - 1} cells, found {max(len(profile.edges) - 1, 0)} other cells")
    e = np.asarray(edges, dtype=float)
    n = np.array([profile.underflow, *profile.bin_counts, profile.overflow], dtype=float)
    finite = np.array([profile.underflow_finite, *profile.bin_counts, profile.overflow_finite], dtype=float)
    sums = None
    if profile.offset_sums:
        inner = np.array([e[0], *e[:-1], e[-1]])
        sign = np.ones(len(inner))
        sign[0] = -1.0  # underflow offsets are e_0 − s
        sums = finite * inner + sign * np.asarray(profile.offset_sums, dtype=float)
    c = int(profile.count)
    sum_sq = None
    if c and math.isfinite(profile.mean):
        var = profile.std if c > 1 and math.isfinite(profile.std) else 0.0
        sum_sq = (c - 1) * var * var + c * profile.mean * profile.mean
    return _Cells(n, finite, sums, c, sum_sq)


# --------------------------------------------------------------------------- metrics


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def _metrics(table: CellTable, cells: _Cells) -> dict[str, float | None]:
    """Estimated metrics and expected confusion counts of a window's cells."""
    c = np.array([table.probability[0], *table.probability, table.probability[-1]])
    pos = np.array([False, *(np.asarray(table.edges[:-1]) >= table.threshold), True])
    P = cells.n * c
    N = cells.n - P
    tp, fp, fn, tn = P[pos].sum(), N[pos].sum(), P[~pos].sum(), N[~pos].sum()
    total = cells.n.sum()
    below = np.cumsum(N) - N
    pairs = P.sum() * N.sum()
    auc = _ratio(float(np.dot(P, below) + 0.5 * np.dot(P, N)), pairs) if P.sum() > 0 and N.sum() > 0 else None
    brier = None
    if cells.sums is not None and cells.sum_sq is not None and cells.count > 0:
        brier = (cells.sum_sq - 2 * np.dot(c, cells.sums) + np.dot(cells.finite, c)) / cells.count
    return dict(auc=auc, precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn),
                f1=_ratio(2 * tp, 2 * tp + fp + fn), accuracy=_ratio(tp + tn, total),
                brier=None if brier is None else float(brier), expected_tp=float(tp), expected_fp=float(fp),
                expected_fn=float(fn), expected_tn=float(tn), rows=float(total))


def estimate(table: CellTable, profile: NumericProfile) -> dict[str, float | None]:
    """Estimated `ESTIMATED_METRICS` of a window from its profile of `CELL_COLUMN` (see the module doc), plus
    ``expected_tp`` / ``expected_fp`` / ``expected_fn`` / ``expected_tn`` and ``rows`` (scored rows in a cell).
    None where undefined: no rows, no expected positive or negative (AUC), an empty denominator, no offset
    sums or moments (Brier). Raises `EstimationError` when the profile was not counted in the table's cells."""
    return _metrics(table, _cells_of_profile(profile, table.edges))


def realized_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float | None]:
    """The metrics with the labels (rows with a finite score and a label): AUC of Mann–Whitney (ties ½),
    prediction = score ≥ threshold; None where undefined."""
    from scipy.stats import rankdata

    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    pred, pos = s >= threshold, y == 1
    tp, fp = float(np.sum(pred & pos)), float(np.sum(pred & ~pos))
    fn, tn = float(np.sum(~pred & pos)), float(np.sum(~pred & ~pos))
    n1, n0 = float(pos.sum()), float((~pos).sum())
    auc = None
    if n1 and n0:
        auc = float((rankdata(s)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    return dict(auc=auc, precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn),
                f1=_ratio(2 * tp, 2 * tp + fp + fn), accuracy=_ratio(tp + tn, len(s)),
                brier=float(np.mean((s - y) ** 2)) if len(s) else None)


# --------------------------------------------------------------------------- train time


def fit_edges(scores: np.ndarray, threshold: float, cells: int = DEFAULT_CELLS) -> tuple[float, ...]:
    """Quantile edges of the validation scores (deduplicated) with 0.0, ``threshold``, 1.0 and ``1.0⁺``."""
    if not 0.0 <= threshold <= 1.0:
        raise EstimationError(f"threshold: expected a decision threshold in [0, 1], found {threshold}")
    q = np.quantile(scores, np.linspace(0, 1, cells + 1)[1:-1]) if cells > 1 else np.array([])
    inner = {float(v) for v in q if 0.0 < v < 1.0}
    return (*sorted({0.0, 1.0, float(threshold), *inner}), math.nextafter(1.0, math.inf))


def unfit_reason(scores: np.ndarray, labels: np.ndarray, cells: int = DEFAULT_CELLS) -> str | None:
    """Why a cell table cannot be fitted on these validation rows (after dropping non-finite scores and null
    labels), None when it can."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    n = int(keep.sum())
    if n < 2 * cells:
        return f"{n} validation rows with a score and a label, expected at least {2 * cells} (2 × {cells} cells)"
    if len(np.unique(y[keep])) < 2:
        return f"the validation labels hold one class ({y[keep][0]:g}), expected both 0 and 1"
    return None


def fit_cell_table(scores: np.ndarray, labels: np.ndarray, chunks: Sequence[Any] | np.ndarray | None,
                   threshold: float, cells: int = DEFAULT_CELLS) -> CellTable | None:
    """The version's `CellTable` from its validation window: ``scores``, 0/1 ``labels`` and per row its chunk
    (as-of date; None or fewer than 3 distinct: equal chunks of consecutive rows), decision ``threshold``.

    Rows without a finite score or a label are dropped. Returns None, and logs the reason once at warning
    ("estimated performance off for this version: …"), when fewer than 2 × ``cells`` rows remain or the labels
    hold one class (the caller need not log). Raises `EstimationError` for labels other than 0/1 or a threshold
    outside [0, 1]."""
    from sklearn.isotonic import IsotonicRegression

    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    if not np.isin(y[keep], (0.0, 1.0)).all():
        raise EstimationError(f"labels: expected 0/1, found {sorted(set(y[keep].tolist()) - {0.0, 1.0})[:5]}")
    reason = unfit_reason(s, y, cells)
    if reason is not None:
        log.warning("estimated performance off for this version: %s", reason)
        return None
    keys = None if chunks is None else np.asarray(chunks, dtype=object)[keep]
    s, y = s[keep], y[keep]
    edges = fit_edges(s, threshold, cells)
    iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s, y)
    return table_from_calibrated(edges, s, y, iso.predict(s), iso.predict, keys, threshold, cells)


def table_from_calibrated(edges: Sequence[float], scores: np.ndarray, labels: np.ndarray, calibrated: np.ndarray,
                          calibrator: Any, chunks: np.ndarray | None, threshold: float, cells: int) -> CellTable:
    """The `CellTable` of ``edges`` given each validation row's calibrated probability (``calibrator``: the
    fitted map, for bins without validation rows); the reference, realized metrics and spreads."""
    e = np.asarray(edges, dtype=float)
    k = len(e) - 1
    idx = _cell_index(edges, scores) - 1
    inside = (idx >= 0) & (idx < k)
    n = np.bincount(idx[inside], minlength=k).astype(float)
    total = np.bincount(idx[inside], weights=calibrated[inside], minlength=k)
    fallback = np.asarray(calibrator(np.clip((e[:-1] + e[1:]) / 2, 0.0, 1.0)), dtype=float)
    c = np.where(n > 0, total / np.maximum(n, 1.0), fallback)
    table = CellTable(tuple(float(v) for v in e), tuple(float(v) for v in c), float(threshold), {},
                      realized_metrics(scores, labels, threshold), {}, {}, int(cells), int(len(scores)))
    reference = _metrics(table, _cells_of_scores(edges, scores))
    table = replace(table, reference={m: reference[m] for m in ESTIMATED_METRICS})
    spread, label_spread = _spreads(table, scores, labels, chunks)
    return replace(table, spread=spread, label_spread=label_spread)


def _chunk_rows(n: int, chunks: np.ndarray | None) -> list[np.ndarray]:
    """Row indices per reference chunk: by chunk key when there are at least 3, else equal consecutive chunks."""
    if chunks is not None:
        keys, inverse = np.unique(chunks.astype(str), return_inverse=True)
        if len(keys) >= 3:
            return [np.flatnonzero(inverse == i) for i in range(len(keys))]
    m = min(MAX_EQUAL_CHUNKS, max(MIN_EQUAL_CHUNKS, n // CHUNK_ROWS))
    return list(np.array_split(np.arange(n), m))


def _spreads(table: CellTable, scores: np.ndarray, labels: np.ndarray,
             chunks: np.ndarray | None) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Per metric σ₁ of the estimate around the reference, and of realized − estimated, over the chunks:
    √(Σ_c (x_c − centre)² n_c / dof), dof = chunks − 1 around the reference, chunks around 0."""
    dev: dict[str, list[tuple[float, float]]] = {m: [] for m in ESTIMATED_METRICS}
    err: dict[str, list[tuple[float, float]]] = {m: [] for m in ESTIMATED_METRICS}
    for rows in _chunk_rows(len(scores), chunks):
        est = _metrics(table, _cells_of_scores(table.edges, scores[rows]))
        real = realized_metrics(scores[rows], labels[rows], table.threshold)
        for m in ESTIMATED_METRICS:
            e, r, ref = est[m], real[m], table.reference[m]
            if e is not None and ref is not None:
                dev[m].append((e - ref, len(rows)))
            if e is not None and r is not None:
                err[m].append((r - e, len(rows)))

    def pooled(xs: list[tuple[float, float]], dof: int) -> float | None:
        return math.sqrt(sum(d * d * w for d, w in xs) / dof) if dof > 0 else None

    return ({m: pooled(dev[m], len(dev[m]) - 1) for m in ESTIMATED_METRICS},
            {m: pooled(err[m], len(err[m])) for m in ESTIMATED_METRICS})


# --------------------------------------------------------------------------- monitor rows


def _row(metric: str, value: float | None, threshold: float | None, status: str, reason: str | None,
         n_reference: int, n_current: int) -> dict[str, Any]:
    return dict(column=PERFORMANCE, metric=metric, value=finite_or_none(value), threshold=finite_or_none(threshold),
                status=status, method=METHOD, reason=reason, n_reference=n_reference, n_current=n_current)


def estimated_rows(table: CellTable, profile: NumericProfile, min_rows: int) -> list[dict[str, Any]]:
    """``monitor_metrics`` rows ``estimated_<metric>`` of a window (column ``__performance__``, method ``cbpe``).

    The band: the estimate is judged against the reference (the estimate on the validation window) with
    σ = √(σ₁² + σ_label²)/√n at the window's n rows: σ₁ (``table.spread``) is how the estimate itself moves
    between reference chunks, σ_label (``table.label_spread``) how the realized metric moves around it — the
    band covers the day-to-day variation of the metric a stable world shows, as NannyML's thresholds do (the
    estimate's own sampling noise alone alerted on stable days of the demo). Only the bad side counts (lower for
    auc/precision/recall/f1/accuracy, higher for brier): beyond reference ∓ 3σ ``alert``, beyond ∓ 2σ ``warn``,
    else ``ok``; ``threshold`` = the alert bound (reference ∓ 3σ). ``n_current`` = the window's rows in a cell,
    ``n_reference`` = the validation rows. ``insufficient_data`` with a reason below ``min_rows`` rows or when
    the estimate, the reference or σ₁ is undefined."""
    est = estimate(table, profile)
    n = int(est["rows"] or 0)
    out = []
    for m in ESTIMATED_METRICS:
        value, ref, s1 = est[m], table.reference.get(m), table.spread.get(m)
        ls = table.label_spread.get(m)
        if n < min_rows:
            reason = f"{n} scored rows in the window, expected at least {min_rows} for estimated performance"
        elif value is None:
            reason = f"estimated {m} undefined on this window"
        elif ref is None or s1 is None:
            reason = f"no reference band for {m} (undefined on the validation window)"
        else:
            out.append(_banded_row(m, value, ref, math.sqrt(s1 * s1 + (ls or 0.0) ** 2) / math.sqrt(n), table, n))
            continue
        out.append(_row(PREFIX + m, value, None, INSUFFICIENT, reason, table.validation_rows, n))
    return out


def _banded_row(m: str, value: float, ref: float, sd: float, table: CellTable, n: int) -> dict[str, Any]:
    """The row of an estimate judged against the band reference ∓ k·``sd`` on its bad side."""
    sign = 1.0 if m in HIGHER_IS_WORSE else -1.0
    worse = sign * (value - ref)  # > 0 on the bad side
    status = ALERT if worse > ALERT_SIGMAS * sd else WARN if worse > WARN_SIGMAS * sd else OK
    return _row(PREFIX + m, value, ref + sign * ALERT_SIGMAS * sd, status, None, table.validation_rows, n)


def comparison_rows(estimated: Mapping[str, float | None], realized: Mapping[str, float | None], labelled: int,
                    table: CellTable) -> list[dict[str, Any]]:
    """Rows ``estimated_error_<metric>`` = realized − estimated once a window's labels matured (``labelled``
    rows; ``estimated`` / ``realized`` keyed by plain metric name).

    z = (realized − estimated) / σ, σ = √(σ_label² + σ_cal²): σ_label = ``table.label_spread`` / √labelled —
    the one-row std of realized − estimated on the validation chunks, an approximation that takes the window's
    labelled rows for its scored rows and its score distribution for the validation's; σ_cal = `SIGMA_CAL`
    (0.003, a constant from the research, not computed per version). ``warn`` when |z| > 3, else ``ok``;
    ``threshold`` = 3σ (the bound on |error|); ``insufficient_data`` when either side or σ_label is missing."""
    out = []
    for m in ESTIMATED_METRICS:
        e, r, s1 = estimated.get(m), realized.get(m), table.label_spread.get(m)
        if e is None or r is None or s1 is None or labelled <= 0:
            side = "estimate" if e is None else "realized value" if r is None else "label spread" if s1 is None \
                else "labelled row"
            out.append(_row(ERROR_PREFIX + m, None, None, INSUFFICIENT, f"{m}: expected an estimate and a realized "
                            f"value, found no {side}", table.validation_rows, labelled))
            continue
        sigma = math.sqrt((s1 / math.sqrt(labelled)) ** 2 + SIGMA_CAL ** 2)
        diff = r - e
        status = WARN if abs(diff) > ERROR_SIGMAS * sigma else OK
        out.append(_row(ERROR_PREFIX + m, diff, ERROR_SIGMAS * sigma, status, None, table.validation_rows, labelled))
    return out
