"""Drift from real Spark profiles against scipy/numpy/Evidently on the same raw data; edge cases R8, R12–R15."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftline.monitoring.comparison import DRIFT_QUANTILES, cells, compare
from driftline.monitoring.drift import DATASET, dataset_drift, drift_by_column, drift_rows
from driftline.monitoring.measures import DriftError, psi
from driftline.monitoring.metrics import (
    MetricsContext,
    monitor_metrics_frame_rows,
)
from driftline.monitoring.spec import DriftSpec
from driftline.monitoring.thresholds import calibrate_thresholds, threshold_map
from driftline.profiling.bins import fit_reference_bins
from driftline.profiling.profile import profile, profile_by
from driftline.tables.contracts import MONITOR_METRICS

from .oracles import numeric_profile

SCHEMA = StructType([
    StructField("id", LongType(), False),
    StructField("x", DoubleType()),
    StructField("k", DoubleType()),
    StructField("const", DoubleType()),
    StructField("empty", DoubleType()),
    StructField("c", StringType()),
    StructField("c_top2", StringType()),
])
NUMERIC = ["x", "k", "const", "empty"]
COLUMNS = [*NUMERIC, "c", "c_top2"]
LEVELS = ["a", "b", "c", "d", "e", "f"]


def make_data(seed: int, n: int, *, shift: float = 0.0, const: float = 3.5, unseen: float = 0.0,
              dirty: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    if dirty:
        x[:7] = np.nan
        x[7:10] = math.inf
        x[10:12] = -math.inf
    k = rng.choice(5, n, p=[0.1, 0.2, 0.4, 0.2, 0.1] if not shift else [0.15, 0.25, 0.3, 0.2, 0.1]).astype(float)
    c = rng.choice(LEVELS, n, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05]).astype(object)
    if unseen:
        c[rng.random(n) < unseen] = "zz"
    if dirty:
        c[20:30] = None
    return pd.DataFrame({"id": np.arange(n), "x": x, "k": k, "const": const, "empty": np.nan, "c": c, "c_top2": c})


def to_spark(spark, pdf: pd.DataFrame, null_x: int = 5):
    n = len(pdf)
    rows = [
        (int(r.id), None if i >= n - null_x else float(r.x), float(r.k), float(r.const), None, r.c, r.c_top2)
        for i, r in enumerate(pdf.itertuples(index=False))
    ]
    return spark.createDataFrame(rows, SCHEMA).repartition(3)


def raw_cells(values: np.ndarray, edges) -> np.ndarray:
    v = values[~np.isnan(values)]
    e = np.asarray(edges)
    inside = v[(v >= e[0]) & (v <= e[-1])]
    return np.concatenate(([(v < e[0]).sum()], np.histogram(inside, e)[0], [(v > e[-1]).sum()]))


@pytest.fixture(scope="module")
def ref_pdf() -> pd.DataFrame:
    return make_data(1, 3000)


@pytest.fixture(scope="module")
def ref_df(spark, ref_pdf):
    return to_spark(spark, ref_pdf)


@pytest.fixture(scope="module")
def bins(ref_df):
    b = fit_reference_bins(ref_df, NUMERIC, ["c"], bins=10, top_k=10)
    b.update(fit_reference_bins(ref_df, (), ["c_top2"], top_k=2, tail_buckets=0))  # no membership filter
    return b


@pytest.fixture(scope="module")
def ref_prof(ref_df, bins):
    return profile(ref_df, COLUMNS, bins, quantiles=DRIFT_QUANTILES)


@pytest.fixture(scope="module")
def cur_pdf() -> pd.DataFrame:
    return make_data(2, 2500, shift=0.3, unseen=0.04)


@pytest.fixture(scope="module")
def cur_prof(spark, cur_pdf, bins):
    return profile(to_spark(spark, cur_pdf, null_x=9), COLUMNS, bins, quantiles=DRIFT_QUANTILES)


def x_values(pdf: pd.DataFrame, null_x: int) -> np.ndarray:
    return pdf["x"].to_numpy()[: len(pdf) - null_x]


def test_numeric_measures_match_scipy_on_the_raw_data(ref_pdf, cur_pdf, ref_prof, cur_prof, bins) -> None:
    m = compare(ref_prof.columns["x"], cur_prof.columns["x"])
    a, b = x_values(ref_pdf, 5), x_values(cur_pdf, 9)
    ca, cb = raw_cells(a, bins["x"].edges), raw_cells(b, bins["x"].edges)   # numpy cells, ±inf in the outer ones
    assert list(cells(ref_prof.columns["x"])) == ca.tolist() and list(cells(cur_prof.columns["x"])) == cb.tolist()
    assert (m.n_reference, m.n_current) == (3000 - 5 - 7, 2500 - 9 - 7)
    pa, pb = ca / ca.sum(), cb / cb.sum()
    assert m.js_distance == pytest.approx(jensenshannon(pa, pb, base=2), abs=1e-12)
    assert m.total_variation == pytest.approx(0.5 * np.abs(pa - pb).sum(), abs=1e-12)
    assert m.linf == pytest.approx(np.abs(pa - pb).max(), abs=1e-12)
    pa_s, pb_s = np.where(pa == 0, 1e-4, pa), np.where(pb == 0, 1e-4, pb)
    assert m.psi == pytest.approx(np.sum((pb_s - pa_s) * np.log(pb_s / pa_s)), abs=1e-12)
    chi = stats.chi2_contingency(np.array([ca, cb])[:, (ca + cb) > 0])
    assert (m.chi2_statistic, m.chi2_pvalue) == pytest.approx((chi.statistic, chi.pvalue), rel=1e-9)
    # KS: the binned statistic is a lower bound of scipy's exact one, within one cell mass
    ks = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)], method="asymp")
    assert m.ks_statistic <= ks.statistic <= m.ks_statistic_upper
    assert m.ks_pvalue >= ks.pvalue
    # Wasserstein-1 over the finite values, normalized by the reference population std (as Evidently)
    fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
    norm = np.std(fa)
    exact = stats.wasserstein_distance(fa, fb) / norm
    slack = 2e-3 * (fa.max() - fa.min()) / norm      # percentile_approx rank error (accuracy 10⁴)
    assert m.wasserstein_lower / norm - slack <= exact <= m.wasserstein_upper / norm + slack
    assert m.wasserstein_norm == pytest.approx(exact, rel=0.03)


def test_categorical_measures_and_unseen_share(cur_pdf, ref_pdf, ref_prof, cur_prof, bins) -> None:
    m = compare(ref_prof.columns["c"], cur_prof.columns["c"])
    vc_a, vc_b = ref_pdf["c"].value_counts(), cur_pdf["c"].value_counts()
    cats = bins["c"].categories
    assert set(cats) == set(LEVELS)                      # top_k ≥ cardinality: unseen share is exact
    ca = np.array([vc_a.get(k, 0) for k in cats] + [0])
    cb = np.array([vc_b.get(k, 0) for k in cats] + [vc_b.get("zz", 0)])
    assert m.js_distance == pytest.approx(jensenshannon(ca / ca.sum(), cb / cb.sum(), base=2), abs=1e-12)
    chi = stats.chi2_contingency(np.array([ca, cb]))
    assert m.chi2_pvalue == pytest.approx(chi.pvalue, rel=1e-9) and math.isfinite(m.psi)
    assert m.unseen_share_exact and m.unseen_share == pytest.approx(vc_b["zz"] / vc_b.sum(), abs=1e-15)
    top2 = compare(ref_prof.columns["c_top2"], cur_prof.columns["c_top2"])  # "other" mixes rare and new levels
    assert not top2.unseen_share_exact and top2.unseen_share > m.unseen_share
    names = {r["metric"] for r in drift_rows(dataset_drift(ref_prof, cur_prof, DriftSpec()))
             if r["column"] == "c_top2"}
    assert "unseen_share_upper" in names and "unseen_share" not in names


def test_against_evidently_on_the_same_data_and_bins(ref_pdf, cur_pdf, ref_prof, cur_prof, bins) -> None:
    """Evidently's own stattests: identical bins (cell labels as categories) → identical PSI and JS.

    Differences, documented in docs/monitoring.md: Evidently bins numeric data with Sturges edges on
    reference+current (we use reference quantile edges), uses natural-log JS (ours base 2: ×1/√ln 2),
    and its chi-square is goodness-of-fit (infinite with an unseen category; ours is 2×K homogeneity).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    a, b = x_values(ref_pdf, 5), x_values(cur_pdf, 9)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    edges = np.asarray(bins["x"].edges)

    def label(v: np.ndarray) -> np.ndarray:   # the cell of each value, as a category
        idx = np.where(v < edges[0], -1, np.where(v > edges[-1], len(edges) - 1,
                       np.minimum(np.searchsorted(edges, v, side="right") - 1, len(edges) - 2)))
        return np.array([f"cell{i}" for i in idx], dtype=object)

    fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
    ev = {}
    for col, r_vals, c_vals in (("xcell", label(a), label(b)),
                                ("c", ref_pdf["c"].dropna().to_numpy(), cur_pdf["c"].dropna().to_numpy())):
        dd = DataDefinition(categorical_columns=[col])
        snap = Report([ValueDrift(column=col, method=meth) for meth in ("psi", "jensenshannon")]).run(
            Dataset.from_pandas(pd.DataFrame({col: c_vals}), data_definition=dd),
            Dataset.from_pandas(pd.DataFrame({col: r_vals}), data_definition=dd))
        ev.update({(col, m["config"]["method"]): float(m["value"]) for m in snap.dict()["metrics"]})
    ours = {"xcell": compare(ref_prof.columns["x"], cur_prof.columns["x"]),
            "c": compare(ref_prof.columns["c"], cur_prof.columns["c"])}
    for col, m in ours.items():
        assert m.psi == pytest.approx(ev[(col, "psi")], abs=1e-12)
        assert m.js_distance == pytest.approx(ev[(col, "jensenshannon")] / math.sqrt(math.log(2)), abs=1e-12)

    num = pd.DataFrame({"x": fa}), pd.DataFrame({"x": fb})
    ddn = DataDefinition(numerical_columns=["x"])
    snap = Report([ValueDrift(column="x", method="wasserstein")]).run(
        Dataset.from_pandas(num[1], data_definition=ddn), Dataset.from_pandas(num[0], data_definition=ddn))
    ev_w = float(snap.dict()["metrics"][0]["value"])
    mx = ours["xcell"]
    assert ev_w == pytest.approx(stats.wasserstein_distance(fa, fb) / np.std(fa), rel=1e-12)
    assert mx.wasserstein_norm == pytest.approx(ev_w, rel=0.03)

    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
    from evidently.legacy.core import ColumnType

    r, c = pd.Series(["a"] * 50 + ["b"] * 50), pd.Series(["a"] * 50 + ["b"] * 49 + ["new"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ev_p, _ = _chi_stat_test(r, c, ColumnType.Categorical, 0.05)
    ours_chi = compare(*[_cat(s) for s in (r, c)])
    assert ev_p == 0.0                               # goodness of fit: one new value → p = 0
    assert ours_chi.chi2_pvalue == pytest.approx(stats.chi2_contingency([[50, 50, 0], [50, 49, 1]]).pvalue)
    assert ours_chi.chi2_pvalue > 0.3


def _cat(s: pd.Series):
    from .oracles import categorical_profile

    return categorical_profile("v", list(s), ["a", "b"])


def test_auto_methods_match_evidentlys_choice(ref_prof, cur_prof) -> None:
    by = drift_by_column(dataset_drift(ref_prof, cur_prof, DriftSpec()))
    assert (by["x"].method, by["k"].method, by["c"].method) == ("wasserstein", "js", "js")   # > 1000 values
    small = DriftSpec(small_sample_rows=5000)
    by = drift_by_column(dataset_drift(ref_prof, cur_prof, small))
    assert (by["x"].method, by["k"].method, by["c"].method) == ("ks", "chi2", "chi2")


def test_dataset_verdict_and_rows(ref_prof, cur_prof) -> None:
    result = dataset_drift(ref_prof, cur_prof, DriftSpec())
    by = drift_by_column(result)
    assert by["x"].status == "alert" and by["x"].decision_value == pytest.approx(0.3, abs=0.05)
    assert by["const"].status == "ok" and by["const"].decision_value == 0.0
    assert by["empty"].status == "insufficient_data"
    assert by["empty"].reason == "reference has 0 non-missing values, expected at least 100 (monitoring.drift.min_rows)"
    assert (result.evaluated, result.insufficient) == (5, 1)
    assert result.drift_share == result.drifted / 5
    rows = drift_rows(result)
    verdict = [r for r in rows if r["column"] == DATASET and r["metric"] == "drift_share"]
    assert verdict == [{"column": DATASET, "metric": "drift_share", "value": result.drift_share, "threshold": 0.5,
                        "status": result.status, "method": None, "reason": None, "n_reference": None,
                        "n_current": None}]
    x_rows = {r["metric"]: r for r in rows if r["column"] == "x"}
    assert x_rows["wasserstein_norm"]["status"] == "alert" and x_rows["wasserstein_norm"]["threshold"] == 0.1
    assert x_rows["ks_pvalue"]["threshold"] is None                 # other family: descriptive
    assert x_rows["drift"] == {"column": "x", "metric": "drift", "value": 1.0, "threshold": 0.1, "status": "alert",
                               "method": "wasserstein", "reason": None, "n_reference": 2988, "n_current": 2484}
    assert all(r["status"] == "insufficient_data" for r in rows if r["column"] == "empty")
    for r in rows:                                                    # no NaN and no infinity ever reaches a row
        assert r["value"] is None or math.isfinite(r["value"])


def test_rerun_gives_identical_rows(ref_df, spark, cur_pdf, bins, ref_prof) -> None:
    cur = to_spark(spark, cur_pdf, null_x=9)
    first = drift_rows(dataset_drift(ref_prof, profile(cur, COLUMNS, bins, quantiles=DRIFT_QUANTILES), DriftSpec()))
    again = drift_rows(dataset_drift(ref_prof, profile(cur, COLUMNS, bins, quantiles=DRIFT_QUANTILES), DriftSpec()))
    assert first == again


def test_too_small_and_empty_windows_are_insufficient_data(spark, ref_prof, bins) -> None:
    small = profile(to_spark(spark, make_data(3, 60, shift=3.0)), COLUMNS, bins, quantiles=DRIFT_QUANTILES)  # R15
    empty = profile(to_spark(spark, make_data(3, 0), null_x=0), COLUMNS, bins, quantiles=DRIFT_QUANTILES)    # R8
    for cur, n in ((small, 60 - 5 - 7), (empty, 0)):
        result = dataset_drift(ref_prof, cur, DriftSpec())
        assert result.status == "insufficient_data" and result.drift_share is None and result.drifted == 0
        x = drift_by_column(result)["x"]
        assert x.drifted is None and x.reason.startswith(f"current has {n} non-missing values, expected at least 100")
        assert {r["status"] for r in drift_rows(result) if r["column"] != DATASET} == {"insufficient_data"}


def test_constant_and_out_of_range_current(spark, ref_prof, bins) -> None:
    moved = profile(to_spark(spark, make_data(4, 800, const=4.0)), COLUMNS, bins, quantiles=DRIFT_QUANTILES)
    m = compare(ref_prof.columns["const"], moved.columns["const"])
    assert cells(moved.columns["const"]) == (0, 0, 800) and m.total_variation == 1.0
    assert m.psi == pytest.approx(2 * (1 - 1e-4) * math.log(1 / 1e-4))   # finite with ε-smoothing
    assert m.wasserstein_norm == pytest.approx(0.5 / 1e-3)             # std 0 → Evidently's 1e-3 floor
    assert drift_by_column(dataset_drift(ref_prof, moved, DriftSpec()))["const"].status == "alert"


def test_profile_by_chunks_and_calibration(spark, ref_df, ref_pdf, ref_prof, bins) -> None:
    chunked = ref_df.withColumn("chunk", F.col("id") % 6)
    chunks = profile_by(chunked, "chunk", COLUMNS, bins, quantiles=DRIFT_QUANTILES)
    assert sorted(chunks) == list(range(6))
    one = profile(chunked.filter("chunk = 2"), COLUMNS, bins, quantiles=DRIFT_QUANTILES)
    for name in COLUMNS:   # one grouped pass gives each group's own profile (sums may differ in the last bit)
        a, b = chunks[2].columns[name], one.columns[name]
        assert cells(a) == cells(b) and a.null_count == b.null_count and a.count == b.count
        if name in NUMERIC:
            assert (a.mean, a.std) == pytest.approx((b.mean, b.std), rel=1e-12, nan_ok=True)
            assert a.quantiles == b.quantiles or name == "empty"
    calibrated = {(c.column, c.metric): c for c in calibrate_thresholds(ref_prof, list(chunks.values()), k=3,
                                                                        min_rows=100)}
    assert ("empty", "psi") not in calibrated                        # no usable chunk: static threshold stays
    # oracle: numpy cells of each chunk's raw data, psi by formula, mean + 3·σ
    x = np.where(np.arange(3000) >= 3000 - 5, np.nan, ref_pdf["x"].to_numpy())
    values = [psi(raw_cells(x, bins["x"].edges), raw_cells(x[np.arange(3000) % 6 == i], bins["x"].edges))
              for i in range(6)]
    cal = calibrated[("x", "psi")]
    assert (cal.mean, cal.std, cal.chunks) == pytest.approx((np.mean(values), np.std(values, ddof=1), 6), rel=1e-9)
    assert cal.threshold == pytest.approx(np.mean(values) + 3 * np.std(values, ddof=1), rel=1e-9)
    spec = DriftSpec().with_calibrated(threshold_map(calibrated.values()))
    assert spec.threshold_for("x", "psi", "psi") == cal.threshold
    assert spec.threshold_for("x", "ks_pvalue", "ks") == 0.05        # p-value levels are never calibrated
    # a calibrated threshold then drives the column status
    cur = profile(chunked.filter("chunk = 0"), COLUMNS, bins, quantiles=DRIFT_QUANTILES)
    by = drift_by_column(dataset_drift(ref_prof, cur, DriftSpec(numeric_method="psi").with_calibrated(
        threshold_map(calibrated.values()))))
    assert by["x"].threshold == cal.threshold and by["x"].status == "ok"


def test_monitor_metrics_rows_fit_the_table_schema(spark, ref_prof, cur_prof) -> None:
    ctx = MetricsContext(run_id="r1", run_date=dt.date(2024, 3, 2), model="churn", model_version="3",
                         reference_id="churn/3", window_start=dt.date(2024, 3, 1), window_end=dt.date(2024, 3, 1),
                         created_at=dt.datetime(2024, 3, 2, 3, 0, tzinfo=dt.UTC), config_hash="h", code_version="v")
    rows = monitor_metrics_frame_rows(drift_rows(dataset_drift(ref_prof, cur_prof, DriftSpec())), ctx)
    df = spark.createDataFrame(rows, MONITOR_METRICS.schema())
    assert df.count() == len(rows)
    assert df.select(*MONITOR_METRICS.key).distinct().count() == len(rows)      # one row per key
    statuses = {r["status"] for r in df.select("status").distinct().collect()}
    assert statuses <= {"ok", "warn", "alert", "insufficient_data"}


def test_mismatched_profiles_are_one_line_errors(ref_prof, spark, bins) -> None:
    other = fit_reference_bins(to_spark(spark, make_data(5, 500)), ["x"], (), bins=4)
    cur = profile(to_spark(spark, make_data(5, 500)), ["x"], other)
    with pytest.raises(DriftError, match=r"x: expected the reference bin edges on both sides, found 22 vs 14 edges"):
        compare(ref_prof.columns["x"], cur.columns["x"])
    with pytest.raises(DriftError, match="found none for k, c"):
        dataset_drift(ref_prof, cur, DriftSpec(), columns=["x", "k", "c"])


def test_numpy_profile_agrees_with_spark_profile(ref_pdf, ref_prof, bins) -> None:
    """The pure-number tests build profiles with numpy: the same cells as Spark's."""
    x = x_values(ref_pdf, 5)
    p = numeric_profile("x", x, bins["x"].edges, nulls=5)
    s = ref_prof.columns["x"]
    assert (p.bin_counts, p.underflow, p.overflow, p.count) == (s.bin_counts, s.underflow, s.overflow, s.count)
