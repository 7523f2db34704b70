"""Late labels reach realized performance: monitor on matured labels, then the retrain policy's performance rule.

Model ``ml``: 40 customers a day, features 02-25..03-20 (written directly), ``label.horizon_days`` 14,
``monitoring.window_days`` 1. Every label arrives when its horizon ends (customers ``c % 8 == 0`` never
get one): as-of date A's label is known at A + 14 days 00:00 UTC, or a few hours later. Champion v1 is
trained for 03-20; the monitor runs once, on R = 03-20.

Labels count when known before R 00:00 UTC (strict, as the train job), so the latest as-of date with
labels is R − 15 = 03-05: the run looks at the 15 one-day windows 03-05..03-19 and only 03-05 has
labelled rows (35, one per labelled customer); 03-06's labels arrive at R 00:00, too late. Only the
dates that matter are scored (03-05, 03-06, 03-19 and R: a window without predictions is skipped), to
keep the test short. The oracle: the predictions joined in pandas with the labels known before R, AUC
from scikit-learn.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.metrics import roc_auc_score

from driftline.cli.runner import run_job
from driftline.registry.client import clear_cache
from driftline.tables import CommitInfo
from driftline.vocabulary import CHAMPION
from tests.jobs.test_score import registry_of, store_of
from tests.jobs.test_train import MODEL

pytestmark = pytest.mark.slow

U = dt.UTC
R = dt.date(2026, 3, 20)                       # the monitor run
HORIZON = 14
FIRST, MATURED = dt.date(2026, 2, 25), dt.date(2026, 3, 5)   # features from; R − 15, the last matured date
SCORED = [MATURED, MATURED + dt.timedelta(days=1), R - dt.timedelta(days=1), R]
CUSTOMERS = 40
ARRIVALS = {"ml_labels": dt.timedelta(0), "ml_labels_late": dt.timedelta(hours=3)}   # after the horizon ends
ML = {
    **MODEL, "name": "ml",
    "sources": {**MODEL["sources"],
                "labels": {"table": "ml_labels", "key": "customer_id", "timestamp": "label_ts", "value": "churned"}},
    "label": {"task": "classification", "horizon_days": HORIZON, "threshold": 0.5},
    # validation 03-03..03-05 (ends R − 15), training 02-25..03-02
    "training": {"train_days": 6, "validation_days": 3, "gap_days": 0, "min_train_rows": 50,
                 "min_validation_rows": 20, "gate": {"metric": "log_loss"}},
    "monitoring": {"drift": {"bins": 5, "top_k": 2, "min_rows": 30, "calibration_chunks": 3},
                   "performance": {"min_labels": 20}},
}


def job(env, name: str, *args: str) -> int:
    return run_job(name, ["--model", "ml", "--conf-dir", str(env["conf"]), *args])


def make_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features 02-25..03-20 and the churn outcome of every (customer, date); who gets a label is decided later."""
    rng = np.random.default_rng(21)
    feats, outcomes = [], []
    day = FIRST
    while day <= R:
        for c in range(CUSTOMERS):
            key = f"c{c:03d}"
            x1, x2, plan = float(rng.normal(10, 3)), float(rng.integers(0, 20)), str(rng.choice(["basic", "pro"]))
            feats.append((key, day, None if c == 5 and day == R else x1, x2, plan))    # a null row
            churned = int(rng.random() < 1 / (1 + np.exp(-(0.6 * (x1 - 10) + (0.8 if plan == "pro" else 0.0)))))
            outcomes.append((key, day, churned))
        day += dt.timedelta(days=1)
    return (pd.DataFrame(feats, columns=["customer_id", "as_of_date", "x1", "x2", "plan"]),
            pd.DataFrame(outcomes, columns=["customer_id", "as_of_date", "churned"]))


def labels_arriving(outcomes: pd.DataFrame, after_horizon: dt.timedelta) -> pd.DataFrame:
    """Each labelled customer's outcome, known ``after_horizon`` after as_of_date + 14 days 00:00 UTC."""
    labelled = outcomes[outcomes["customer_id"].str[1:].astype(int) % 8 != 0].copy()
    labelled["label_ts"] = [dt.datetime.combine(d + dt.timedelta(days=HORIZON), dt.time(), U) + after_horizon
                            for d in labelled["as_of_date"]]
    return labelled[["customer_id", "as_of_date", "label_ts", "churned"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def env(spark, tmp_path_factory: pytest.TempPathFactory):
    """Workspace with ``ml``'s features and both label tables, champion v1 (trained for R), `SCORED` scored."""
    ws, conf = tmp_path_factory.mktemp("matured-ws"), tmp_path_factory.mktemp("matured-conf")
    (conf / "models").mkdir()
    (conf / "base.yaml").write_text(yaml.safe_dump({"workspace": str(ws)}))
    (conf / "models" / "ml.yaml").write_text(yaml.safe_dump(ML))
    fpdf, outcomes = make_inputs()
    env = {"ws": ws, "conf": conf, "spark": spark, "outcomes": outcomes}
    store = store_of(env)
    commit = CommitInfo(job="test", run_id="setup", key="all", code_version="t", config_hash="t")
    fschema = T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("x1", T.DoubleType()), T.StructField("x2", T.DoubleType()),
        T.StructField("plan", T.StringType()), T.StructField("run_id", T.StringType()),
        T.StructField("config_hash", T.StringType()),
    ])
    frows = [(*r, "setup", "t") for r in fpdf.astype(object).where(fpdf.notna(), None).itertuples(index=False)]
    store.replace_partitions("ml__features", spark.createDataFrame(frows, fschema), ["as_of_date"], commit)
    lschema = T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("label_ts", T.TimestampType()), T.StructField("churned", T.IntegerType()),
    ])
    for table, after in ARRIVALS.items():
        lpdf = labels_arriving(outcomes, after)
        rows = [(k, d, ts.to_pydatetime(), int(v)) for k, d, ts, v in lpdf.itertuples(index=False)]
        store.append(table, spark.createDataFrame(rows, lschema), commit)
    clear_cache()
    assert job(env, "train", "--date", str(R)) == 0
    reg = registry_of(env, "ml")
    if reg.alias(CHAMPION) is None:                  # v1's gate against the baseline is not what this is about
        reg.promote("1", "test")
    for first, last in (SCORED[:2], SCORED[2:]):
        assert job(env, "score", "--from", str(first), "--to", str(last)) == 0
    return env


def performance_by_window(env) -> dict[dt.date, dict[str, float | None]]:
    """window_end → metric → value of the ``__performance__`` rows the run on R wrote (whole population)."""
    rows = store_of(env).read("monitor_metrics").filter(
        (F.col("model") == "ml") & (F.col("run_date") == R) & (F.col("column") == "__performance__")
        & (F.col("baseline") == "reference") & (F.col("slice") == "__all__")).collect()
    out: dict[dt.date, dict[str, float | None]] = {}
    for r in rows:
        out.setdefault(r["window_end"], {})[r["metric"]] = r["value"]
    return out


@pytest.mark.parametrize("table", list(ARRIVALS))
def test_labels_arriving_when_the_horizon_ends_reach_monitor_and_retrain(env, table: str) -> None:
    labels = ("--set", f"sources.labels.table={table}")
    assert job(env, "monitor", "--date", str(R), *labels) == 0
    got = performance_by_window(env)
    # the run's own window and those of the 15 before it that were scored, back to the last as-of date whose
    # whole horizon ended before R (the windows of 03-07..03-18 have no predictions: skipped)
    assert sorted(got) == SCORED
    # the oracle: the champion's scores of each window joined with the labels known before R 00:00 UTC
    preds = store_of(env).read("ml__predictions").filter(F.col("role") == "champion").toPandas()
    known = labels_arriving(env["outcomes"], ARRIVALS[table])
    known = known[known["label_ts"] < pd.Timestamp(dt.datetime.combine(R, dt.time(), U))]
    joined = preds.merge(known.rename(columns={"as_of_date": "score_date"}), on=["customer_id", "score_date"])
    labelled = {d: int((joined["score_date"] == d).sum()) for d in SCORED}
    assert labelled == {d: (35 if d == MATURED else 0) for d in SCORED}   # 03-06's labels come at R 00:00 or later
    assert {d: got[d]["labelled_rows"] for d in got} == {d: float(n) for d, n in labelled.items()}
    window = joined[joined["score_date"] == MATURED]
    auc = roc_auc_score(window["churned"], window["score"])
    assert got[MATURED]["auc"] == pytest.approx(auc, rel=1e-12)
    assert got[MATURED]["label_coverage"] == pytest.approx(35 / 40)
    assert all(got[d]["auc"] is None for d in got if d != MATURED)        # no labels: insufficient, no value

    # the retrain policy judges that window: AUC below a bound just above it triggers the rule (recorded only:
    # retrain.enabled false, so nothing is trained)
    bound = round(auc + 0.01, 6)
    policy = (*labels, "--set", "retrain.enabled=false", "--set", "retrain.drift.enabled=false",
              "--set", "retrain.performance.enabled=true", "--set", f"retrain.performance.min={bound}",
              "--set", "retrain.performance.min_labels=20")
    assert job(env, "retrain", "--date", str(R), *policy) == 0
    [row] = store_of(env).read("retrain_decisions").filter((F.col("model") == "ml")
                                                            & (F.col("decision_date") == R)).collect()
    assert (row["status"], row["fired"], row["labelled_rows"]) == ("disabled", False, 35.0)
    assert row["performance_value"] == got[MATURED]["auc"]
    perf = json.loads(row["inputs_json"])["performance"]
    assert perf == {"run_date": str(R), "window_end": str(MATURED), "metric": "auc", "value": got[MATURED]["auc"],
                    "labelled_rows": 35.0, "window_start": str(MATURED)}
    rule = {r["rule"]: r for r in json.loads(row["rules_json"])}["performance"]
    assert rule["status"] == "triggered"
    assert rule["detail"] == (f"auc={got[MATURED]['auc']:.6g} on window ending {MATURED} (labels matured by {R}) "
                              f"(35 labels); expected >= {bound} — outside the bound")
