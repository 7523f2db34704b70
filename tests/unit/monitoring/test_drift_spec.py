"""Method selection, thresholds, config → spec, and the dataset-level error rates over many seeds (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from driftline.monitoring.comparison import compare
from driftline.monitoring.drift import dataset_drift, drift_by_column
from driftline.monitoring.spec import ColumnDriftSpec, DriftConfig, DriftSpec, DriftSpecError
from driftline.monitoring.thresholds import calibrate_thresholds
from driftline.profiling.types import DatasetProfile

from .oracles import categorical_profile, numeric_profile, quantile_bins

LEVELS = ["a", "b", "c", "d", "e"]
P_LEVELS = [0.35, 0.25, 0.2, 0.12, 0.08]


def make_profiles(rng: np.random.Generator, n_ref: int, n_cur: int, shift: dict[str, float] | None = None,
                  edges: dict[str, tuple[float, ...]] | None = None) -> tuple[DatasetProfile, DatasetProfile, dict]:
    """8 numeric + 4 categorical columns; ``shift`` moves a numeric mean (σ units) or level probabilities."""
    shift = shift or {}
    edges = dict(edges or {})
    ref, cur = {}, {}
    for i in range(8):
        name = f"n{i}"
        a, b = rng.normal(0, 1, n_ref), rng.normal(shift.get(name, 0.0), 1, n_cur)
        edges.setdefault(name, quantile_bins(a))
        ref[name], cur[name] = numeric_profile(name, a, edges[name]), numeric_profile(name, b, edges[name])
    for i in range(4):
        name = f"c{i}"
        p_cur = np.array(P_LEVELS)
        if name in shift:
            p_cur = p_cur + shift[name] * np.array([-1, 0, 0, 0, 1])
        a, b = rng.choice(LEVELS, n_ref, p=P_LEVELS), rng.choice(LEVELS, n_cur, p=p_cur / p_cur.sum())
        ref[name], cur[name] = categorical_profile(name, list(a), LEVELS), categorical_profile(name, list(b), LEVELS)
    return DatasetProfile(n_ref, ref), DatasetProfile(n_cur, cur), edges


def test_config_slice_becomes_a_spec() -> None:
    cfg = DriftConfig(psi_threshold=0.25, min_rows=50, numeric_method="psi",
                      columns={"age": {"method": "ks", "threshold": 0.01}})
    spec = DriftSpec.from_config(cfg)
    assert spec.psi_threshold == 0.25 and spec.min_rows == 50 and spec.numeric_method == "psi"
    assert spec.columns == {"age": ColumnDriftSpec("ks", 0.01)}
    assert spec.method_for("age", "numeric", 10_000, 10_000, 11) == "ks"
    assert spec.threshold_for("age", "ks_pvalue", "ks") == 0.01
    assert spec.threshold_for("age", "psi", "ks") == 0.25          # the override is for the decision metric only
    assert spec.method_for("other", "numeric", 10, 10, 11) == "psi"


def test_config_rejects_ambiguous_column_thresholds() -> None:
    with pytest.raises(ValidationError, match="expected an explicit method"):
        DriftConfig(columns={"age": {"threshold": 0.2}})
    with pytest.raises(ValidationError, match=r"expected a p-value level in \(0, 1\) for ks, found 2.0"):
        DriftConfig(columns={"age": {"method": "ks", "threshold": 2}})
    with pytest.raises(ValidationError):
        DriftConfig(categorical_method="wasserstein")


@pytest.mark.parametrize(("kind", "n_ref", "n_cur", "edges", "expected"), [
    ("numeric", 800, 5000, 11, "ks"),          # the smaller side decides: a 800-row window → test
    ("numeric", 5000, 5000, 11, "wasserstein"),
    ("numeric", 800, 800, 5, "chi2"),          # ≤ 5 distinct edges: discrete
    ("numeric", 5000, 5000, 4, "js"),
    ("categorical", 1000, 1000, 0, "chi2"),
    ("categorical", 1001, 1001, 0, "js"),
])
def test_auto_method(kind, n_ref, n_cur, edges, expected) -> None:
    assert DriftSpec().method_for("v", kind, n_ref, n_cur, edges) == expected


def test_wrong_method_for_a_categorical_column() -> None:
    spec = DriftSpec(columns={"plan": ColumnDriftSpec("wasserstein")})
    with pytest.raises(DriftSpecError, match=r"plan: expected a categorical drift method \(chi2, js, psi\), found wasserstein"):
        spec.method_for("plan", "categorical", 10, 10, 3)


def test_no_drift_false_alarm_rate_is_controlled_and_shifts_are_detected() -> None:
    """Small samples (p-value tests + BH): dataset false alarms stay ≤ the FDR level; known shifts are found."""
    spec = DriftSpec()
    rng = np.random.default_rng(2024)
    seeds, alarms, found, clean_flags = 200, 0, 0, 0
    edges = None
    for _ in range(seeds):
        ref, cur, edges = make_profiles(rng, 600, 600, edges=edges)
        res = dataset_drift(ref, cur, spec)
        assert {c.method for c in res.columns} == {"ks", "chi2"}
        alarms += res.drifted > 0
        ref, cur, _ = make_profiles(rng, 600, 600, shift={"n0": 0.4, "c0": 0.1}, edges=edges)
        by = drift_by_column(dataset_drift(ref, cur, spec))
        found += by["n0"].drifted and by["c0"].drifted
        clean_flags += sum(by[f"n{i}"].drifted for i in range(1, 8))
    # under the global null BH controls the family-wise rate at the FDR level (0.05); binned KS is conservative
    assert alarms / seeds <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / seeds)
    assert found / seeds >= 0.95
    assert clean_flags / (7 * seeds) <= 0.05


def test_large_samples_use_distances_without_false_alarms() -> None:
    rng = np.random.default_rng(5)
    ref, cur, edges = make_profiles(rng, 20_000, 20_000)
    res = dataset_drift(ref, cur, DriftSpec())
    assert {c.method for c in res.columns} == {"wasserstein", "js"} and res.drifted == 0 and res.status == "ok"
    ref, cur, _ = make_profiles(rng, 20_000, 20_000, shift={f"n{i}": 0.3 for i in range(6)}, edges=edges)
    res = dataset_drift(ref, cur, DriftSpec())
    assert res.drifted == 6 and res.drift_share == 0.5 and res.status == "alert"   # ≥ share, as Evidently


def test_fdr_demotes_a_lone_marginal_p_value_to_warn() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):   # find a null draw with one raw p < 0.05 that BH does not reject
        ref, cur, _ = make_profiles(rng, 500, 500)
        res = dataset_drift(ref, cur, DriftSpec())
        warned = [c for c in res.columns if c.status == "warn"]
        if warned:
            c = warned[0]
            assert c.decision_value < 0.05 < c.pvalue_adjusted and c.drifted is False
            assert res.status == "ok" and res.drifted == 0
            return
    pytest.fail("expected at least one marginal raw p-value in 300 null draws")


def test_calibration_is_mean_plus_k_sigma_over_chunks() -> None:
    rng = np.random.default_rng(3)
    ref, _, edges = make_profiles(rng, 6000, 10)
    chunks = [make_profiles(rng, 1000, 10, edges=edges)[0] for _ in range(8)]
    cal = {(c.column, c.metric): c for c in calibrate_thresholds(ref, chunks, k=2.5, min_rows=100)}
    values = [compare(ref.columns["n3"], ch.columns["n3"]).js_distance for ch in chunks]
    got = cal[("n3", "js_distance")]
    assert got.threshold == pytest.approx(np.mean(values) + 2.5 * np.std(values, ddof=1), rel=1e-12)
    assert got.chunks == 8 and ("c1", "wasserstein_norm") not in cal     # no Wasserstein for categoricals
    assert calibrate_thresholds(ref, chunks[:1], k=3, min_rows=100) == ()  # < 2 chunks: static thresholds


def test_reference_dates_are_cut_into_contiguous_runs_of_whole_days() -> None:
    import datetime as dt

    from driftline.monitoring.calibration import chunk_of_dates

    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(14)]
    got = chunk_of_dates([*reversed(days), days[3]], 3)                  # order and repeats do not matter
    assert [got[d] for d in days] == [0] * 5 + [1] * 5 + [2] * 4
    assert chunk_of_dates(days[:2], 10) == {days[0]: 0, days[1]: 1}     # fewer dates than chunks: one per date
    assert chunk_of_dates([], 3) == {}


def test_calibration_rows_round_trip_to_the_thresholds_the_spec_uses() -> None:
    from driftline.monitoring.calibration import calibration_rows, thresholds_from_rows
    from driftline.monitoring.thresholds import CalibratedThreshold
    from driftline.profiling.types import DatasetProfile, NumericProfile

    prof = DatasetProfile(10, {"x": NumericProfile("x", 10, 0, 0, 0, 10, 0.0, 1.0, -1.0, 1.0, (), (), (), 0, 0)})
    cal = [CalibratedThreshold("x", "psi", 0.02, 0.01, 3.0, 4, 0.05)]
    rows = calibration_rows(cal, prof)
    assert [(r["stat"], r["category"], r["bin"], r["value"], r["kind"]) for r in rows] == [
        ("calibrated_threshold", "psi", 4, 0.05, "numeric"), ("calibration_mean", "psi", 4, 0.02, "numeric"),
        ("calibration_std", "psi", 4, 0.01, "numeric")]
    assert thresholds_from_rows(rows) == {("x", "psi"): 0.05}
