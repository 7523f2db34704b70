"""Drift measures on ordered cell counts (pure numpy): PSI, Jensen–Shannon distance, total variation, L∞,
the binned KS statistic with its bracket and p-value, the chi-square test of homogeneity, Wasserstein-1 from
quantile functions or from cells and offset sums, and Benjamini–Hochberg adjusted p-values.

Definitions and the oracles they are tested against are in ``docs/monitoring.md``;
`driftline.monitoring.comparison` applies them to two profiles and `driftline.monitoring.verdict` turns them
into verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from driftline.errors import DriftlineError

PSI_EPSILON = 1e-4  # proportion substituted for an empty cell in PSI (Evidently's usual value)


class DriftError(DriftlineError):
    """Two profiles cannot be compared (different bins, kinds or columns)."""


def _as_counts(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(counts, dtype=float)
    if a.ndim != 1 or (a < 0).any():
        raise DriftError(f"expected a 1-d vector of non-negative counts, found {a.tolist()}")
    return a


def _proportions(ref: Sequence[float] | np.ndarray, cur: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, c = _as_counts(ref), _as_counts(cur)
    if r.shape != c.shape:
        raise DriftError(f"expected the same number of cells on both sides, found {r.size} vs {c.size}")
    nr, nc = r.sum(), c.sum()
    if nr == 0 or nc == 0:
        return np.full_like(r, math.nan), np.full_like(c, math.nan)
    return r / nr, c / nc


def psi(ref: Sequence[float], cur: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index Σ (q − p)·ln(q / p) over cells; empty-cell proportions become ``epsilon``."""
    p, q = _proportions(ref, cur)
    if np.isnan(p).any():
        return math.nan
    p = np.where(p == 0, epsilon, p)
    q = np.where(q == 0, epsilon, q)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref: Sequence[float], cur: Sequence[float]) -> float:
    """Jensen–Shannon distance in base 2: √JSD, in [0, 1]; no smoothing needed (0·log 0 = 0)."""
    p, q = _proportions(ref, cur)
    if np.isnan(p).any():
        return math.nan
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(min(math.sqrt(max((kl(p) + kl(q)) / 2, 0.0)), 1.0))


def total_variation(ref: Sequence[float], cur: Sequence[float]) -> float:
    """Total variation distance ½ Σ |p − q| over cells."""
    p, q = _proportions(ref, cur)
    return float(min(np.sum(np.abs(p - q)) / 2, 1.0))   # rounding can pass 1 by an ulp


def linf(ref: Sequence[float], cur: Sequence[float]) -> float:
    """L∞ distance max |p − q| over cells."""
    p, q = _proportions(ref, cur)
    return float(np.max(np.abs(p - q))) if p.size else math.nan


@dataclass(frozen=True)
class KsBinned:
    """KS statistic on ordered cells: ``statistic`` ≤ exact D ≤ ``upper``; p-value from ``statistic``."""

    statistic: float
    upper: float
    pvalue: float


def ks_binned(ref: Sequence[float], cur: Sequence[float]) -> KsBinned:
    """Two-sample KS from ordered cell counts.

    ``statistic`` = max |F_ref − F_cur| at the cell boundaries (the exact D is at least this);
    ``upper`` bounds the exact D: inside cell k both CDFs rise by at most their cell masses p_k, q_k,
    so |F_ref − F_cur| ≤ max(d_k + p_k, q_k − d_k) with d_k the difference at the cell's left boundary.
    ``pvalue`` = ``kstwo.sf(statistic, round(n·m/(n+m)))`` (scipy's asymptotic two-sided p-value):
    computed from the lower bound, it is never smaller than the exact-statistic p-value (conservative).
    """
    from scipy.stats import kstwo

    p, q = _proportions(ref, cur)
    if p.size == 0 or np.isnan(p).any():
        return KsBinned(math.nan, math.nan, math.nan)
    d = np.cumsum(p) - np.cumsum(q)  # difference at the right boundary of each cell
    left = np.concatenate(([0.0], d[:-1]))  # ... and at its left boundary
    stat = float(np.max(np.abs(d[:-1]))) if d.size > 1 else 0.0
    upper = float(min(np.max(np.maximum(left + p, q - left)), 1.0))
    nr, nc = float(np.sum(ref)), float(np.sum(cur))
    en = round(nr * nc / (nr + nc))
    pvalue = float(np.clip(kstwo.sf(stat, en), 0, 1)) if en >= 1 else math.nan
    return KsBinned(stat, max(upper, stat), pvalue)


@dataclass(frozen=True)
class Chi2:
    statistic: float
    dof: int
    pvalue: float


def chi2_2xk(ref: Sequence[float], cur: Sequence[float]) -> Chi2:
    """Chi-square test of homogeneity on the 2×K table (reference, current) × cells.

    ``scipy.stats.chi2_contingency`` semantics: cells empty on both sides are dropped (their
    expected count is 0), dof = K' − 1, Yates' continuity correction when dof = 1; one non-empty
    cell gives statistic 0, p-value 1. Never a goodness-of-fit against reference frequencies (an
    unseen category would make that infinite).
    """
    from scipy.stats import chi2

    r, c = _as_counts(ref), _as_counts(cur)
    if r.sum() == 0 or c.sum() == 0:
        return Chi2(math.nan, 0, math.nan)
    keep = (r + c) > 0
    observed = np.vstack([r[keep], c[keep]])
    dof = observed.shape[1] - 1
    if dof == 0:
        return Chi2(0.0, 0, 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return Chi2(stat, dof, float(chi2.sf(stat, dof)))


@dataclass(frozen=True)
class Wasserstein:
    """Wasserstein-1 from quantile functions: ``value`` (linear interpolation) within [lower, upper]."""

    value: float
    lower: float
    upper: float


def wasserstein_quantiles(probs: Sequence[float], q_ref: Sequence[float], q_cur: Sequence[float]) -> Wasserstein:
    """W1 = ∫₀¹ |F⁻¹(u) − G⁻¹(u)| du from quantiles at the same ``probs`` (0 and 1 = min and max).

    ``value`` integrates the difference of the piecewise-linear quantile functions exactly. Because
    quantile functions are non-decreasing, on [u_j, u_{j+1}] with F⁻¹ ∈ [a_j, a_{j+1}] and
    G⁻¹ ∈ [b_j, b_{j+1}] the integrand lies between max(0, a_j − b_{j+1}, b_j − a_{j+1}) and
    max(|a_{j+1} − b_j|, |b_{j+1} − a_j|): summing gives a bracket of the exact W1 (exact up to the
    rank error of the quantile sketch).
    """
    u = np.asarray(probs, dtype=float)
    a = np.maximum.accumulate(np.asarray(q_ref, dtype=float))
    b = np.maximum.accumulate(np.asarray(q_cur, dtype=float))
    if u.size < 2 or not (u.size == a.size == b.size) or np.isnan(a).any() or np.isnan(b).any():
        return Wasserstein(math.nan, math.nan, math.nan)
    h = np.diff(u)
    d0, d1 = (a - b)[:-1], (a - b)[1:]
    same = d0 * d1 >= 0
    s = np.abs(d0) + np.abs(d1)
    crossing = np.divide(d0**2 + d1**2, 2 * s, out=np.zeros_like(s), where=s > 0)
    value = float(np.sum(h * np.where(same, s / 2, crossing)))
    lower = float(np.sum(h * np.maximum.reduce([np.zeros_like(h), a[:-1] - b[1:], b[:-1] - a[1:]])))
    upper = float(np.sum(h * np.maximum(np.abs(a[1:] - b[:-1]), np.abs(b[1:] - a[:-1]))))
    return Wasserstein(value, lower, max(upper, value))


def wasserstein_cells(edges: Sequence[float], ref_counts: Sequence[float], ref_offsets: Sequence[float],
                      cur_counts: Sequence[float], cur_offsets: Sequence[float]) -> Wasserstein:
    """W1 = ∫ |F(x) − G(x)| dx from cell counts and offset sums (finite values; cells = underflow, the bins
    [e_k, e_{k+1}), overflow; offsets = Σ (v − e_k) in bin k, Σ (e_0 − v) below, Σ (v − e_n) above).

    On each cell the integral of F − G is exact: ∫_{e_k}^{e_{k+1}} F dx = (C_k·h + c_k·h − o_k) / N with
    C_k the values left of the cell, c_k its count and o_k its offset sum; below e_0, ∫F = o_under / N, above
    e_n, ∫(1 − F) = o_over / N. So ``lower`` = Σ |∫_cell (F − G)| is exact wherever F − G keeps its sign in a
    cell (every cell of a pure shift; the outer cells when one side has nothing there, as the reference,
    whose edges span its own min..max). ``upper`` bounds the cells where it may change sign by monotonicity
    (F − G ≤ F(b) − G(a), G − F ≤ G(b) − F(a); |F − G| ≤ (F − F(a)) + |F(a) − G(a)| + (G − G(a)), whose
    integral is known, and the same from the right end). ``value`` is |∫ (F − G)| where F − G has the same sign at
    both ends of a cell, else the integral of a linear crossing through the two end values, kept in
    [lower, upper].
    """
    fc, gc = np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)
    fo, go = np.asarray(ref_offsets, dtype=float), np.asarray(cur_offsets, dtype=float)
    e = np.asarray(edges, dtype=float)
    nf, ng = fc.sum(), gc.sum()
    if e.size < 2 or nf == 0 or ng == 0 or not (fc.size == gc.size == fo.size == go.size == e.size + 1):
        return Wasserstein(math.nan, math.nan, math.nan)
    fcum, gcum = np.cumsum(fc) / nf, np.cumsum(gc) / ng     # F, G at the right end of each cell
    # outer cells: ∫ F below e_0 and ∫ (1 − F) above e_n; F and G both move monotonically there
    pieces = []
    for a_int, b_int in ((fo[0] / nf, go[0] / ng), (fo[-1] / nf, go[-1] / ng)):
        exact = a_int == 0 or b_int == 0
        pieces.append((abs(a_int - b_int), abs(a_int - b_int) if exact else a_int + b_int, abs(a_int - b_int)))
    h = np.diff(e)
    fa, ga = fcum[:-2], gcum[:-2]                            # at the left end (before the cell's values)
    fb, gb = fcum[1:-1], gcum[1:-1]                          # at the right end
    f_int = fa * h + (fc[1:-1] * h - fo[1:-1]) / nf          # ∫_cell F
    g_int = ga * h + (gc[1:-1] * h - go[1:-1]) / ng
    integral = f_int - g_int
    lower = np.abs(integral)
    pos = np.maximum(fb - ga, 0) * h                         # ≥ ∫ (F − G)⁺
    neg = np.maximum(gb - fa, 0) * h                         # ≥ ∫ (G − F)⁺
    upper = np.minimum.reduce([
        2 * pos - integral, 2 * neg + integral,
        (f_int - fa * h) + (g_int - ga * h) + np.abs(fa - ga) * h,   # |F − G| ≤ (F − F(a)) + |F(a) − G(a)| + (G − G(a))
        (fb * h - f_int) + (gb * h - g_int) + np.abs(fb - gb) * h,   # the same from the right end
    ])
    upper = np.maximum(upper, lower)
    da, db = fa - ga, fb - gb
    s = np.abs(da) + np.abs(db)
    crossing = np.divide(h * (da**2 + db**2), 2 * s, out=np.zeros_like(s), where=s > 0)
    value = np.where(da * db < 0, np.clip(crossing, lower, upper), lower)
    lo = float(lower.sum() + sum(p[0] for p in pieces))
    hi = float(upper.sum() + sum(p[1] for p in pieces))
    return Wasserstein(min(max(float(value.sum() + sum(p[2] for p in pieces)), lo), hi), lo, hi)


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in input order; reject where q ≤ FDR level."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    return [float(x) for x in out]
