"""The train job end to end: Delta inputs in a tmp workspace → MLflow run + version → profile → gate.

The oracle is an independent pandas reconstruction of the training set (matured labels, windows)
fitted with scikit-learn and scored with scikit-learn's metrics. Leakage traps are planted in the
inputs: labels known on/after D and feature rows after the validation window carry inverted labels,
so using any of them would change the fitted model and every metric.
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from pyspark.sql import types as T
from sklearn.inspection import permutation_importance
from sklearn.metrics import log_loss, roc_auc_score

from driftline.cli.models import models_command
from driftline.cli.runner import run_job
from driftline.config import load_config
from driftline.jobs import train as job
from driftline.jobs.context import JobContext, new_run_id
from driftline.profiling.bins import bins_from_json, edge_probs
from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
from driftline.registry.profiles import read_reference_rows, reference_bins
from driftline.tables import CommitInfo, open_store
from driftline.tables.spec import StorageConfig
from driftline.training.pipeline import build_pipeline, model_frame, predict_scores
from driftline.training.spec import EstimatorConfig
from driftline.vocabulary import CHAMPION, PREVIOUS
from tests.payload import Payload

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

U = dt.UTC
D = dt.date(2026, 3, 1)
HORIZON = 3
# windows for D: validation 02-22..02-25 (ends HORIZON + 1 days before D), training 02-12..02-21
TRAIN = (dt.date(2026, 2, 12), dt.date(2026, 2, 21))
VAL = (dt.date(2026, 2, 22), dt.date(2026, 2, 25))
FIRST_DAY, LAST_DAY = dt.date(2026, 2, 8), dt.date(2026, 3, 1)
ENTITIES = 40

MODEL = {
    "name": "jt",
    "entity_key": "customer_id",
    "sources": {
        "events": {"table": "jt_events", "key": "customer_id", "timestamp": "event_ts"},
        "labels": {"table": "jt_labels", "key": "customer_id", "timestamp": "label_ts", "value": "churned"},
    },
    "features": [
        {"name": "x1", "kind": "aggregate", "agg": "sum", "column": "amount", "window": "7d"},
        {"name": "x2", "kind": "aggregate", "agg": "count", "window": "7d"},
        {"name": "plan", "kind": "attribute", "column": "plan", "categorical": True},
    ],
    "label": {"task": "classification", "horizon_days": HORIZON, "threshold": 0.5},
    "estimator": {"type": "logistic_regression", "params": {"C": 1.0}, "seed": 3},
    "training": {"train_days": 10, "validation_days": 4, "gap_days": 0, "min_train_rows": 50,
                 "min_validation_rows": 20, "gate": {"metric": "log_loss"}},
    # 3 calibration chunks of ~5 reference days (~160 rows each, above min_rows); performance per plan
    "monitoring": {"drift": {"bins": 5, "top_k": 2, "tail_buckets": 0, "calibration_chunks": 3}, "segments": ["plan"]},
}




def make_inputs(seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature rows for every day 02-08..03-01 and labels, including the leakage traps."""
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    day = FIRST_DAY
    while day <= LAST_DAY:
        for e in range(ENTITIES):
            key = f"c{e:03d}"
            x1 = float(rng.normal(10, 3))
            x2 = float(rng.integers(0, 20))
            plan = str(rng.choice(["basic", "pro", "team"]))
            if rng.random() < 0.08:
                x1 = None                                   # nulls in features
            if rng.random() < 0.05:
                plan = None
            feats.append((key, day, x1, x2, plan))
            score = 0.5 * ((x1 if x1 is not None else 10.0) - 10) + (0.8 if plan == "pro" else 0.0)
            y = int(rng.random() < 1 / (1 + np.exp(-score)))
            known = dt.datetime.combine(day + dt.timedelta(days=HORIZON), dt.time(), U) - dt.timedelta(hours=1)
            if day > VAL[1]:
                # trap 1: feature dates after the validation window with already-known, inverted labels
                labels.append((key, day, dt.datetime.combine(day, dt.time(1), U), 1 - y))
                continue
            labels.append((key, day, known, y))
            if e % 4 == 0:
                # trap 2: a later correction of the label, known only on D → must not be used
                labels.append((key, day, dt.datetime.combine(D, dt.time(), U), 1 - y))
            if e % 7 == 0 and TRAIN[0] <= day <= VAL[1]:
                # trap 3: an entity/date whose only label becomes known after D → row not in the set
                labels[-1 if e % 4 else -2] = (key, day, dt.datetime.combine(D, dt.time(6), U), 1 - y)
        day += dt.timedelta(days=1)
    fpdf = pd.DataFrame(feats, columns=["customer_id", "as_of_date", "x1", "x2", "plan"])
    lpdf = pd.DataFrame(labels, columns=["customer_id", "as_of_date", "label_ts", "churned"])
    return fpdf, lpdf


def oracle_sets(fpdf: pd.DataFrame, lpdf: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Independent pandas reconstruction of the training and validation sets."""
    cutoff = pd.Timestamp(dt.datetime.combine(D, dt.time(), U))
    matured = lpdf[pd.to_datetime(lpdf["label_ts"], utc=True) < cutoff]
    latest = (matured.sort_values("label_ts").groupby(["customer_id", "as_of_date"], as_index=False).last()
              .rename(columns={"churned": "label"})[["customer_id", "as_of_date", "label"]])
    data = fpdf.merge(latest, on=["customer_id", "as_of_date"], how="inner")

    def window(lo: dt.date, hi: dt.date) -> pd.DataFrame:
        part = data[(data["as_of_date"] >= lo) & (data["as_of_date"] <= hi)]
        return part.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)

    return window(*TRAIN), window(*VAL)


@pytest.fixture(scope="module")
def env(spark, tmp_path_factory: pytest.TempPathFactory):
    ws = tmp_path_factory.mktemp("train-ws")
    conf = tmp_path_factory.mktemp("train-conf")
    (conf / "models").mkdir()
    (conf / "base.yaml").write_text(yaml.safe_dump({"workspace": str(ws)}))
    (conf / "models" / "jt.yaml").write_text(yaml.safe_dump(MODEL))
    fpdf, lpdf = make_inputs()
    store = open_store(spark, StorageConfig(), ws)
    commit = CommitInfo(job="test", run_id="setup", key="all", code_version="t", config_hash="t")
    fschema = T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("x1", T.DoubleType()), T.StructField("x2", T.DoubleType()),
        T.StructField("plan", T.StringType()), T.StructField("run_id", T.StringType()),
        T.StructField("config_hash", T.StringType()),
    ])
    frows = [(*r, "setup", "t") for r in fpdf.astype(object).where(fpdf.notna(), None).itertuples(index=False)]
    store.replace_partitions("jt__features", spark.createDataFrame(frows, fschema), ["as_of_date"], commit)
    lschema = T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("label_ts", T.TimestampType()), T.StructField("churned", T.IntegerType()),
    ])
    lrows = [(k, d, ts.to_pydatetime(), int(v)) for k, d, ts, v in lpdf.itertuples(index=False)]
    store.append("jt_labels", spark.createDataFrame(lrows, lschema), commit)
    clear_cache()
    return {"ws": ws, "conf": conf, "spark": spark, "features": fpdf, "labels": lpdf}


def train(env, *overrides: str, force: bool = False) -> None:
    loaded = load_config("jt", env["conf"], list(overrides))
    started = dt.datetime.now(U).replace(microsecond=0)
    ctx = JobContext(job="train", loaded=loaded, dates=(D,), spark=env["spark"],
                     run_id=new_run_id("train", started), started_at=started, force=force)
    job.run(ctx)


def run_train(env, *args: str) -> int:
    """``driftline train`` through the shared runner."""
    return run_job("train", ["--model", "jt", "--date", D.isoformat(), "--conf-dir", str(env["conf"]), *args])


def registry(env) -> ModelRegistry:
    cfg = load_config("jt", env["conf"]).config
    return ModelRegistry(tracking_setup(cfg.mlflow, env["ws"]), "jt")


def run_of(env, version: str):
    reg = registry(env)
    return reg.client.get_run(reg.get(version).run_id)


def oracle_model(train_pdf: pd.DataFrame, c: float):
    est = EstimatorConfig(type="logistic_regression", params={"C": c}, seed=3)
    x = model_frame(train_pdf, ["x1", "x2"], ["plan"])
    return build_pipeline(est, ["x1", "x2"], ["plan"]).fit(x, train_pdf["label"].astype(int))


def check_calibration(store, ref: pd.DataFrame, bins) -> None:
    """Stored calibrated thresholds of v1 = thresholds.py's mean + 3σ over the reference cut into 3 runs of days,
    each chunk profiled here with numpy on the stored bins (features only: the prediction needs the model)."""
    from driftline.monitoring.thresholds import calibrate_thresholds
    from driftline.profiling.stored import CALIBRATION_STATS, profile_from_rows
    from driftline.profiling.types import DatasetProfile
    from tests.jobs.test_monitor import numpy_profile

    stored = [r.asDict() for r in read_reference_rows(store, "jt", "1").collect()]
    reference, quantiles = profile_from_rows([r for r in stored if r["stat"] not in CALIBRATION_STATS])
    columns = ["x1", "x2", "plan"]
    days = sorted(ref["as_of_date"].unique())
    assert len(days) == 14
    chunks = [numpy_profile(ref[ref["as_of_date"].isin(part)], columns, bins, quantiles)
              for part in (days[:5], days[5:10], days[10:])]           # 3 contiguous runs of whole days
    want = calibrate_thresholds(DatasetProfile(reference.rows, {c: reference.columns[c] for c in columns}), chunks,
                                k=3.0, min_rows=100)
    assert {(c.column, c.metric) for c in want} >= {("x1", "psi"), ("x1", "wasserstein_norm"), ("plan", "js_distance")}
    got = {(r["column"], r["category"], r["stat"]): r for r in stored if r["stat"] in CALIBRATION_STATS}
    assert {(c, m) for c, m, _ in got if c != "score"} == {(c.column, c.metric) for c in want}
    for c in want:
        for stat, value in (("calibrated_threshold", c.threshold), ("calibration_mean", c.mean),
                            ("calibration_std", c.std)):
            row = got[(c.column, c.metric, stat)]
            assert row["value"] == pytest.approx(value, rel=1e-9) and row["bin"] == 3, (c, row)


def test_train_job_end_to_end(env, capsys) -> None:
    train_pdf, val_pdf = oracle_sets(env["features"], env["labels"])
    x_val = model_frame(val_pdf, ["x1", "x2"], ["plan"])
    y_val = val_pdf["label"].astype(int).to_numpy()

    # 1. first model (weak, C=1e-3) against the prior baseline → passes, becomes champion v1
    train(env, "estimator.params.C=0.001")
    reg = registry(env)
    v1 = reg.get("1")
    assert reg.alias(CHAMPION).version == "1" and reg.alias(PREVIOUS) is None
    assert v1.tags["driftline.gate.passed"] == "true" and v1.tags["driftline.gate.reference_kind"] == "baseline"
    run1 = run_of(env, "1")
    weak = oracle_model(train_pdf, 0.001)
    p_weak = predict_scores(weak, x_val, "classification")
    # no leakage: exactly the oracle's rows, and metrics equal to the oracle's fit on them
    assert int(run1.data.params["train_rows"]) == len(train_pdf)
    assert int(run1.data.params["validation_rows"]) == len(val_pdf)
    assert run1.data.metrics["val_log_loss"] == pytest.approx(log_loss(y_val, p_weak), rel=1e-9)
    assert run1.data.metrics["val_auc"] == pytest.approx(roc_auc_score(y_val, p_weak), rel=1e-9)
    # permutation importance on the validation rows: scikit-learn's on the oracle's fit, same scoring and seed
    oracle_imp = permutation_importance(weak, x_val, y_val, scoring="neg_log_loss", n_repeats=5, random_state=42)
    for column, mean, std in zip(x_val.columns, oracle_imp.importances_mean, oracle_imp.importances_std,
                                 strict=True):
        assert run1.data.metrics[f"importance.{column}"] == pytest.approx(mean, rel=1e-9, abs=1e-12), column
        assert run1.data.metrics[f"importance_std.{column}"] == pytest.approx(std, rel=1e-9, abs=1e-12), column
    prior = train_pdf["label"].mean()
    assert run1.data.metrics["baseline_val_log_loss"] == pytest.approx(log_loss(y_val, np.full(len(y_val), prior)))
    # provenance tags on the run
    t = run1.data.tags
    assert t["driftline.train_window"] == "2026-02-12..2026-02-21"
    assert t["driftline.validation_window"] == "2026-02-22..2026-02-25"
    assert t["driftline.table_version.jt__features"] == "0" and t["driftline.table_version.jt_labels"] == "0"
    assert t["driftline.model_name"] == "jt" and t["driftline.config_hash"] and t["driftline.code_version"]
    assert t["driftline.artifact_sha256"] == v1.sha256
    # signature and input example were logged with the model
    model_info = mlflow.models.get_model_info("models:/jt/1")
    assert [c.name for c in model_info.signature.inputs.inputs] == ["x1", "x2", "plan"]
    assert model_info.saved_input_example_info is not None
    assert np.array_equal(predict_scores(reg.load("1"), x_val, "classification"), p_weak)

    # reference profile of v1 against numpy/pandas on the oracle's reference rows
    ref = pd.concat([train_pdf, val_pdf], ignore_index=True)
    rows = open_store(env["spark"], StorageConfig(), env["ws"]).read(
        "reference_profiles").filter("model = 'jt' and model_version = '1'").toPandas()
    x1 = rows[(rows["column"] == "x1") & (rows["stat"] == "bin_count")].sort_values("bin")
    inner = x1[x1["lower"].notna() & x1["upper"].notna()]           # bins 0..n-1 (−1/n: under/overflow)
    edges = [*inner["lower"], inner["upper"].iloc[-1]]
    vals = ref["x1"].dropna().to_numpy()
    # 5 equal-probability bins and finer edges in both tails (quantile ties dropped on 100-odd values)
    # ... and the maximum in a cell of its own: edges end max, max⁺ (the next double)
    assert edges[0] == vals.min() and edges[-2] == vals.max() and edges[-1] == math.nextafter(vals.max(), math.inf)
    assert 7 <= len(edges) <= 3 + len(edge_probs(5))
    assert np.all(np.diff(edges) > 0)
    assert inner["value"].tolist() == np.histogram(vals, bins=edges)[0].tolist()
    assert x1[x1["bin"] == -1]["value"].item() == 0 and x1[x1["bin"] == len(edges) - 1]["value"].item() == 0

    def stat(col: str, name: str) -> float:
        return rows[(rows["column"] == col) & (rows["stat"] == name)]["value"].item()

    assert stat("x1", "null_rate") == pytest.approx(ref["x1"].isna().mean())
    assert stat("x1", "mean") == pytest.approx(vals.mean())
    assert stat("x2", "count") == len(ref)
    plan = rows[(rows["column"] == "plan") & (rows["stat"] == "category_count")].sort_values("bin")
    vc = ref["plan"].value_counts()
    assert plan["category"].tolist() == [*vc.index[:2], "__other__"]
    assert plan["value"].tolist() == [*vc.iloc[:2].tolist(), vc.iloc[2:].sum()]
    assert stat("plan", "null_rate") == pytest.approx(ref["plan"].isna().mean())
    pred = rows[(rows["column"] == "score") & (rows["stat"] == "bin_count")]
    assert set(rows[rows["column"] == "score"]["role"]) == {"score"}
    assert pred["value"].sum() == len(ref) and stat("score", "null_count") == 0
    assert set(rows["mlflow_run_id"]) == {run1.info.run_id}
    # monitoring gets the same bins back from the table and from the MLflow artifact
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    stored = reference_bins(store, "jt", "1")
    assert stored == bins_from_json(mlflow.artifacts.load_text(f"{run1.info.artifact_uri}/reference_profile/bins.json"))
    assert stored["x1"].edges == tuple(edges) and stored["plan"].categories == tuple(vc.index[:2])
    check_calibration(store, ref, stored)

    # 2. a rerun for the same date, config and inputs (through the shared runner) does nothing
    assert run_train(env, "--set", "estimator.params.C=0.001") == 0
    assert [v.version for v in reg.versions()] == ["1"]
    # ... also after the features are rewritten with the same rows (a new table version, same training rows)
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    same = store.read("jt__features").localCheckpoint()
    store.replace_partitions("jt__features", same, ["as_of_date"],
                             CommitInfo(job="test", run_id="rewrite", key="same", code_version="t", config_hash="t"))
    assert store.version("jt__features") == 1
    assert run_train(env, "--set", "estimator.params.C=0.001") == 0
    assert [v.version for v in reg.versions()] == ["1"]
    assert len(v1.tags["driftline.training_rows_sha256"]) == 64

    # 3. a better challenger (C=1) passes: champion v2, previous v1
    train(env)
    strong = oracle_model(train_pdf, 1.0)
    p_strong = predict_scores(strong, x_val, "classification")
    run2 = run_of(env, "2")
    assert run2.data.metrics["val_log_loss"] == pytest.approx(log_loss(y_val, p_strong), rel=1e-9)
    assert log_loss(y_val, p_strong) < log_loss(y_val, p_weak)
    assert (reg.alias(CHAMPION).version, reg.alias(PREVIOUS).version) == ("2", "1")
    v2 = reg.get("2").tags
    assert v2["driftline.gate.passed"] == "true" and v2["driftline.gate.reference_version"] == "1"
    assert float(v2["driftline.gate.reference"]) == pytest.approx(log_loss(y_val, p_weak), rel=1e-9)

    # 4. the same config again (--force): reproducible, equal → rejected, champion kept
    train(env, force=True)
    run3 = run_of(env, "3")
    assert run3.data.metrics == run2.data.metrics
    assert np.array_equal(predict_scores(reg.load("3"), x_val, "classification"),
                          predict_scores(reg.load("2"), x_val, "classification"))
    v3 = reg.get("3").tags
    assert v3["driftline.gate.passed"] == "false" and "equal to champion v2" in v3["driftline.gate.reason"]
    assert run3.data.tags["driftline.gate.passed"] == "false"
    assert reg.alias(CHAMPION).version == "2"

    # 5. a worse challenger (C=1e-3 again, forced) → rejected with the numbers, champion kept (R25)
    train(env, "estimator.params.C=0.001", force=True)
    v4 = reg.get("4").tags
    assert v4["driftline.gate.passed"] == "false" and "worse than champion v2" in v4["driftline.gate.reason"]
    assert float(v4["driftline.gate.challenger"]) == pytest.approx(log_loss(y_val, p_weak), rel=1e-9)
    assert (reg.alias(CHAMPION).version, reg.alias(PREVIOUS).version) == ("2", "1")

    # 6. rollback restores the old champion
    args = ["--model", "jt", "--conf-dir", str(env["conf"])]
    assert models_command(["rollback", *args]) == 0
    assert reg.alias(CHAMPION).version == "1"
    assert "rolled back champion v2 → v1" in capsys.readouterr().out

    # 7. a tampered champion artifact (R16/R17): the payload never runs, the gate fails with the
    #    reason recorded on the new version, the job exits 1, the champion stays
    clear_cache()
    champion_file = Path(reg.artifact_uri(reg.get("1")).removeprefix("file://"))
    original = champion_file.read_bytes()
    marker = env["ws"] / "pwned-marker"
    champion_file.write_bytes(pickle.dumps(Payload(marker)))
    try:
        assert run_train(env, "--set", "estimator.params.C=0.5") == 1
    finally:
        champion_file.write_bytes(original)
    assert not marker.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("driftline train: error: model artifact file://") and "of jt v1: expected SHA-256" in err
    v5 = reg.get("5").tags
    assert v5["driftline.gate.passed"] == "false"
    assert v5["driftline.gate.reason"].startswith("champion artifact refused: model artifact")
    assert reg.alias(CHAMPION).version == "1"
    assert reg.load_alias()[0].version == "1"


def test_config_problems_fail_before_spark(env) -> None:
    from driftline.errors import ConfigError

    loaded = load_config("jt", env["conf"])
    cfg = loaded.config.model_copy(update={"training": loaded.config.training.model_copy(
        update={"gate": loaded.config.training.gate.model_copy(update={"metric": "rmse"})})})
    with pytest.raises(ConfigError, match=r"training.gate.metric: expected one of auc, .* found 'rmse'"):
        job.plan_training(cfg)


def test_too_few_rows_fails_with_one_line_and_registers_nothing(env, capsys) -> None:
    before = [v.version for v in registry(env).versions()]
    code = run_job("train", ["--model", "jt", "--date", "2026-02-10", "--conf-dir", str(env["conf"]),
                             "--set", "estimator.params.C=0.5"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("driftline train: error: training set (2026-01-24..2026-02-02): expected at least 50 rows "
                   "with matured labels (training.min_train_rows), found 0")
    assert [v.version for v in registry(env).versions()] == before


def test_regression_model_against_the_mean_baseline(env, tmp_path) -> None:
    """Same inputs as a regression task (ridge, gate on rmse) in a separate MLflow store."""
    from sklearn.metrics import mean_squared_error

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    overrides = ["label.task=regression", "estimator.type=ridge", "estimator.params={alpha: 2.0}",
                 "training.gate.metric=null",
                 f"mlflow.tracking_uri={uri}"]
    train(env, *overrides)
    cfg = load_config("jt", env["conf"], overrides).config
    reg = ModelRegistry(tracking_setup(cfg.mlflow, env["ws"]), "jt")
    train_pdf, val_pdf = oracle_sets(env["features"], env["labels"])
    est = EstimatorConfig(type="ridge", params={"alpha": 2.0}, seed=3)
    oracle = build_pipeline(est, ["x1", "x2"], ["plan"]).fit(
        model_frame(train_pdf, ["x1", "x2"], ["plan"]), train_pdf["label"].to_numpy(dtype=float))
    pred = oracle.predict(model_frame(val_pdf, ["x1", "x2"], ["plan"]))
    y = val_pdf["label"].to_numpy(dtype=float)
    rmse = mean_squared_error(y, pred) ** 0.5
    base = mean_squared_error(y, np.full(len(y), train_pdf["label"].mean())) ** 0.5
    run = reg.client.get_run(reg.get("1").run_id)
    assert run.data.metrics["val_rmse"] == pytest.approx(rmse, rel=1e-9)
    assert run.data.metrics["baseline_val_rmse"] == pytest.approx(base, rel=1e-9)
    assert set(run.data.metrics) >= {"val_rmse", "val_mae", "val_r2"} and "val_auc" not in run.data.metrics
    x_val = model_frame(val_pdf, ["x1", "x2"], ["plan"])
    imp = permutation_importance(oracle, x_val, y, scoring="neg_root_mean_squared_error", n_repeats=5,
                                 random_state=42)
    assert [run.data.metrics[f"importance.{c}"] for c in x_val.columns] == pytest.approx(
        list(imp.importances_mean), rel=1e-9, abs=1e-12)
    tags = reg.get("1").tags
    assert tags["driftline.gate.metric"] == "rmse" and tags["driftline.gate.direction"] == "lower"
    assert rmse < base                                  # the data has signal: the first model beats the mean
    assert tags["driftline.gate.passed"] == "true" and tags["driftline.gate.reference_kind"] == "baseline"
    assert reg.alias(CHAMPION).version == "1"


def test_fairness_on_the_validation_window_is_recorded_and_gates_the_promotion(env, tmp_path) -> None:
    """monitoring.fairness.gate: the first model beats the baseline but a plan gap above the bound keeps it out."""
    uri = f"sqlite:///{tmp_path / 'fair.db'}"
    overrides = ["monitoring.fairness.protected=[plan]", "monitoring.fairness.min_rows=5",
                 "monitoring.fairness.max_parity_difference=0.0", "monitoring.fairness.gate=true",
                 f"mlflow.tracking_uri={uri}"]
    train(env, *overrides)
    cfg = load_config("jt", env["conf"], overrides).config
    reg = ModelRegistry(tracking_setup(cfg.mlflow, env["ws"]), "jt")
    train_pdf, val_pdf = oracle_sets(env["features"], env["labels"])
    scores = oracle_model(train_pdf, 1.0).predict_proba(model_frame(val_pdf, ["x1", "x2"], ["plan"]))[:, 1]
    val = val_pdf.assign(selected=(scores >= 0.5).astype(float), plan=val_pdf["plan"].fillna("__null__"))
    sizes = val.groupby("plan").size()
    rates = val.groupby("plan")["selected"].mean()[sizes >= 5]
    run = reg.client.get_run(reg.get("1").run_id)
    assert run.data.metrics["fairness.plan.demographic_parity_difference"] == pytest.approx(
        rates.max() - rates.min(), abs=1e-9)
    assert run.data.metrics["fairness.plan.demographic_parity_ratio"] == pytest.approx(
        rates.min() / rates.max(), abs=1e-9)
    tags = reg.get("1").tags
    assert rates.max() > rates.min()
    assert tags["driftline.gate.passed"] == "false"
    assert "refused by the fairness gate" in tags["driftline.gate.reason"]
    assert "plan demographic_parity_difference" in tags["driftline.gate.reason"]
    assert reg.alias(CHAMPION) is None


def test_labels_with_their_own_as_of_column_name_train_the_same_model(env, tmp_path) -> None:
    """sources.labels.as_of: a labels table whose as-of column is `prediction_date` (a TIMESTAMP at midnight UTC)."""
    from pyspark.sql import functions as F

    store = open_store(env["spark"], StorageConfig(), env["ws"])
    renamed = (store.read("jt_labels").withColumn("prediction_date", F.col("as_of_date").cast("timestamp"))
               .drop("as_of_date"))
    commit = CommitInfo(job="test", run_id="setup", key="renamed", code_version="t", config_hash="t")
    if not store.exists("jt_labels_renamed"):
        store.append("jt_labels_renamed", renamed.localCheckpoint(), commit)
    uri = f"sqlite:///{tmp_path / 'asof.db'}"
    overrides = ["sources.labels.table=jt_labels_renamed", "sources.labels.as_of=prediction_date",
                 f"mlflow.tracking_uri={uri}"]
    train(env, *overrides)
    cfg = load_config("jt", env["conf"], overrides).config
    reg = ModelRegistry(tracking_setup(cfg.mlflow, env["ws"]), "jt")
    run = reg.client.get_run(reg.get("1").run_id)
    train_pdf, val_pdf = oracle_sets(env["features"], env["labels"])
    scores = oracle_model(train_pdf, 1.0).predict_proba(model_frame(val_pdf, ["x1", "x2"], ["plan"]))[:, 1]
    assert int(run.data.params["validation_rows"]) == len(val_pdf)
    assert run.data.metrics["val_auc"] == pytest.approx(roc_auc_score(val_pdf["label"], scores), rel=1e-9)
    bad = run_train(env, "--set", "sources.labels.table=jt_labels_renamed")   # as_of_date is not there
    assert bad == 2
