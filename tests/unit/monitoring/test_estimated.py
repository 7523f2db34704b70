"""Estimated performance (CBPE) from the window's cell profile, against independent oracles: a row-wise numpy
computation with each row's calibrated probability (exact), the realized metrics of labels drawn from a fixed
P(y | x) under covariate shift (sklearn; the research tolerances), the alert band on unshifted windows, and
the storage round trip through ``reference_profiles`` next to the profile rows it must not disturb."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from pyspark.sql.types import DoubleType, StructField, StructType
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from driftline.monitoring.calibration import thresholds_from_rows
from driftline.monitoring.estimated import (
    CELL_COLUMN,
    ESTIMATED_METRICS,
    PREFIX,
    SIGMA_CAL,
    CellTable,
    EstimationError,
    comparison_rows,
    estimate,
    estimated_rows,
    fit_cell_table,
)
from driftline.monitoring.estimated_store import cell_rows, cell_table_from_rows
from driftline.monitoring.performance import PERFORMANCE
from driftline.profiling.bins import bins_from_rows
from driftline.profiling.profile import profile, profile_rows
from driftline.profiling.stored import THRESHOLD_STAT, profile_from_rows
from driftline.profiling.types import NumericProfile
from tests.unit.monitoring.arrow_profiles import numeric_bins, profile_arrays

T = 0.5
W = np.array([1.2, -0.8, 0.6, 0.4, 0.0, 0.0])
U = np.array([1.0, 0.5, 0.0, 0.0, 1.0, 0.0]) / 1.5


def draw(rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0, b0: float = -1.0,
         ties: bool = False, clip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of a calibrated-in-rank model: P(y | x) logistic and fixed, the score a monotone
    (miscalibrated) map of the true logit, so P(y | score) holds under a shift of x (``shift``, ``scale``)."""
    x = rng.standard_normal((n, 6)) * scale
    x[:, 0] *= 1 + 0.5 * shift
    x[:, 2] *= 1 - 0.25 * shift
    x += shift * U
    z = x @ W + b0
    if ties:  # the model sees z on a grid of 0.5 (≈ 20 distinct scores, 0.5 = T among them): P(y | score) holds
        z = np.round(2 * z) / 2
    s = 1 / (1 + np.exp(-(0.6 * (z - b0 - 1.5))))  # z = b0 + 1.5 − 2 = −0.5 when b0 = −1 is a grid point: s = T
    if clip:  # the model saturates: z clipped to [−4, 2] (P(y | score) holds), scores exactly 0 and 1 (≈ 3 % each)
        z = np.clip(z, -4.0, 2.0)
        s = (z + 4.0) / 6.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return s, y


def window_profile(table: CellTable, scores: np.ndarray) -> NumericProfile:
    """The window's profile of CELL_COLUMN through the profile pass's own Arrow fold (no Spark)."""
    prof = profile_arrays({CELL_COLUMN: scores}, {CELL_COLUMN: table.bins()}).columns[CELL_COLUMN]
    assert isinstance(prof, NumericProfile)
    return prof


def sk_realized(s: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = (s >= T).astype(int)
    return dict(auc=roc_auc_score(y, s), precision=precision_score(y, pred, zero_division=np.nan),
                recall=recall_score(y, pred), f1=f1_score(y, pred), accuracy=accuracy_score(y, pred),
                brier=float(np.mean((s - y) ** 2)))


# --------------------------------------------------------------------------- exact: cells vs rows


def rowwise(table: CellTable, s: np.ndarray) -> dict[str, float]:
    """The estimate row by row: each row's p = c of its bin (below 0: the first, above 1: the last), all pairs
    of rows for AUC by raw score (ties ½, a row with itself included), Brier E(s − y)² = s² − 2sp + p."""
    e = np.asarray(table.edges)
    c = np.asarray(table.probability)
    s = s[~np.isnan(s)]
    p = c[np.clip(np.searchsorted(e, s, side="right") - 1, 0, len(c) - 1)]
    pred = s >= table.threshold
    tp, fp, fn, tn = p[pred].sum(), (1 - p)[pred].sum(), p[~pred].sum(), (1 - p)[~pred].sum()
    above = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    auc = p @ above @ (1 - p) / (p.sum() * (1 - p).sum())
    f = np.isfinite(s)
    brier = np.mean(s[f] ** 2 - 2 * s[f] * p[f] + p[f])
    return dict(auc=auc, precision=tp / (tp + fp), recall=tp / (tp + fn), f1=2 * tp / (2 * tp + fp + fn),
                accuracy=(tp + tn) / len(s), brier=brier, expected_tp=tp, expected_fp=fp, expected_fn=fn,
                expected_tn=tn)


def awkward_window(rng: np.random.Generator, n: int) -> np.ndarray:
    s, _ = draw(rng, n, shift=1.0)
    s[:40] = T
    s[40:60] = 0.0
    s[60:80] = 1.0
    s[80:85] = [-0.2, 1.3, np.inf, -np.inf, math.nextafter(1.0, 2.0)]
    s[85:90] = np.nan
    return s


@pytest.fixture(scope="module")
def table() -> CellTable:
    rng = np.random.default_rng(7)
    s, y = draw(rng, 6000)
    t = fit_cell_table(s, y, None, T, cells=100)
    assert t is not None
    return t


def test_estimate_from_the_spark_profile_equals_the_row_wise_computation(spark, table) -> None:
    s = awkward_window(np.random.default_rng(8), 2000)
    rows = [(None if i >= 1995 else float(v),) for i, v in enumerate(s)]  # + SQL nulls: in no cell
    df = spark.createDataFrame(rows, StructType([StructField(CELL_COLUMN, DoubleType())])).repartition(3)
    prof = profile(df, [CELL_COLUMN], {CELL_COLUMN: table.bins()}, quantiles=(), distinct=False).columns[CELL_COLUMN]
    assert isinstance(prof, NumericProfile)
    got, want = estimate(table, prof), rowwise(table, s[:1995])
    for m in ("precision", "recall", "f1", "accuracy", "expected_tp", "expected_fp", "expected_fn", "expected_tn"):
        assert got[m] == pytest.approx(want[m], rel=1e-9, abs=1e-9), m
    assert got["auc"] == pytest.approx(want["auc"], abs=1e-12)
    assert got["brier"] == pytest.approx(want["brier"], abs=1e-12)
    assert got["rows"] == 1995 - 5  # NaN and null in no cell
    assert estimate(table, window_profile(table, s[:1995])) == pytest.approx(got, abs=1e-12)  # the Arrow fold


def test_table_shape_threshold_edge_and_own_cell_for_one(table) -> None:
    e = table.edges
    assert e[0] == 0.0 and e[-2] == 1.0 and e[-1] == math.nextafter(1.0, 2.0) and T in e
    assert all(a < b for a, b in zip(e, e[1:], strict=False)) and len(table.probability) == len(e) - 1
    assert all(a <= b + 1e-12 for a, b in zip(table.probability, table.probability[1:], strict=False))
    assert table.validation_rows == 6000 and table.cells == 100
    assert set(table.reference) == set(table.spread) == set(ESTIMATED_METRICS)


def test_undefined_metrics_are_none_and_foreign_cells_fail(table) -> None:
    empty = estimate(table, window_profile(table, np.array([np.nan])))
    assert all(empty[m] is None for m in ESTIMATED_METRICS) and empty["rows"] == 0
    low = estimate(table, window_profile(table, np.full(50, 0.3)))  # nothing predicted positive
    assert low["precision"] is None and low["recall"] == 0.0 and low["accuracy"] is not None
    other = profile_arrays({CELL_COLUMN: np.linspace(0, 1, 50)}, {CELL_COLUMN: numeric_bins(CELL_COLUMN,
                                                                                            np.linspace(0, 1, 50))})
    with pytest.raises(EstimationError, match="expected the profile of"):
        estimate(table, other.columns[CELL_COLUMN])


def test_fit_refuses_one_class_or_too_few_rows_and_rejects_non_binary_labels() -> None:
    rng = np.random.default_rng(1)
    s = rng.random(1000)
    assert fit_cell_table(s, np.zeros(1000), None, T) is None
    assert fit_cell_table(s[:150], (s[:150] > 0.5).astype(float), None, T) is None
    with pytest.raises(EstimationError, match="expected 0/1"):
        fit_cell_table(s, np.full(1000, 2.0), None, T)
    with pytest.raises(EstimationError, match=r"expected a decision threshold in \[0, 1\]"):
        fit_cell_table(s, (s > 0.5).astype(float), None, 1.5)


# --------------------------------------------------------------------------- vs realized under covariate shift


def run_seeds(seeds: range, **kw: object) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per seed: fit on 20 000 unshifted validation rows, a 5 000-row window shifted by 0 / 0.5 / 1 / 1.5;
    estimated − realized per metric, and the comparison rows' statuses."""
    errs: dict[str, list[float]] = {m: [] for m in ESTIMATED_METRICS}
    statuses: list[str] = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        vs, vy = draw(rng, 20_000, **kw)
        dates = np.repeat(np.arange(10), 2000)
        table = fit_cell_table(vs, vy, dates, T)
        assert table is not None
        s, y = draw(rng, 5000, shift=(0.0, 0.5, 1.0, 1.5)[seed % 4], **kw)
        est, real = estimate(table, window_profile(table, s)), sk_realized(s, y)
        for m in ESTIMATED_METRICS:
            errs[m].append(est[m] - real[m])
        statuses += [r["status"] for r in comparison_rows(est, real, len(y), table)]
    return {m: np.array(v) for m, v in errs.items()}, np.array(statuses)


TOLERANCE = dict(auc=0.03, precision=0.04, recall=0.04, f1=0.03, accuracy=0.03, brier=0.012)


@pytest.mark.parametrize("kind", ["smooth", "ties", "clipped"])
def test_estimate_tracks_realized_under_covariate_shift(kind: str) -> None:
    errs, statuses = run_seeds(range(50), ties=kind == "ties", clip=kind == "clipped")
    for m, e in errs.items():
        assert np.abs(e).max() <= TOLERANCE[m], (m, np.abs(e).max())
        assert abs(e.mean()) <= 0.005, (m, e.mean())
    assert np.mean(statuses == "ok") >= 0.90


def test_rare_positives_one_percent() -> None:
    """1 % positives (≈ 200 in the validation window, ≈ 50 in a window): the isotonic calibrator pools the few
    positives into coarse steps (ties within a step count ½: AUC biased low by ≈ 0.01, measured −0.0099) and
    recall / F1 are label-noise bound (measured max error 0.13 / 0.06), so only the coarser bounds hold."""
    errs, statuses = run_seeds(range(50), b0=-5.8)
    assert np.abs(errs["accuracy"]).max() <= 0.03 and np.abs(errs["brier"]).max() <= 0.015
    assert np.abs(errs["precision"]).max() <= 0.05
    assert np.abs(errs["auc"]).max() <= 0.06 and abs(errs["auc"].mean()) <= 0.015
    assert np.mean(statuses == "ok") >= 0.85


# --------------------------------------------------------------------------- the band


def test_band_rarely_alerts_without_shift_and_alerts_when_auc_drops() -> None:
    alerts = warns = total = 0
    drop = []
    for seed in range(60):
        rng = np.random.default_rng(500 + seed)
        vs, vy = draw(rng, 20_000)
        table = fit_cell_table(vs, vy, None, T)
        assert table is not None
        for _ in range(3):
            rows = estimated_rows(table, window_profile(table, draw(rng, 5000)[0]), min_rows=200)
            statuses = [r["status"] for r in rows]
            alerts, warns, total = alerts + statuses.count("alert"), warns + statuses.count("warn"), total + len(rows)
        shrunk = estimated_rows(table, window_profile(table, draw(rng, 5000, scale=0.6)[0]), min_rows=200)
        drop.append({r["metric"]: r for r in shrunk}[PREFIX + "auc"])
    assert alerts / total <= 0.01 and warns / total <= 0.06, (alerts, warns, total)
    assert sum(r["status"] == "alert" and r["value"] < r["threshold"] for r in drop) >= 0.95 * len(drop)


def test_band_rows_schema_bounds_and_insufficient(table) -> None:
    s, _ = draw(np.random.default_rng(3), 4000)
    rows = estimated_rows(table, window_profile(table, s), min_rows=200)
    assert [r["metric"] for r in rows] == [PREFIX + m for m in ESTIMATED_METRICS]
    keys = {"column", "metric", "value", "threshold", "status", "method", "reason", "n_reference", "n_current"}
    for r, m in zip(rows, ESTIMATED_METRICS, strict=True):
        assert set(r) == keys and r["column"] == PERFORMANCE and r["n_current"] == 4000
        sd = math.sqrt(table.spread[m] ** 2 + table.label_spread[m] ** 2) / math.sqrt(4000)
        sign = 1 if m == "brier" else -1
        assert r["threshold"] == pytest.approx(table.reference[m] + sign * 3 * sd, abs=1e-15)
    few = estimated_rows(table, window_profile(table, s[:100]), min_rows=200)
    assert {r["status"] for r in few} == {"insufficient_data"} and "expected at least 200" in few[0]["reason"]


def test_comparison_rows_z_and_missing_sides(table) -> None:
    est = {m: 0.5 for m in ESTIMATED_METRICS}
    n = 2500
    sigma = math.sqrt((table.label_spread["auc"] / math.sqrt(n)) ** 2 + SIGMA_CAL ** 2)
    rows = {r["metric"]: r for r in comparison_rows(est, {**est, "auc": 0.5 + 3.1 * sigma, "f1": None}, n, table)}
    assert rows["estimated_error_auc"]["status"] == "warn"
    assert rows["estimated_error_auc"]["threshold"] == pytest.approx(3 * sigma)
    assert rows["estimated_error_precision"]["status"] == "ok" and rows["estimated_error_precision"]["value"] == 0
    assert rows["estimated_error_f1"]["status"] == "insufficient_data" and rows["estimated_error_f1"]["value"] is None


# --------------------------------------------------------------------------- storage


def test_cell_rows_round_trip_exact_and_ignored_by_the_profile_readers(spark, tmp_path_factory, table) -> None:
    from driftline.registry.profiles import ProfileProvenance, read_reference_rows, write_reference_rows
    from driftline.tables import CommitInfo, open_store
    from driftline.tables.spec import StorageConfig

    rng = np.random.default_rng(5)
    ref = spark.createDataFrame([(float(v),) for v in rng.normal(size=500)],
                                StructType([StructField("x", DoubleType())]))
    bins = {"x": numeric_bins("x", np.array([r.x for r in ref.collect()]))}
    prof = profile(ref, ["x"], bins)
    calib = [dict(column="x", kind="numeric", stat=THRESHOLD_STAT, bin=None, lower=None, upper=None,
                  category="wasserstein", quantile=None, value=0.1)]
    mine = cell_rows(table)
    assert cell_table_from_rows(mine) == table and cell_table_from_rows(profile_rows(prof)) is None
    store = open_store(spark, StorageConfig(backend="embedded"), tmp_path_factory.mktemp("ws"))
    who = ProfileProvenance("m", "1", "mlflow-run", "run", "hash", "t", dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    write_reference_rows(spark, store, [*profile_rows(prof), *calib, *mine], who,
                         CommitInfo(job="test", run_id="run", key="m@1", code_version="t", config_hash="t"))
    back = [r.asDict() for r in read_reference_rows(store, "m", "1").collect()]
    assert cell_table_from_rows(back) == table
    assert profile_from_rows(back)[0].columns == prof.columns
    assert bins_from_rows(back) == bins and thresholds_from_rows(back) == {("x", "wasserstein"): 0.1}
