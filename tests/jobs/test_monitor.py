"""The monitor job end to end: a trained champion, its predictions, Delta tables, MLflow SQLite registry.

Workspace: the train tests' ``env`` (40 entities a day, 02-08..03-01). ``jt`` v1 is trained on
02-12..02-25; then ``x1`` is shifted by +9 (3σ) on 02-28 and 03-01 only and 02-23..03-01 are scored.
Windows are 4 days (``--set monitoring.window_days=4``): the one ending 03-01 holds the shift in
half its rows. The oracle of the drift numbers is drift.py applied to a current profile computed
here with pandas/numpy on the same rows with the stored bins; performance is checked against
scikit-learn on the predictions joined with the matured labels.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from driftline.cli.main import main
from driftline.cli.runner import run_job
from driftline.config import load_config
from driftline.monitoring.drift import dataset_drift, drift_rows
from driftline.monitoring.report import _fmt
from driftline.monitoring.spec import DriftSpec
from driftline.profiling.bins import NumericBins
from driftline.profiling.profile import profile_rows
from driftline.profiling.stored import CALIBRATION_STATS, profile_from_rows
from driftline.profiling.types import CategoricalProfile, DatasetProfile, NumericProfile
from driftline.registry.profiles import read_reference_rows, reference_bins
from driftline.tables import CommitInfo
from driftline.tables.contracts import MONITOR_METRICS
from driftline.vocabulary import CHAMPION
from tests.jobs.test_score import registry_of, store_of
from tests.unit.monitoring.oracles import offset_sums

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

KEY = "customer_id"
SHIFT = 9.0
SHIFTED = (dt.date(2026, 2, 28), dt.date(2026, 3, 1))
D = dt.date(2026, 3, 1)                   # drifted window 02-26..03-01
CLEAN = dt.date(2026, 2, 27)              # clean window 02-24..02-27
TINY = dt.date(2026, 2, 26)               # a one-day window: 40 rows < min_rows 100
WINDOW = ("--set", "monitoring.window_days=4")
VOLATILE = ("run_id", "created_at")


def monitor(env, date: dt.date, *args: str) -> int:
    return run_job("monitor", ["--model", "jt", "--date", date.isoformat(), "--conf-dir", str(env["conf"]), *args])


@pytest.fixture(scope="module")
def scored(env):
    """Champion jt v1, x1 shifted on 02-28 and 03-01 (after training), predictions for 02-23..03-01."""
    conf = ["--model", "jt", "--conf-dir", str(env["conf"])]
    assert run_job("train", [*conf, "--date", "2026-03-01"]) == 0
    assert registry_of(env, "jt").alias(CHAMPION).version == "1"
    store = store_of(env)
    shifted = F.col("as_of_date").isin(list(SHIFTED))
    drifted = (store.read("jt__features", partitions={"as_of_date": list(SHIFTED)})
               .withColumn("x1", F.when(shifted, F.col("x1") + SHIFT).otherwise(F.col("x1"))))
    commit = CommitInfo(job="test", run_id="setup", key="shift", code_version="t", config_hash="t")
    store.replace_partitions("jt__features", drifted.localCheckpoint(), ["as_of_date"], commit,
                             partitions=[{"as_of_date": d} for d in SHIFTED])
    assert run_job("score", [*conf, "--from", "2026-02-23", "--to", "2026-03-01"]) == 0
    return env


def metrics_of(env, date: dt.date):
    return store_of(env).read("monitor_metrics").filter((F.col("model") == "jt") & (F.col("run_date") == date))


def runs_of(env, date: dt.date) -> list[dict]:
    rows = store_of(env).read("monitor_runs").filter((F.col("model") == "jt") & (F.col("run_date") == date))
    return [r.asDict() for r in rows.collect()]


def by_key(df, baseline: str = "reference", slice_: str = "__all__",
           window_end: dt.date | None = None) -> dict[tuple[str, str], dict]:
    """(column, metric) → row of one window: the run's own (window_end = run_date) unless ``window_end``."""
    end = F.col("run_date") if window_end is None else F.lit(window_end)
    rows = df.filter((F.col("baseline") == baseline) & (F.col("slice") == slice_)
                     & (F.col("window_end") == end)).collect()
    return {(r["column"], r["metric"]): r.asDict() for r in rows}


def window_rows(env, end: dt.date, days: int = 4) -> pd.DataFrame:
    """The rows the champion scored in the window, with their features (pandas, independent of the job)."""
    start = end - dt.timedelta(days=days - 1)
    store = store_of(env)
    preds = store.read("jt__predictions").filter(F.col("score_date").between(start, end)
                                                 & (F.col("role") == "champion")).toPandas()
    feats = store.read("jt__features").toPandas()
    out = preds.rename(columns={"score_date": "as_of_date", "score": "score"}).merge(
        feats[[KEY, "as_of_date", "x1", "x2", "plan"]], on=[KEY, "as_of_date"], how="left")
    return out


def assert_same_rows(got: dict[tuple[str, str], dict], want: list[dict]) -> None:
    """Every drift row of the oracle is in the table with the same value, threshold, status and sizes."""
    for w in want:
        g = got[(w["column"], w["metric"])]
        assert g["status"] == w["status"], (w, g)
        assert (g["value"] is None) == (w["value"] is None or math.isnan(w["value"])), (w, g)
        if g["value"] is not None:
            assert g["value"] == pytest.approx(w["value"], rel=1e-9, abs=1e-12), (w, g)
        assert g["threshold"] == w["threshold"] and g["method"] == w["method"]
        assert (g["n_reference"], g["n_current"]) == (w["n_reference"], w["n_current"])


def cells_of(rows) -> dict[tuple, float | None]:
    def clean(v):
        return None if v is None or math.isnan(v) else v
    return {(r["column"], r["kind"], r["stat"], r["bin"], r["lower"], r["upper"], r["category"], r["quantile"]):
            clean(r["value"]) for r in rows}


def numpy_profile(pdf: pd.DataFrame, columns, bins, quantiles) -> DatasetProfile:
    """A `DatasetProfile` computed with pandas/numpy (numpy.histogram on the stored edges)."""
    out = {}
    for c in columns:
        b = bins[c]
        if isinstance(b, NumericBins):
            v = pdf[c].astype(float).to_numpy()
            x = v[~np.isnan(v)]
            e = np.asarray(b.edges)
            counts, _ = np.histogram(x[(x >= e[0]) & (x <= e[-1])], bins=e)
            qs = tuple((q, float(np.quantile(x, q, method="inverted_cdf"))) for q in quantiles)
            out[c] = NumericProfile(c, len(pdf), int(np.isnan(v).sum()), 0, 0, len(x), float(x.mean()),
                                    float(x.std(ddof=1)), float(x.min()), float(x.max()), qs, b.edges,
                                    tuple(int(k) for k in counts), int((x < e[0]).sum()), int((x > e[-1]).sum()),
                                    **offset_sums(x[np.isfinite(x)], e))
        else:
            v = pdf[c].dropna().astype(str)
            counts = tuple(int((v == k).sum()) for k in b.categories)
            out[c] = CategoricalProfile(c, len(pdf), int(pdf[c].isna().sum()), len(v), int(v.nunique()),
                                        b.categories, counts, len(v) - sum(counts))
    return DatasetProfile(len(pdf), out)


def test_injected_drift_alerts_that_column_with_the_numbers_of_drift_py(scored, capsys) -> None:
    env = scored
    assert monitor(env, D, *WINDOW) == 0                              # drift found is a result: exit 0
    got = by_key(metrics_of(env, D))
    # the oracle: drift.py on the stored reference and a pandas/numpy profile of the same rows
    store = store_of(env)
    ref_rows = [r.asDict() for r in read_reference_rows(store, "jt", "1").collect()]
    reference, quantiles = profile_from_rows(ref_rows)
    profile_only = [r for r in ref_rows if r["stat"] not in CALIBRATION_STATS]
    assert cells_of(profile_rows(reference)) == cells_of(profile_only)  # the rebuilt reference is the stored one
    columns = ["x1", "x2", "plan", "score"]
    assert sorted(reference.columns) == sorted(columns)
    pdf = window_rows(env, D)
    assert len(pdf) == 160 and pdf["x1"].isna().any()
    bins = reference_bins(store, "jt", "1")
    current = numpy_profile(pdf, columns, bins, quantiles)
    spec = DriftSpec.from_config(load_config("jt", env["conf"], ["monitoring.window_days=4"]).config.monitoring.drift)
    assert_same_rows(got, drift_rows(dataset_drift(reference, current, spec, columns)))
    verdict = {c: got[(c, "drift")]["status"] for c in columns}
    assert verdict == {"x1": "alert", "x2": "ok", "plan": "ok", "score": "alert"}  # the score follows x1
    # previous window 02-22..02-25: scored from 02-23 only, whatever version; same oracle
    previous = numpy_profile(window_rows(env, dt.date(2026, 2, 25)), columns, bins, quantiles)
    assert previous.rows == 120
    prev = by_key(metrics_of(env, D), "previous_window")
    assert_same_rows(prev, drift_rows(dataset_drift(previous, current, spec, columns)))
    assert prev[("x1", "drift")]["status"] == "alert"
    assert {r["reference_id"] for r in prev.values()} == {"jt/previous_window/2026-02-22..2026-02-25"}
    assert {r["reference_id"] for r in got.values()} == {"jt/1"}
    assert got[("__dataset__", "drift_share")]["value"] == 0.5 and got[("__dataset__", "drift_share")]["status"] == \
        "alert"
    # data quality: x1's max is far beyond the reference's, others within range
    assert got[("x1", "max")]["status"] == "warn" and got[("x1", "max")]["value"] == pytest.approx(pdf["x1"].max())
    assert got[("x2", "max")]["status"] == "ok"
    assert got[("x1", "null_rate")]["value"] == pytest.approx(pdf["x1"].isna().mean())
    assert got[("__dataset__", "rows")]["value"] == 160

    # late labels: 02-26..02-28 matured before 03-01 00:00 (03-01's are known at 01:00)
    labels = env["labels"]
    known = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp("2026-03-01", tz="UTC")]
    joined = pdf.merge(known.rename(columns={"churned": "y"})[[KEY, "as_of_date", "y"]], on=[KEY, "as_of_date"])
    assert len(joined) == 120
    assert got[("__performance__", "label_coverage")]["value"] == pytest.approx(120 / 160)
    assert got[("__performance__", "auc")]["value"] == pytest.approx(roc_auc_score(joined["y"], joined["score"]))
    assert got[("__performance__", "log_loss")]["value"] == pytest.approx(log_loss(joined["y"], joined["score"]))
    assert got[("__performance__", "brier")]["value"] == pytest.approx(
        brier_score_loss(joined["y"], joined["score"]))

    [run] = runs_of(env, D)
    assert (run["model_version"], run["window_start"], run["window_end"], run["rows"]) == (
        "1", dt.date(2026, 2, 26), D, 160)
    assert (run["columns_drifted"], run["columns_evaluated"], run["dataset_drift"], run["status"]) == (2, 4, True,
                                                                                                       "alert")
    assert run["quality_status"] == "warn" and run["performance_status"] == "ok"
    assert run["run_id"].startswith("monitor-")

    # the report: a static file naming the drifted column; `driftline report` prints its path
    report = env["ws"].resolve() / "reports" / "jt" / f"{D}.html"
    assert run["report_path"] == str(report)
    text = report.read_text()
    assert "<svg" in text and "<script" not in text and "http" not in text.replace("http-equiv", "")
    assert "drifted columns</th><td>2 of 4 evaluated (0 with insufficient data): x1, score" in text
    # each feature's permutation importance stored with v1 (its MLflow run) and its rank, beside its drift
    reg = registry_of(env, "jt")
    stored = reg.client.get_run(reg.get("1").run_id).data.metrics
    imp = {c: stored[f"importance.{c}"] for c in ("x1", "x2", "plan")}
    order = sorted(imp, key=lambda c: (-imp[c], c))
    assert "<th>importance (rank)</th>" in text
    for column, value in imp.items():
        assert f'<td class="num">{_fmt(value)} ({order.index(column) + 1})</td>' in text, column
    capsys.readouterr()
    assert main(["report", "--model", "jt", "--date", D.isoformat(), "--conf-dir", str(env["conf"])]) == 0
    assert capsys.readouterr().out == f"{report}\n"


def test_clean_window_has_no_alert(scored) -> None:
    env = scored
    assert monitor(env, CLEAN, *WINDOW) == 0
    got = by_key(metrics_of(env, CLEAN))
    assert {c: got[(c, "drift")]["status"] for c in ("x1", "x2", "plan", "score")} == dict.fromkeys(
        ("x1", "x2", "plan", "score"), "ok")
    [run] = runs_of(env, CLEAN)
    assert (run["status"], run["dataset_drift"], run["columns_drifted"]) == ("ok", False, 0)


def test_tiny_window_is_insufficient_data_never_no_drift(scored) -> None:   # R8, R15
    env = scored
    assert monitor(env, TINY) == 0                                      # window_days 1: 40 rows
    got = by_key(metrics_of(env, TINY))
    for c in ("x1", "x2", "plan", "score"):
        assert got[(c, "drift")]["status"] == "insufficient_data" and got[(c, "drift")]["value"] is None
        assert "expected at least 100 (monitoring.drift.min_rows)" in got[(c, "drift")]["reason"]
    assert got[("__dataset__", "drift_share")]["status"] == "insufficient_data"
    assert got[("__dataset__", "rows")]["status"] == "insufficient_data"
    assert got[("__performance__", "auc")]["status"] == "insufficient_data"
    prev = by_key(metrics_of(env, TINY), "previous_window")                # 02-25 alone: 40 rows too
    assert prev[("__dataset__", "drift_share")]["status"] == "insufficient_data"
    [run] = runs_of(env, TINY)
    assert (run["status"], run["dataset_drift"], run["rows"], run["window_start"]) == (
        "insufficient_data", False, 40, TINY)
    assert run["performance_status"] == "insufficient_data"


def test_rerun_replaces_identical_rows_without_duplicates(scored) -> None:   # R1
    env = scored
    assert monitor(env, D, *WINDOW) == 0
    first = metrics_of(env, D).drop(*VOLATILE)
    first_run = runs_of(env, D)
    assert monitor(env, D, *WINDOW) == 0
    again = metrics_of(env, D).drop(*VOLATILE)
    # every key, status, threshold and size is identical; a float statistic may differ in its last bits
    # (Spark merges partial aggregates in whatever order the tasks finish)
    assert_approx_df_equality(again, first, 1e-12, ignore_row_order=True)
    assert again.groupBy(*MONITOR_METRICS.key).count().filter("count > 1").count() == 0
    [run] = runs_of(env, D)
    assert run["run_id"] != first_run[0]["run_id"]
    assert {k: v for k, v in run.items() if k not in ("run_id", "started_at")} == {
        k: v for k, v in first_run[0].items() if k not in ("run_id", "started_at")}
    head = store_of(env).history("monitor_metrics")[0]
    assert head["job"] == "monitor" and head["idempotency_key"] == f"driftline/monitor/monitor_metrics/jt@{D}"


def test_window_without_predictions_exits_1_with_one_line_and_writes_nothing(scored, capsys) -> None:
    env = scored
    store = store_of(env)
    before = store.version("monitor_metrics"), store.version("monitor_runs")
    capsys.readouterr()
    assert monitor(env, dt.date(2026, 2, 12), *WINDOW) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == ["driftline monitor: error: table jt__predictions: expected champion predictions for score_date "
                   "2026-02-09..2026-02-12, found none (run driftline score --from 2026-02-09 --to 2026-02-12)"]
    assert (store.version("monitor_metrics"), store.version("monitor_runs")) == before
    assert main(["report", "--model", "jt", "--date", "2026-02-12", "--conf-dir", str(env["conf"])]) == 1


def test_calibrated_thresholds_decide_against_the_reference_and_static_ones_against_the_previous_window(
        scored) -> None:
    env = scored
    args = (*WINDOW, "--set", "monitoring.drift.threshold_mode=calibrated", "--set", "monitoring.drift.numeric_method=psi",
            "--set", "monitoring.drift.categorical_method=js")
    assert monitor(env, D, *args) == 0
    stored = {(r["column"], r["category"]): r["value"] for r in read_reference_rows(store_of(env), "jt", "1")
              .filter(F.col("stat") == "calibrated_threshold").collect()}
    got = by_key(metrics_of(env, D))
    for column, metric in (("x1", "psi"), ("x2", "psi"), ("plan", "js_distance"), ("score", "psi")):
        assert got[(column, "drift")]["threshold"] == stored[(column, metric)]
        assert got[(column, metric)]["threshold"] == stored[(column, metric)]
        drifted = got[(column, metric)]["value"] > stored[(column, metric)]
        assert got[(column, "drift")]["status"] == ("alert" if drifted else "ok")
    assert got[("x1", "drift")]["status"] == "alert"                      # the +3σ shift crosses any threshold
    prev = by_key(metrics_of(env, D), "previous_window")
    assert prev[("x1", "drift")]["threshold"] == 0.2 and prev[("plan", "drift")]["threshold"] == 0.1   # static


def test_performance_per_segment_value_matches_scikit_learn(scored) -> None:
    env = scored
    assert monitor(env, D, *WINDOW, "--set", "monitoring.performance.min_labels=20") == 0
    metrics = metrics_of(env, D)
    slices = {r["slice"] for r in metrics.select("slice").distinct().collect()}
    assert slices == {"__all__", "plan=basic", "plan=pro", "plan=team", "plan=__null__"}
    # the oracle: the window's rows joined with the labels matured before 03-01, per plan, with scikit-learn
    pdf = window_rows(env, D)
    labels = env["labels"]
    known = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp("2026-03-01", tz="UTC")]
    joined = pdf.merge(known.rename(columns={"churned": "y"})[[KEY, "as_of_date", "y"]], on=[KEY, "as_of_date"],
                       how="left")
    for plan, part in joined.groupby(joined["plan"].fillna("__null__")):
        got = by_key(metrics, slice_=f"plan={plan}")
        assert set(got) == {("__performance__", m) for m in ("labelled_rows", "label_coverage", "auc", "log_loss",
                                                               "brier", "accuracy", "precision", "recall", "f1")}
        lab = part.dropna(subset=["y"])
        assert got[("__performance__", "labelled_rows")]["value"] == len(lab)
        assert got[("__performance__", "label_coverage")]["value"] == pytest.approx(len(lab) / len(part))
        if len(lab) < 20:
            assert plan == "__null__" and got[("__performance__", "auc")]["status"] == "insufficient_data"
            assert "expected at least 20 (monitoring.performance.min_labels)" in got[("__performance__", "auc")][
                "reason"]
            continue
        assert got[("__performance__", "auc")]["value"] == pytest.approx(roc_auc_score(lab["y"], lab["score"]))
        assert got[("__performance__", "log_loss")]["value"] == pytest.approx(log_loss(lab["y"], lab["score"],
                                                                                     labels=[0, 1]))
        assert got[("__performance__", "brier")]["value"] == pytest.approx(
            brier_score_loss(lab["y"], lab["score"]))
        predicted = (lab["score"] >= 0.5).astype(int)   # label.threshold
        for name, oracle in (("accuracy", accuracy_score), ("recall", recall_score)):
            assert got[("__performance__", name)]["value"] == pytest.approx(oracle(lab["y"], predicted))
        if predicted.sum():
            for name, oracle in (("precision", precision_score), ("f1", f1_score)):
                assert got[("__performance__", name)]["value"] == pytest.approx(oracle(lab["y"], predicted))
        assert got[("__performance__", "auc")]["status"] == "ok"
    # segments add performance rows only: drift and quality stay whole-window
    assert metrics.filter((F.col("slice") != "__all__") & (F.col("column") != "__performance__")).count() == 0


def test_earlier_window_performance_is_recomputed_on_labels_matured_since(scored) -> None:
    env = scored
    assert monitor(env, D, *WINDOW, "--set", "monitoring.performance.min_labels=20") == 0
    metrics = metrics_of(env, D)
    # label.horizon_days 3, window_days 4: one earlier window, 02-22..02-25 (scored from 02-23 by v1)
    ends = sorted({r["window_end"] for r in metrics.select("window_end").distinct().collect()})
    assert ends == [dt.date(2026, 2, 25), D]
    earlier = metrics.filter(F.col("window_end") == dt.date(2026, 2, 25))
    # the whole window, and each value of the segment column (monitoring.segments: [plan]) on its own
    assert {(r["window_start"], r["model_version"], r["reference_id"], r["slice"], r["column"])
            for r in earlier.collect() if r["method"] != "permutation_importance"} == {
        (dt.date(2026, 2, 22), "1", "jt/1", s, "__performance__")
        for s in ("__all__", "plan=basic", "plan=pro", "plan=team", "plan=__null__")}
    got = by_key(metrics, window_end=dt.date(2026, 2, 25))
    # the oracle: that window's champion rows joined with the labels matured before 03-01 (not before 02-26)
    pdf = window_rows(env, dt.date(2026, 2, 25))
    labels = env["labels"]
    known = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp("2026-03-01", tz="UTC")]
    joined = pdf.merge(known.rename(columns={"churned": "y"})[[KEY, "as_of_date", "y"]], on=[KEY, "as_of_date"])
    assert len(pdf) == 120 and got[("__performance__", "labelled_rows")]["value"] == len(joined)
    assert got[("__performance__", "label_coverage")]["value"] == pytest.approx(len(joined) / 120)
    assert got[("__performance__", "auc")]["value"] == pytest.approx(roc_auc_score(joined["y"], joined["score"]))
    assert got[("__performance__", "log_loss")]["value"] == pytest.approx(log_loss(joined["y"], joined["score"]))
    assert got[("__performance__", "brier")]["value"] == pytest.approx(
        brier_score_loss(joined["y"], joined["score"]))
    checked = 0
    for plan, rows in joined.groupby(joined["plan"].fillna("__null__")):   # each segment of that earlier window
        seg = by_key(metrics, slice_=f"plan={plan}", window_end=dt.date(2026, 2, 25))
        scored_rows = int((pdf["plan"].fillna("__null__") == plan).sum())
        assert seg[("__performance__", "labelled_rows")]["value"] == len(rows)
        assert seg[("__performance__", "label_coverage")]["value"] == pytest.approx(len(rows) / scored_rows)
        if len(rows) >= 20:   # (monitoring.performance.min_labels)
            assert seg[("__performance__", "log_loss")]["value"] == pytest.approx(
                log_loss(rows["y"], rows["score"], labels=[0, 1]))
            checked += 1
    assert checked >= 2
    text = (env["ws"].resolve() / "reports" / "jt" / f"{D}.html").read_text()
    assert "Earlier windows on matured labels" in text and "2026-02-22 .. 2026-02-25" in text
    # the run's verdicts stay the current window's
    [run] = runs_of(env, D)
    assert (run["window_start"], run["window_end"]) == (dt.date(2026, 2, 26), D)


def test_report_shows_the_trend_of_each_column_across_runs(scored) -> None:
    env = scored
    earlier = dt.date(2026, 2, 28)
    assert monitor(env, earlier, *WINDOW) == 0 and monitor(env, D, *WINDOW) == 0
    text = (env["ws"].resolve() / "reports" / "jt" / f"{D}.html").read_text()
    assert "<h2>Trends</h2>" in text
    for day in (earlier, D):
        x1 = by_key(metrics_of(env, day))
        metric = {"ks": "ks_pvalue", "wasserstein": "wasserstein_norm"}[x1[("x1", "drift")]["method"]]
        point = x1[("x1", metric)]
        value = f"{point['value']:.4g}"
        assert f"<title>{day} {metric} {value} (threshold {point['threshold']:.4g}): {point['status']}</title>" in text


def test_evidently_page_beside_the_report_from_the_stored_reference_sample(scored) -> None:
    env = scored
    report = env["ws"].resolve() / "reports" / "jt" / f"{D}.html"
    page = report.with_name(f"{D}.evidently.html")
    assert monitor(env, D, *WINDOW) == 0
    text = report.read_text()
    assert f'<a href="{D}.evidently.html">' in text
    # the reference sample stored at train time: every reference row (fewer than evidently_rows), no split column
    run_id = read_reference_rows(store_of(env), "jt", "1").first()["mlflow_run_id"]
    import mlflow
    sample = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id,
                                                                 artifact_path="reference_profile/sample.parquet"))
    assert sorted(sample.columns) == ["as_of_date", "plan", "score", "x1", "x2"]
    [ref_rows] = [r for r in read_reference_rows(store_of(env), "jt", "1").collect()
                  if r["column"] == "x1" and r["stat"] == "rows"]
    assert len(sample) == ref_rows["value"]
    assert "160 current sampled rows" in text and page.stat().st_size > 10_000
    assert "x1" in page.read_text()
    # off: no page, and the one of the earlier run is gone (it would pass for this run's)
    assert monitor(env, D, *WINDOW, "--set", "monitoring.report.evidently_rows=0") == 0
    assert not page.exists() and "off (monitoring.report.evidently_rows is 0)" in report.read_text()


def test_features_configured_differently_from_the_reference_are_quality_warnings(scored) -> None:   # R9
    """``x2`` dropped from the config and ``x3`` added after v1 was trained: the reference's columns are
    still profiled from the features table, and the schema change shows as quality warnings."""
    env = scored
    features = ("features=[{name: x1, kind: aggregate, agg: sum, column: amount, window: 7d}, "
                "{name: x3, kind: aggregate, agg: max, column: amount, window: 7d}, "
                "{name: plan, kind: attribute, column: plan, categorical: true}]")
    try:
        assert monitor(env, CLEAN, *WINDOW, "--set", features) == 0
        got = by_key(metrics_of(env, CLEAN))
        changes = {k: (r["value"], r["threshold"], r["status"]) for k, r in got.items()
                   if k[1] in ("new_column", "removed_column", "schema_changes")}
        assert changes == {("x3", "new_column"): (1.0, None, "warn"), ("x2", "removed_column"): (1.0, None, "warn"),
                           ("__dataset__", "schema_changes"): (2.0, 0.0, "warn")}
        assert ("x2", "drift") in got and got[("x2", "null_rate")]["status"] == "ok"
        assert runs_of(env, CLEAN)[0]["quality_status"] == "warn"
    finally:
        assert monitor(env, CLEAN, *WINDOW) == 0
    got = by_key(metrics_of(env, CLEAN))
    assert got[("__dataset__", "schema_changes")]["status"] == "ok"
    assert not [k for k in got if k[1] in ("new_column", "removed_column")]


def test_status_shows_the_latest_verdict_and_why_and_exits_3_on_an_alert(scored, capsys, tmp_path) -> None:
    """`driftline status` (delta-rs and MLflow, no Spark) against the rows the monitor wrote, read with Spark."""
    import json

    env = scored
    assert monitor(env, CLEAN, *WINDOW) == 0 and monitor(env, D, *WINDOW) == 0
    conf = ["--model", "jt", "--conf-dir", str(env["conf"])]
    capsys.readouterr()
    assert main(["status", *conf, "--date", D.isoformat(), "--json"]) == 3           # the verdict is an alert
    status = json.loads(capsys.readouterr().out)
    [run] = runs_of(env, D)
    got = by_key(metrics_of(env, D))
    flagged = {c for (c, m), r in got.items() if m == "drift" and r["status"] in ("warn", "alert")
               and not c.startswith("__")}
    assert status["verdict"] == "alert" and status["as_of"] == D.isoformat()
    assert status["versions"] == {"champion": "1", "challenger": None, "previous": None, "canary": None,
                                  "latest": "1", "latest_created": status["versions"]["latest_created"]}
    assert status["canary"] is None and status["rollback"] is None
    mon = status["monitor"]
    assert (mon["rows"], mon["columns_drifted"], mon["columns_evaluated"], mon["status"], mon["quality_status"],
            mon["performance_status"], mon["report_path"]) == (run["rows"], run["columns_drifted"],
                                                               run["columns_evaluated"], run["status"],
                                                               run["quality_status"], run["performance_status"],
                                                               run["report_path"])
    assert {c["column"] for c in mon["alerted_columns"]} == flagged == {"x1", "score"}
    x1 = next(c for c in mon["alerted_columns"] if c["column"] == "x1")
    assert x1["because"] and all(b["status"] == "alert" for b in x1["because"])
    for b in x1["because"]:
        assert b["value"] == pytest.approx(got[("x1", b["metric"])]["value"], rel=1e-12)
    auc = next(p for p in mon["performance"] if p["metric"] == "auc")
    assert auc["value"] == pytest.approx(got[("__performance__", "auc")]["value"], rel=1e-12)
    jobs = {j["job"]: j for j in status["jobs"]}
    assert jobs["monitor"]["date"] == D.isoformat() and jobs["monitor"]["run_id"] == run["run_id"]
    assert jobs["score"]["date"] == "2026-03-01" and jobs["score"]["status"] == "written"
    # the screen says the same in words; an earlier, clean date is not an alert (exit 0)
    assert main(["status", *conf, "--date", D.isoformat()]) == 3
    screen = capsys.readouterr().out
    assert "verdict: ALERT  (drift alert · quality warn · performance ok)" in screen
    assert "versions: champion v1 · challenger - · previous -" in screen
    assert f"report: {run['report_path']}" in screen and "x1" in screen
    assert main(["status", *conf, "--date", CLEAN.isoformat(), "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["as_of"] == CLEAN.isoformat() and clean["monitor"]["alerted_columns"] == []
    assert clean["verdict"] != "alert"
    # a workspace without the model's tables: exit 1, one line; a bad date: exit 2, one line
    assert main(["status", *conf, "--workspace", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "status of jt: expected its tables under" in err and "found none" in err
    assert main(["status", *conf, "--date", "2026-02-30"]) == 2
    assert "expected a real calendar date" in capsys.readouterr().err
    assert main(["--help"]) == 0 and "  status " in capsys.readouterr().out
    assert main(["status", "--help"]) == 0
    assert "3 latest verdict is an alert" in " ".join(capsys.readouterr().out.split())


def test_monitor_exports_its_verdicts_for_prometheus_to_a_textfile_and_a_pushgateway(
    scored, tmp_path, monkeypatch
) -> None:
    """A real HTTP receiver stands in for the Pushgateway; the metrics equal the tables' rows."""
    import logging
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prometheus_client.parser import text_string_to_metric_families

    env = scored
    received: list[tuple[str, str]] = []
    answer = [200]

    class Receiver(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:   # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, body.decode()))
            self.send_response(answer[0])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Lines(logging.Handler):   # what the exporter logs, whatever handlers the job set up
        lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(f"{record.levelname} {record.getMessage()}")

    logger = logging.getLogger("driftline.alerts.metrics")
    logger.addHandler(handler := Lines())
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    folder = tmp_path / "textfile"
    try:
        assert monitor(env, D, *WINDOW, "--set", f"alerts.metrics.textfile_dir={folder}",
                       "--set", f"alerts.metrics.pushgateway_url={url}") == 0
        text = (folder / "driftline_jt.prom").read_text()
        assert [p for p, _ in received] == ["/metrics/job/driftline/model/jt"] and received[0][1] == text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        [run] = runs_of(env, D)
        got = by_key(metrics_of(env, D))

        def value(name: str, **labels: str) -> float:
            return samples[(name, tuple(sorted({"model": "jt", **labels}.items())))]

        assert value("driftline_monitor_alert") == 1.0
        assert value("driftline_monitor_verdict", aspect="overall", status="alert") == 1.0
        assert value("driftline_monitor_verdict", aspect="quality", status=run["quality_status"]) == 1.0
        assert sum(v for (n, lab), v in samples.items() if n == "driftline_monitor_verdict"
                   and ("aspect", "drift") in lab) == 1.0      # a state set: one status at a time
        assert value("driftline_drift_share") == run["drift_share"]
        assert (value("driftline_drifted_columns"), value("driftline_evaluated_columns")) == (
            run["columns_drifted"], run["columns_evaluated"])
        assert {c: value("driftline_column_drifted", column=c) for c in ("x1", "x2", "plan", "score")} == {
            c: float(got[(c, "drift")]["status"] == "alert") for c in ("x1", "x2", "plan", "score")}
        assert value("driftline_performance", metric="auc") == got[("__performance__", "auc")]["value"]
        assert value("driftline_monitor_window_rows") == run["rows"] == 160
        assert value("driftline_monitor_model_version_info", version="1") == 1.0
        assert value("driftline_monitor_window_end_timestamp_seconds") == dt.datetime(
            2026, 3, 1, tzinfo=dt.UTC).timestamp()
        # a receiver answering 500: retried, one warning, exit 0, the run's rows written all the same
        answer[0] = 500
        handler.lines.clear()
        assert monitor(env, D, *WINDOW, "--set", f"alerts.metrics.pushgateway_url={url}",
                       "--set", "alerts.metrics.retries=1") == 0
        [warning] = [line for line in handler.lines if line.startswith("WARNING")]
        assert len(received) == 3 and "failed after 2 attempt(s): HTTP Error 500" in warning
        assert runs_of(env, D)[0]["run_id"] != run["run_id"]
        # a receiver that is down, its URL (with a secret) from the environment: exit 0, the secret never logged
        server.shutdown()
        server.server_close()
        handler.lines.clear()
        monkeypatch.setenv("DRIFTLINE_PUSHGATEWAY_URL", f"http://ops:s3cret@127.0.0.1:{server.server_port}")
        assert monitor(env, D, *WINDOW, "--set", "alerts.metrics.retries=0") == 0
        [warning] = handler.lines
        assert "metrics push to http://***@127.0.0.1" in warning and "s3cret" not in warning
    finally:
        logger.removeHandler(handler)
        server.shutdown()
        server.server_close()
    # a URL with credentials in the config is refused at load (secrets come from the environment only)
    assert monitor(env, D, "--set", f"alerts.metrics.pushgateway_url=http://ops:s3cret@127.0.0.1:{server.server_port}"
                   ) == 2


def test_alerts_reach_a_webhook_once_per_window_a_resend_sends_again_and_a_failed_job_alerts(
    scored, tmp_path, monkeypatch, capsys, caplog
) -> None:
    """A real HTTP receiver is the webhook; a second channel points at a closed port. Each alert is an alert_events
    row; a rerun of the window sends nothing twice (only retries the channel that failed); ``alerts resend`` sends
    again; a job failure alerts; the webhook's secret (in its URL, from the environment) is never logged or
    stored."""
    import json
    import logging
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from driftline.alerts.channels import Message, payload

    env = scored
    received: list[tuple[str, dict]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:   # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "tok3n-s3cret"
    monkeypatch.setenv("JT_HOOK_URL", f"http://127.0.0.1:{server.server_port}/hook/{secret}")
    alerts = ("--set", "alerts.channels={hook: {type: webhook, url_env: JT_HOOK_URL}, down: {type: webhook, url: "
              f"'http://127.0.0.1:{closed}/x', retries: 0}}}}",
              "--set", "alerts.rules=[{name: drift, when: dataset_drift, channels: [hook], severity: critical}, "
              "{name: auc_low, when: performance, metric: auc, bound: 0.999, channels: [hook, down]}, "
              "{name: quiet, when: column_drift, columns: [x2], channels: [hook]}, "
              "{name: failed, when: job_failed, channels: [hook]}]")
    caplog.set_level(logging.INFO)
    try:
        assert monitor(env, D, *WINDOW, *alerts) == 0
        [run] = runs_of(env, D)
        got = by_key(metrics_of(env, D))
        events = {r["rule"]: r.asDict() for r in store_of(env).read("alert_events").collect()}
        assert sorted(events) == ["auc_low", "drift"]               # x2 did not drift: `quiet` did not fire
        drift, auc = events["drift"], events["auc_low"]
        window = "2026-02-26..2026-03-01"
        assert (drift["model"], drift["job"], drift["run_date"], drift["window"], drift["kind"]) == (
            "jt", "monitor", D, window, "dataset_drift")
        assert (drift["status"], drift["delivered"], drift["errors"], drift["attempts"], drift["resends"]) == (
            "sent", "hook", None, 1, 0)
        assert drift["value"] == run["drift_share"] == 0.5 and drift["threshold"] == 0.5
        assert drift["report"] == run["report_path"] and drift["dedup_key"] == f"driftline/jt/drift/{window}"
        assert drift["reason"] == "dataset drift alert: drift share 0.5 >= 0.5 (score, x1)" and drift["severity"] == "critical"
        assert auc["value"] == got[("__performance__", "auc")]["value"] and auc["threshold"] == 0.999
        assert (auc["status"], auc["delivered"], auc["attempts"]) == ("partial", "hook", 2)
        assert auc["errors"].startswith("down: ") and "refused" in auc["errors"].lower()
        # what arrived is exactly the webhook payload of the recorded alert
        assert [p for p, _ in received] == [f"/hook/{secret}"] * 2
        bodies = {b["rule"]: b for _, b in received}
        want = Message(model="jt", rule="drift", window=window, severity="critical", status="firing",
                       title=drift["title"], reason=drift["reason"], value=0.5, threshold=0.5,
                       report=drift["report"], dedup_key=drift["dedup_key"],
                       details=bodies["drift"]["details"])
        hook = load_config("jt", env["conf"], [alerts[1], alerts[3]]).config.alerts.channels["hook"]
        assert bodies["drift"] == payload("hook", hook, want)
        assert (bodies["auc_low"]["value"], bodies["auc_low"]["threshold"]) == (auc["value"], 0.999)
        # a rerun of the same window (a backfill, --force alike): nothing is sent twice; the failed channel is retried
        assert monitor(env, D, *WINDOW, *alerts) == 0
        assert len(received) == 2
        again = {r["rule"]: r.asDict() for r in store_of(env).read("alert_events").collect()}
        assert (again["drift"]["attempts"], again["auc_low"]["attempts"], again["auc_low"]["status"]) == (1, 3,
                                                                                                          "partial")
        # resend: on purpose, sent again and counted
        capsys.readouterr()
        assert main(["alerts", "resend", "--model", "jt", "--rule", "drift", "--window", window,
                     "--conf-dir", str(env["conf"]), *alerts]) == 0
        assert capsys.readouterr().out == "hook: sent (1 attempt(s))\n"
        assert len(received) == 3 and received[-1][1]["details"]["resend"] == 1
        resent = {r["rule"]: r.asDict() for r in store_of(env).read("alert_events").collect()}["drift"]
        assert (resent["resends"], resent["attempts"], resent["status"]) == (1, 2, "sent")
        assert main(["alerts", "resend", "--model", "jt", "--rule", "drift", "--window", window, "--dry-run",
                     "--conf-dir", str(env["conf"]), *alerts]) == 0
        assert len(received) == 3                                   # a dry run sends nothing
        assert main(["alerts", "resend", "--model", "jt", "--rule", "drift", "--window", "2020-01-01..2020-01-04",
                     "--conf-dir", str(env["conf"]), *alerts]) == 1
        assert "expected an alert_events row of model jt, rule drift, window 2020-01-01..2020-01-04, found none" in \
            capsys.readouterr().err
        # a job that fails alerts once per (job, date)
        assert monitor(env, dt.date(2026, 2, 12), *WINDOW, *alerts) == 1
        assert monitor(env, dt.date(2026, 2, 12), *WINDOW, *alerts) == 1
        assert len(received) == 4 and received[-1][1]["rule"] == "failed"
        assert "expected champion predictions for score_date" in received[-1][1]["reason"]
        capsys.readouterr()
        assert main(["alerts", "list", "--model", "jt", "--conf-dir", str(env["conf"]), *alerts]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert listed[0].split()[:6] == ["run_date", "job", "rule", "window", "severity", "status"]
        assert sorted(line.split()[2] for line in listed[1:]) == ["auc_low", "drift", "failed"]
        assert listed[-1].split()[:3] == ["2026-02-12", "monitor", "failed"]      # newest first
        # the on-call screen shows the last alerts
        assert main(["status", "--model", "jt", "--date", D.isoformat(), "--json", "--conf-dir", str(env["conf"])]) == 3
        status = json.loads(capsys.readouterr().out)
        assert sorted((a["rule"], a["status"]) for a in status["sent_alerts"]) == [
            ("auc_low", "partial"), ("drift", "sent"), ("failed", "sent")]
        # the secret: never in a log line, an output or a table row
        assert secret not in caplog.text
        assert all(secret not in str(v) for r in store_of(env).read("alert_events").collect() for v in r)
    finally:
        server.shutdown()
        server.server_close()


CUSTOM = ("--set", "monitoring.custom_metrics.pro_score.sql=avg(CASE WHEN plan = 'pro' THEN score END)",
          "--set", "monitoring.custom_metrics.pro_score.max=0.0001",
          "--set", "monitoring.custom_metrics.x1_p90.sql=percentile_approx(x1, 0.9)",
          "--set", "monitoring.custom_metrics.x1_p90.max_change=1000",
          "--set", "monitoring.custom_metrics.nulls.sql=count_if(x2 IS NULL) / count(*)",
          "--set", "monitoring.custom_metrics.ratio.derived=pro_score / x1_p90")


def test_custom_metrics_equal_plain_spark_sql_on_the_window_and_their_change_from_the_reference_sample(
        scored, spark) -> None:
    from driftline.monitoring.evidently_page import reference_sample
    from driftline.registry.client import tracking_setup

    assert monitor(scored, D, *WINDOW, *CUSTOM) == 0
    got = by_key(metrics_of(scored, D))
    spark.createDataFrame(window_rows(scored, D)).createOrReplaceTempView("custom_window")
    want = spark.sql("SELECT avg(CASE WHEN plan = 'pro' THEN score END) AS pro_score, "
                     "percentile_approx(x1, 0.9) AS x1_p90, count_if(x2 IS NULL) / count(*) AS nulls "
                     "FROM custom_window").collect()[0].asDict()
    for name in ("pro_score", "x1_p90", "nulls"):
        row = got[("__custom__", name)]
        assert row["value"] == pytest.approx(float(want[name]), rel=1e-12), name
        assert row["method"] == "sql" and row["n_current"] == 160
    assert got[("__custom__", "pro_score")]["status"] == "alert"
    assert got[("__custom__", "pro_score")]["reason"] == "above max 0.0001"
    assert got[("__custom__", "ratio")]["value"] == pytest.approx(want["pro_score"] / want["x1_p90"], rel=1e-12)
    assert got[("__custom__", "x1_p90")]["status"] == "ok"
    # v1 was trained before these metrics: their reference values are computed on its stored reference sample
    cfg = load_config("jt", scored["conf"]).config
    ref = reference_sample(tracking_setup(cfg.mlflow, scored["ws"]), registry_of(scored, "jt").alias(CHAMPION).run_id)
    spark.createDataFrame(ref).createOrReplaceTempView("custom_reference")
    ref_p90 = spark.sql("SELECT percentile_approx(x1, 0.9) FROM custom_reference").collect()[0][0]
    change = got[("__custom_change__", "x1_p90")]
    assert change["value"] == pytest.approx(want["x1_p90"] - ref_p90, rel=1e-12)
    assert (change["threshold"], change["status"], change["n_reference"]) == (1000.0, "ok", len(ref))


def test_a_custom_metric_on_an_unknown_column_exits_2_naming_it_and_writes_nothing(scored, capsys) -> None:
    before = metrics_of(scored, TINY).count()
    code = monitor(scored, TINY, "--set", "monitoring.custom_metrics.bad.sql=avg(no_such_column)")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "monitoring.custom_metrics.bad" in err[-1] and "no_such_column" in err[-1]
    assert metrics_of(scored, TINY).count() == before
    code = monitor(scored, TINY, "--set", "monitoring.custom_metrics.bad.sql=(SELECT max(x1) FROM jt__features)")
    assert code == 2
    assert "custom_metrics.bad" in capsys.readouterr().err.strip().splitlines()[-1]


def test_multivariate_drift_row_says_why_a_small_window_is_insufficient(scored) -> None:
    assert monitor(scored, D, *WINDOW) == 0
    row = by_key(metrics_of(scored, D))[("__multivariate__", "domain_auc")]
    assert row["status"] == "insufficient_data" and row["value"] is None and row["method"] == "domain_classifier"
    assert "expected at least 200 on each side" in row["reason"] and row["n_current"] == 160


def test_fairness_per_plan_equals_pandas_and_scikit_learn_on_the_window(scored) -> None:
    from sklearn.metrics import confusion_matrix

    env = scored
    assert monitor(env, D, *WINDOW, "--set", "monitoring.fairness.protected=[plan]",
                   "--set", "monitoring.fairness.min_rows=5", "--set", "monitoring.fairness.max_parity_difference=0.01"
                   ) == 0
    metrics = metrics_of(env, D)
    pdf = window_rows(env, D)
    labels = env["labels"]
    known = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp("2026-03-01", tz="UTC")]
    joined = pdf.merge(known.rename(columns={"churned": "y"})[[KEY, "as_of_date", "y"]], on=[KEY, "as_of_date"],
                       how="left")
    joined["plan"] = joined["plan"].fillna("__null__")
    rates: dict[str, dict[str, float]] = {"selection_rate": {}, "true_positive_rate": {}, "false_positive_rate": {}}
    for plan, part in joined.groupby("plan"):
        got = by_key(metrics, slice_=f"plan={plan}")
        predicted = (part["score"] >= 0.5).astype(int)
        want = {"selection_rate": (predicted.mean(), len(part))}
        lab = part.dropna(subset=["y"])
        tn, fp, fn, tp = confusion_matrix(lab["y"].astype(int), (lab["score"] >= 0.5).astype(int),
                                          labels=[0, 1]).ravel()
        want["true_positive_rate"] = (tp / (tp + fn) if tp + fn else None, tp + fn)
        want["false_positive_rate"] = (fp / (fp + tn) if fp + tn else None, fp + tn)
        for metric, (value, n) in want.items():
            row = got[("__fairness__", metric)]
            assert row["n_current"] == n, (plan, metric)
            if n >= 5:
                assert row["value"] == pytest.approx(value, abs=1e-12) and row["status"] == "ok", (plan, metric)
                rates[metric][plan] = value
            else:
                assert row["value"] is None and row["status"] == "insufficient_data"
    across = by_key(metrics, slice_="plan")
    sel, tpr = rates["selection_rate"], rates["true_positive_rate"]
    parity = across[("__fairness__", "demographic_parity_difference")]
    assert parity["value"] == pytest.approx(max(sel.values()) - min(sel.values()), abs=1e-12)
    assert parity["status"] == ("alert" if parity["value"] > 0.01 else "ok") and parity["threshold"] == 0.01
    assert across[("__fairness__", "demographic_parity_ratio")]["value"] == pytest.approx(
        min(sel.values()) / max(sel.values()), abs=1e-12)
    assert across[("__fairness__", "equal_opportunity_difference")]["value"] == pytest.approx(
        max(tpr.values()) - min(tpr.values()), abs=1e-12)
    assert across[("__fairness__", "equal_opportunity_difference")]["n_current"] == len(tpr)
    from driftline.jobs.monitor import report_path

    html = report_path(env["ws"], "jt", D).read_text()
    assert "<h2>Fairness: plan</h2>" in html and "demographic_parity_difference" in html


def test_importance_drift_on_the_matured_window_equals_scikit_learns_permutation_importance(scored) -> None:
    """02-22..02-25 is the newest window whose labels are all in by 03-01 (horizon 3 days): v1 re-scored there."""
    from scipy.stats import spearmanr
    from sklearn.inspection import permutation_importance

    from driftline.training import importance
    from driftline.training.pipeline import model_frame

    env = scored
    assert monitor(env, D, *WINDOW) == 0
    got = by_key(metrics_of(env, D), window_end=dt.date(2026, 2, 25))
    labels = env["labels"]
    known = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp("2026-03-01", tz="UTC")]
    rows = window_rows(env, dt.date(2026, 2, 25)).merge(
        known.rename(columns={"churned": "y"})[[KEY, "as_of_date", "y"]], on=[KEY, "as_of_date"])
    rows = rows.sort_values(["as_of_date", KEY], ignore_index=True)
    reg = registry_of(env, "jt")
    seed = load_config("jt", env["conf"]).config.training.sample_seed
    oracle = permutation_importance(reg.load("1"), model_frame(rows, ["x1", "x2"], ["plan"]), rows["y"].to_numpy(),
                                    scoring="neg_log_loss", n_repeats=5, random_state=seed)
    now = dict(zip(["x1", "x2", "plan"], oracle.importances_mean, strict=True))
    trained = importance.of_run(reg.client, reg.get("1").run_id)
    for column, value in now.items():
        row = got[(column, "importance")]
        assert row["value"] == pytest.approx(value, rel=1e-9, abs=1e-12), column
        assert row["n_current"] == len(rows) and row["model_version"] == "1"
    before = {c: i for i, c in enumerate(sorted(trained, key=lambda c: (-trained[c], c)), 1)}
    after = {c: i for i, c in enumerate(sorted(now, key=lambda c: (-now[c], c)), 1)}
    for column in now:
        assert got[(column, "importance_rank_change")]["value"] == before[column] - after[column]
    rho = got[("__dataset__", "importance_rank_correlation")]
    want = spearmanr([before[c] for c in sorted(now)], [after[c] for c in sorted(now)]).statistic
    assert rho["value"] == pytest.approx(want) and rho["threshold"] == 0.5
    assert rho["status"] == ("warn" if want < 0.5 else "ok")


def test_drift_per_segment_equals_each_segment_alone(scored, tmp_path) -> None:
    """Each segment of ``plan`` judged against its own reference profile: the raw drift and quality numbers equal
    drift.py on that segment's rows alone (a numpy profile of the window's rows of the segment, against the
    segment's stored reference profile), the adjusted p-values equal scipy's Benjamini–Hochberg over every
    (segment, column) p-value, and the whole-window rows are those of the run without segments."""
    import json
    from pathlib import Path

    from scipy.stats import false_discovery_control

    from driftline.monitoring.segments import ARTIFACT, from_artifact

    env = scored
    opts = (*WINDOW, "--set", "monitoring.drift.min_rows=20")
    assert monitor(env, D, *opts) == 0
    plain = metrics_of(env, D).filter(F.col("slice") == "__all__").drop(*VOLATILE, "config_hash")
    assert monitor(env, D, *opts, "--set", "monitoring.segment_drift.enabled=true") == 0
    metrics = metrics_of(env, D)
    segmented = metrics.filter(F.col("slice") == "__all__").drop(*VOLATILE, "config_hash")
    assert_approx_df_equality(segmented, plain, precision=1e-12, ignore_row_order=True, ignore_column_order=True)

    # the stored segment references partition the reference: rows and cell counts add up to the whole
    reg = registry_of(env, "jt")
    doc = json.loads(Path(reg.client.download_artifacts(reg.get("1").run_id, ARTIFACT, str(tmp_path))).read_text())
    refs = from_artifact(doc, ["plan"])["plan"]
    store = store_of(env)
    reference, _ = profile_from_rows([r.asDict() for r in read_reference_rows(store, "jt", "1").collect()])
    assert sum(p.rows for p in refs.profiles.values()) == reference.rows
    for c in ("x1", "score"):
        assert [sum(x) for x in zip(*(p.columns[c].bin_counts for p in refs.profiles.values()), strict=True)] == \
            list(reference.columns[c].bin_counts)

    columns = ["x1", "x2", "plan", "score"]
    bins = reference_bins(store, "jt", "1")
    pdf = window_rows(env, D)
    segment = pdf["plan"].astype(object).where(pdf["plan"].notna(), "__null__")
    segment = segment.where(segment.isin(refs.values), "__other__")
    spec = DriftSpec.from_config(load_config("jt", env["conf"], ["monitoring.drift.min_rows=20"]).config
                                 .monitoring.drift)
    raw: dict[tuple[str, str], float] = {}
    for seg, ref in refs.profiles.items():
        want = drift_rows(dataset_drift(ref, numpy_profile(pdf[segment == seg], columns, bins, ()), spec, columns))
        got = by_key(metrics, slice_=f"plan={seg}")
        assert got[("__dataset__", "rows")]["value"] == (segment == seg).sum()
        for w in want:
            if w["metric"] in ("pvalue_adjusted", "drift") or w["column"] == "__dataset__":
                continue   # decided by the joint procedure below
            g = got[(w["column"], w["metric"])]
            assert (g["value"] is None) == (w["value"] is None or math.isnan(w["value"])), (seg, w, g)
            if g["value"] is not None:
                assert g["value"] == pytest.approx(w["value"], rel=1e-9, abs=1e-12), (seg, w, g)
            assert (g["n_reference"], g["n_current"]) == (w["n_reference"], w["n_current"])
        for (column, metric), g in got.items():
            if metric in ("ks_pvalue", "chi2_pvalue") and g["status"] != "insufficient_data" and \
                    (column, "pvalue_adjusted") in got:
                raw[(seg, column)] = g["value"]
    assert len(raw) >= 4
    keys = sorted(raw)
    adjusted = false_discovery_control([raw[k] for k in keys], method="bh")
    for (seg, column), q in zip(keys, adjusted, strict=True):
        assert by_key(metrics, slice_=f"plan={seg}")[(column, "pvalue_adjusted")]["value"] == pytest.approx(q)
    text = (env["ws"].resolve() / "reports" / "jt" / f"{D}.html").read_text()
    assert "Drift per segment" in text and f"plan={keys[0][0]}" in text
