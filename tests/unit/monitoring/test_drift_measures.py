"""Each drift measure on cell counts against an independent oracle (scipy, numpy) on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftline.monitoring.measures import (
    PSI_EPSILON,
    DriftError,
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
from tests.unit.monitoring.oracles import offset_sums, quantile_bins

RNG = np.random.default_rng(7)
REF = np.array([120, 340, 0, 95, 445, 0, 7])
CUR = np.array([80, 300, 25, 140, 400, 0, 0])


def test_psi_against_numpy_with_explicit_smoothing() -> None:
    p, q = REF / REF.sum(), CUR / CUR.sum()
    p_s, q_s = np.where(p == 0, PSI_EPSILON, p), np.where(q == 0, PSI_EPSILON, q)
    expected = float(np.sum((q_s - p_s) * np.log(q_s / p_s)))
    assert psi(REF, CUR) == pytest.approx(expected, abs=1e-15)
    # a cell seen on one side only stays finite: (q − ε)·ln(q / ε)
    assert psi([100, 0], [50, 50]) == pytest.approx((0.5 - 1) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4))
    assert psi(REF, REF) == 0.0


def test_js_distance_is_scipy_base_2() -> None:
    assert js_distance(REF, CUR) == pytest.approx(jensenshannon(REF / REF.sum(), CUR / CUR.sum(), base=2), abs=1e-15)
    assert js_distance([1, 0], [0, 1]) == 1.0 and js_distance(REF, REF * 3) == 0.0


def test_total_variation_and_linf() -> None:
    p, q = REF / REF.sum(), CUR / CUR.sum()
    assert total_variation(REF, CUR) == pytest.approx(0.5 * np.abs(p - q).sum(), abs=1e-15)
    assert linf(REF, CUR) == pytest.approx(np.abs(p - q).max(), abs=1e-15)


@pytest.mark.parametrize(("ref", "cur"), [
    (REF, CUR),                                   # empty-on-both cell dropped, dof = 5
    ([30, 70], [45, 55]),                         # dof = 1: Yates' correction, as scipy
    ([500, 300, 200, 0], [480, 310, 190, 20]),    # unseen category: finite, no goodness-of-fit infinity
    ([3, 1, 0], [0, 2, 9]),
])
def test_chi2_is_chi2_contingency(ref, cur) -> None:
    table = np.array([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table)
    got = chi2_2xk(ref, cur)
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert got.dof == expected.dof


def test_chi2_degenerate_tables() -> None:
    assert chi2_2xk([10, 0], [4, 0]) == chi2_2xk([10], [4])
    assert (chi2_2xk([10], [4]).statistic, chi2_2xk([10], [4]).pvalue) == (0.0, 1.0)
    assert math.isnan(chi2_2xk([0, 0], [3, 4]).pvalue)


def test_ks_binned_is_exact_when_cells_hold_one_value_each() -> None:
    # integer data, one cell per value: the CDF at cell boundaries is the whole CDF
    a, b = RNG.integers(0, 8, 700), RNG.integers(0, 9, 500)
    ca, cb = np.bincount(a, minlength=10), np.bincount(b, minlength=10)
    exact = stats.ks_2samp(a, b, method="asymp")
    got = ks_binned(ca, cb)
    assert got.statistic == pytest.approx(exact.statistic, abs=1e-15)
    assert got.pvalue == pytest.approx(exact.pvalue, rel=1e-12)
    assert got.statistic <= got.upper


def test_ks_binned_brackets_the_exact_statistic_on_continuous_data() -> None:
    a, b = RNG.normal(0, 1, 3000), RNG.normal(0.15, 1.1, 2000)
    edges = np.quantile(a, np.linspace(0, 1, 11))
    cells = [np.concatenate(([(x < edges[0]).sum()], np.histogram(x[(x >= edges[0]) & (x <= edges[-1])], edges)[0],
                             [(x > edges[-1]).sum()])) for x in (a, b)]
    exact = stats.ks_2samp(a, b, method="asymp")
    got = ks_binned(*cells)
    assert got.statistic <= exact.statistic <= got.upper
    assert got.pvalue >= exact.pvalue            # from the lower bound: conservative
    mass = max(c.max() / c.sum() for c in cells)
    assert got.upper - got.statistic <= mass + 1e-12   # the bound is at most one cell mass wide


def test_wasserstein_from_quantiles_brackets_scipy() -> None:
    a, b = RNG.normal(0, 1, 5000), RNG.gamma(2.0, 0.7, 4000)
    probs = np.linspace(0, 1, 101)
    qa, qb = (np.quantile(x, probs, method="inverted_cdf") for x in (a, b))
    got = wasserstein_quantiles(probs, qa, qb)
    exact = stats.wasserstein_distance(a, b)
    assert got.lower <= exact <= got.upper
    assert got.value == pytest.approx(exact, rel=0.02)
    shift = wasserstein_quantiles(probs, qa, qa + 0.3)   # a pure shift: the interpolated value is exact
    assert shift.value == pytest.approx(0.3, abs=1e-12) and shift.lower <= 0.3 <= shift.upper


def cell_stats(x: np.ndarray, edges) -> tuple[list[int], tuple[float, ...]]:
    """Finite counts per cell (underflow, bins, overflow) and offset sums, by numpy."""
    o = offset_sums(x, edges)
    e = np.asarray(edges)
    inside = x[(x >= e[0]) & (x <= e[-1])]
    counts = np.histogram(inside, bins=e)[0].tolist()
    return [o["underflow_finite"], *counts, o["overflow_finite"]], o["offset_sums"]


@pytest.mark.parametrize(("name", "bins"), [(n, b) for n in ("shift", "scale", "gamma", "bimodal", "far", "noise")
                                            for b in (5, 10, 20)])
def test_wasserstein_from_cells_brackets_scipy(name: str, bins: int) -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(0, 1, 4000)
    b = {"shift": lambda: rng.normal(0.3, 1, 3000), "scale": lambda: rng.normal(0, 1.6, 3000),
         "gamma": lambda: rng.gamma(2.0, 0.7, 3000),
         "bimodal": lambda: np.r_[rng.normal(-1, 0.4, 1500), rng.normal(1.4, 0.4, 1500)],
         "far": lambda: rng.normal(12, 2, 3000), "noise": lambda: rng.normal(0, 1, 3000)}[name]()
    e = quantile_bins(a, bins)
    got = wasserstein_cells(e, *cell_stats(a, e), *cell_stats(b, e))
    exact = stats.wasserstein_distance(a, b)
    assert got.lower - 1e-12 <= exact <= got.upper + 1e-12          # a rigorous bracket
    assert got.lower <= got.value <= got.upper
    if name in ("shift", "scale", "gamma", "far"):   # one sign change at most: the value is (nearly) exact
        assert got.value == pytest.approx(exact, rel=0.01)
    if name == "far":                                 # all current mass beyond the reference: exact bracket
        assert got.lower == pytest.approx(exact, rel=1e-12) and got.upper == pytest.approx(exact, rel=1e-12)


def test_wasserstein_from_cells_exact_for_a_pure_shift_and_degenerate_cases() -> None:
    a = RNG.normal(0, 1, 3000)
    e = quantile_bins(a, 10)
    shifted = wasserstein_cells(e, *cell_stats(a, e), *cell_stats(a + 0.25, e))   # F − G ≥ 0 everywhere
    assert shifted.value == pytest.approx(0.25, rel=1e-12) and shifted.lower == pytest.approx(0.25, rel=1e-12)
    same = wasserstein_cells(e, *cell_stats(a, e), *cell_stats(a, e))
    assert (same.value, same.lower) == (0.0, 0.0)       # (upper > 0: cells cannot tell how values sit inside)
    const = (2.0, 2.0)                                  # a constant reference: one zero-width bin
    moved = np.full(50, 2.5)
    w = wasserstein_cells(const, *cell_stats(np.full(80, 2.0), const), *cell_stats(moved, const))
    assert (w.value, w.lower, w.upper) == pytest.approx((0.5, 0.5, 0.5), rel=1e-12)
    empty = wasserstein_cells(e, *cell_stats(a, e), [0] * (len(e) + 1), [0.0] * (len(e) + 1))
    assert math.isnan(empty.value)


def test_benjamini_hochberg_is_scipy() -> None:
    p = RNG.uniform(0, 0.2, 25)
    p[:3] = [1e-6, 0.004, 0.004]   # ties
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"), rel=1e-14)
    assert benjamini_hochberg([]) == []


def test_bad_counts_are_one_line_errors() -> None:
    with pytest.raises(DriftError, match="expected the same number of cells on both sides, found 2 vs 3"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(DriftError, match="non-negative counts"):
        js_distance([1, -2], [1, 2])


def test_empty_side_gives_nan_not_zero() -> None:
    for fn in (psi, js_distance, total_variation, linf):
        assert math.isnan(fn([0, 0], [1, 2]))
    assert math.isnan(ks_binned([0, 0], [1, 2]).pvalue)


counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_properties(data) -> None:
    ref = data.draw(counts.filter(lambda c: sum(c) > 0))
    cur = data.draw(st.lists(st.integers(0, 1000), min_size=len(ref), max_size=len(ref)).filter(lambda c: sum(c) > 0))
    assert psi(ref, cur) >= 0 and psi(ref, ref) == 0
    assert 0 <= js_distance(ref, cur) <= 1
    assert js_distance(ref, cur) == pytest.approx(js_distance(cur, ref), abs=1e-12)
    assert js_distance(ref, [3 * c for c in ref]) == pytest.approx(0, abs=1e-7)
    assert linf(ref, cur) <= total_variation(ref, cur) + 1e-12 <= 1 + 1e-12
    ks = ks_binned(ref, cur)
    assert 0 <= ks.statistic <= ks.upper <= 1
    if sum(ref) == sum(cur) == 1:   # one value a side: n·m/(n+m) rounds to 0, no p-value (as scipy's asymp)
        assert math.isnan(ks.pvalue)
        with np.errstate(divide="ignore"):
            assert math.isnan(stats.ks_2samp([0.0], [float(ks.statistic > 0)], method="asymp").pvalue)
    else:
        assert 0 <= ks.pvalue <= 1
    assert ks.statistic <= total_variation(ref, cur) + 1e-12
    chi = chi2_2xk(ref, cur)
    assert chi.statistic >= 0 and 0 <= chi.pvalue <= 1


def test_ks_has_no_pvalue_with_one_value_a_side() -> None:
    # n·m/(n+m) = 0.5 rounds to 0 effective observations: scipy's asymptotic p-value is NaN too
    assert math.isnan(ks_binned([0, 1], [0, 1]).pvalue) and math.isnan(ks_binned([1, 0], [0, 1]).pvalue)
    assert ks_binned([1, 0], [0, 2]).pvalue == pytest.approx(stats.ks_2samp([0.0], [1.0, 1.0], method="asymp").pvalue)
