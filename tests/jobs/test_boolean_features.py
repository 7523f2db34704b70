"""Boolean features end to end: prepare_features → train → pipeline (prepare_features, score, monitor, retrain).

Model ``fb``: 100 customers, each with one or two events a day, a boolean ``autopay`` attribute
(customers ``c % 3 == 0``) and features

- ``is_big`` (kind ``flag``, always boolean): the day before's largest amount is above 20. A customer's
  day is "big" (one amount in 25..35, the others in 5..15) for ``c % 5 == 0`` — 20 % of customers —
  except on 03-02, when ``c % 5 in (0, 1)`` are: the flag's true share doubles on 03-03, to 40 %;
- ``is_autopay`` (an attribute, boolean, a numeric model input) and ``autopay_cat`` (the same column
  as a categorical input);
- ``x1``, ``x2``, ``top_amount`` (numeric aggregates) and ``plan`` (categorical).

Features are prepared for 02-17..02-27 and champion v1 trained for 03-01 (labels arrive three days
after the as-of date); then ``pipeline`` runs 03-03 (prepare_features, score, monitor, retrain).
Policy: the drift-weighted score on ``is_big`` alone, one window: it fires when the monitor finds the
flag drifted, and the retrain trains a challenger on the same boolean features.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.cli.runner import run_job
from driftline.registry.client import clear_cache
from driftline.tables import CommitInfo, open_store
from driftline.tables.spec import StorageConfig
from driftline.training.pipeline import model_frame, predict_scores
from driftline.vocabulary import CHAMPION
from tests.jobs.test_score import registry_of

pytestmark = pytest.mark.slow

U = dt.UTC
CUSTOMERS = 100
FIRST_EVENTS, FIRST_FEATURES, TRAIN_DATE = dt.date(2026, 2, 10), dt.date(2026, 2, 17), dt.date(2026, 3, 1)
LAST_FEATURES = dt.date(2026, 2, 27)                 # the retrain on 03-03 validates on 02-25..02-27
SHIFT_DAY = dt.date(2026, 3, 2)                      # events of 03-02: twice as many big days
DRIFTED = dt.date(2026, 3, 3)                        # the pipeline's date: its features see the shift
BOOLEAN = ("is_big", "is_autopay")                   # boolean columns the model takes as numbers
FB = {
    "name": "fb",
    "entity_key": "customer_id",
    "sources": {
        "events": {"table": "fb_events", "key": "customer_id", "timestamp": "event_ts"},
        "entities": {"table": "fb_customers", "key": "customer_id"},
        "labels": {"table": "fb_labels", "key": "customer_id", "timestamp": "label_ts", "value": "churned"},
    },
    "features": [
        {"name": "x1", "kind": "aggregate", "agg": "sum", "column": "amount", "window": "7d"},
        {"name": "x2", "kind": "aggregate", "agg": "count", "window": "7d"},
        {"name": "top_amount", "kind": "aggregate", "agg": "max", "column": "amount", "window": "1d"},
        {"name": "is_big", "kind": "flag", "column": "top_amount", "op": "gt", "value": 20},
        {"name": "plan", "kind": "attribute", "column": "plan", "categorical": True},
        {"name": "is_autopay", "kind": "attribute", "column": "autopay"},
        {"name": "autopay_cat", "kind": "attribute", "column": "autopay", "categorical": True},
    ],
    "label": {"task": "classification", "horizon_days": 3, "threshold": 0.5},
    "estimator": {"type": "logistic_regression", "params": {"C": 1.0}, "seed": 3},
    # validation 02-23..02-25 (ends horizon + 1 days before 03-01), training 02-17..02-22
    "training": {"train_days": 6, "validation_days": 3, "gap_days": 0, "min_train_rows": 100,
                 "min_validation_rows": 50, "gate": {"metric": "log_loss"}},
    "monitoring": {"drift": {"bins": 5, "top_k": 3, "min_rows": 50, "calibration_chunks": 3}},
    "retrain": {"drift": {"enabled": False},
                "drift_score": {"enabled": True, "threshold": 0.5, "k": 1, "n": 1, "weights": {"is_big": 1.0},
                                "default_weight": 0.0}},
}


def big(c: int, day: dt.date) -> bool:
    """Whether customer ``c`` has a big amount on ``day``: 20 % of customers, 40 % on the shift day."""
    return c % 5 == 0 or (day == SHIFT_DAY and c % 5 == 1)


def inputs() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Events 02-10..03-02, customers (boolean ``autopay``), labels for as-of dates 02-17..03-03."""
    rng = np.random.default_rng(17)
    events, labels = [], []
    day = FIRST_EVENTS
    while day <= DRIFTED:
        for c in range(CUSTOMERS):
            key = f"c{c:03d}"
            if day <= SHIFT_DAY:
                hours = sorted(rng.choice(24, size=int(rng.integers(1, 3)), replace=False))
                for i, h in enumerate(hours):
                    amount = float(rng.uniform(25, 35) if big(c, day) and i == 0 else rng.uniform(5, 15))
                    events.append((key, dt.datetime.combine(day, dt.time(int(h)), U), amount))
            if day >= FIRST_FEATURES:
                # churn: more likely after a big day (the flag of day + 1 sees it), less with autopay
                yesterday = big(c, day - dt.timedelta(days=1))
                p = 1 / (1 + np.exp(-(-0.8 + 1.6 * yesterday - 1.0 * (c % 3 == 0))))
                known = dt.datetime.combine(day + dt.timedelta(days=3), dt.time(), U) - dt.timedelta(hours=1)
                labels.append((key, day, known, int(rng.random() < p)))
        day += dt.timedelta(days=1)
    customers = [(f"c{c:03d}", ["basic", "pro", "team"][c % 3 if c % 7 else 1], c % 3 == 0) for c in range(CUSTOMERS)]
    return events, customers, labels


def source(store, spark, name: str, rows: list[tuple], schema: T.StructType) -> None:
    df = spark.createDataFrame(rows, schema).withColumn("batch", F.lit("all"))
    commit = CommitInfo(job="test", run_id="setup", key=name, code_version="t", config_hash="t")
    store.replace_partitions(name, df, ["batch"], commit, partitions=[{"batch": "all"}])


def job(conf: Path, name: str, *args: str) -> int:
    return run_job(name, ["--model", "fb", "--conf-dir", str(conf), *args])


def test_boolean_features_are_monitored_like_two_valued_numbers(spark, tmp_path: Path) -> None:
    ws, conf = tmp_path / "ws", tmp_path / "conf"
    (conf / "models").mkdir(parents=True)
    (conf / "base.yaml").write_text(yaml.safe_dump({"workspace": str(ws)}))
    (conf / "models" / "fb.yaml").write_text(yaml.safe_dump(FB))
    store = open_store(spark, StorageConfig(), ws)
    events, customers, labels = inputs()
    source(store, spark, "fb_events", events, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("event_ts", T.TimestampType()),
        T.StructField("amount", T.DoubleType())]))
    source(store, spark, "fb_customers", customers, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("plan", T.StringType()),
        T.StructField("autopay", T.BooleanType())]))
    source(store, spark, "fb_labels", labels, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("label_ts", T.TimestampType()), T.StructField("churned", T.IntegerType())]))
    clear_cache()

    assert job(conf, "prepare_features", "--from", str(FIRST_FEATURES), "--to", str(LAST_FEATURES)) == 0
    assert job(conf, "train", "--date", str(TRAIN_DATE)) == 0
    reg = registry_of({"conf": conf, "ws": ws}, "fb")
    if reg.alias(CHAMPION) is None:                  # v1's gate against the baseline is not what this is about
        reg.promote("1", "test")
    assert job(conf, "pipeline", "--date", str(DRIFTED)) == 0             # every step exited 0
    assert [(r["run_date"], r["steps"]) for r in store.read("pipeline_runs").collect()] == [
        (DRIFTED, "prepare_features,score,monitor,retrain")]

    # the inputs did what they are for: boolean columns, the flag's true share 20 % → 40 % on 03-03
    features = store.read("fb__features")
    types = {f.name: f.dataType for f in features.schema.fields}
    assert [types[c] for c in (*BOOLEAN, "autopay_cat")] == [T.BooleanType(), T.BooleanType(), T.StringType()]
    share = {r["as_of_date"]: r["share"] for r in features.groupBy("as_of_date").agg(
        F.avg(F.col("is_big").cast("double")).alias("share")).collect()}
    assert {share[d] for d in share if d != DRIFTED} == {0.2} and share[DRIFTED] == 0.4
    # the champion v1 scored every row as scikit-learn does on the pandas rows (booleans as 1.0 / 0.0)
    scored = store.read("fb__predictions").filter(F.col("role") == "champion").toPandas()
    rows = features.filter(F.col("as_of_date") == DRIFTED).toPandas().merge(scored, on="customer_id")
    assert len(rows) == CUSTOMERS and set(scored["model_version"]) == {"1"}
    x = model_frame(rows, ["x1", "x2", "top_amount", *BOOLEAN], ["plan", "autopay_cat"])
    assert set(x["is_big"]) == {0.0, 1.0}
    np.testing.assert_allclose(rows["score"], predict_scores(reg.load("1"), x, "classification"), rtol=1e-12)

    metrics = store.read("monitor_metrics").filter((F.col("model") == "fb") & (F.col("run_date") == DRIFTED)
                                                   & (F.col("baseline") == "reference")
                                                   & (F.col("slice") == "__all__")
                                                   & (F.col("window_end") == F.col("run_date")))
    got = {(r["column"], r["metric"]): r.asDict() for r in metrics.collect()}
    for column in (*BOOLEAN, "autopay_cat"):
        for metric in ("psi", "js_distance", "chi2_pvalue", "drift", "null_rate"):
            row = got[(column, metric)]
            assert row["value"] is not None and row["status"] != "insufficient_data", row
        assert got[(column, "null_rate")]["value"] == 0.0
    for column in BOOLEAN:                           # numeric quality rows: the values stay within 0..1
        assert (got[(column, "min")]["value"], got[(column, "max")]["value"]) == (0.0, 1.0)
        assert got[(column, "out_of_range_share")]["value"] == 0.0
    assert got[("is_autopay", "drift")]["status"] == "ok"        # the same customers every day
    [run] = [r.asDict() for r in store.read("monitor_runs").filter(F.col("run_date") == DRIFTED).collect()]
    assert "Evidently DataDriftPreset on" in Path(run["report_path"]).read_text()   # the page took the booleans

    # the flag's true share doubled: its drift row alerts (a 0/1 column has one cell per value, so the share
    # change shows), and the retrain policy (drift score on is_big) fires and trains on the boolean features
    assert got[("is_big", "drift")]["status"] == "alert"
    [decision] = [r.asDict() for r in store.read("retrain_decisions").collect()]
    assert (decision["decision_date"], decision["status"], decision["rules_triggered"]) == (DRIFTED, "fired",
                                                                                           "drift_score")
    assert (decision["train_status"], decision["trained_version"]) == ("trained", "2")
    assert [(w["run_date"], w["drift_score"]) for w in json.loads(decision["inputs_json"])["windows"]] == [
        (str(DRIFTED), 1.0)]
