"""One column's drift measures from its reference and current profiles, computed only from their aggregates.

Usage::

    m = compare(reference.columns["x"], current.columns["x"])   # Measures (frozen)
    m.value("psi"), m.ks_statistic, m.wasserstein_norm, m.unseen_share

Both profiles must come from `driftline.profiling.profile.profile` with the same reference bins
(else `DriftError`). Nothing here touches data: every number is a function of histogram cells,
offset sums, quantiles and moments.

Cells (`cells`). A numeric column has ``underflow, bin_0 … bin_{n-1}, overflow`` (±inf sit in the
outer cells); a categorical column has its top-K categories then its tail buckets, or ``__other__``.
Nulls and NaN are not values of the distribution (they are data quality), so ``n`` = non-missing
values on each side. The measures on cells (PSI, JS, KS with its bracket, chi-square of homogeneity,
Wasserstein-1, L∞, total variation) are in `driftline.monitoring.measures`; here they are applied to
two profiles, with the share of never-seen values (`unseen_count`, `unseen_threshold`). Verdicts are
in `driftline.monitoring.verdict`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from driftline.monitoring.measures import (
    Chi2,
    DriftError,
    KsBinned,
    Wasserstein,
    chi2_2xk,
    js_distance,
    ks_binned,
    linf,
    psi,
    total_variation,
    wasserstein_cells,
    wasserstein_quantiles,
)
from driftline.monitoring.spec import FEW_VALUES
from driftline.profiling.bins import NumericBins
from driftline.profiling.types import CategoricalProfile, ColumnProfile, NumericProfile

WASSERSTEIN_MIN_NORM = 1e-3  # floor of the reference std dividing Wasserstein-1 (as Evidently)
# A quantile grid for profiles used in drift: Wasserstein-1 from quantiles is as fine as this grid.
DRIFT_QUANTILES: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(1, 100))

DISTANCE_METRICS = ("psi", "js_distance", "wasserstein_norm")
PVALUE_METRICS = ("ks_pvalue", "chi2_pvalue")


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
