"""Realized accuracy / precision / recall / F1 at a decision threshold (`performance_rows(..., threshold=)`) against
sklearn on awkward data: null scores and labels, scores exactly at the threshold, ties, a segment that predicts
no positive (precision undefined: null)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from driftline.monitoring.performance import DECISION_METRICS, performance_rows
from driftline.monitoring.spec import PerformanceConfig

T = 0.4
SCHEMA = StructType([StructField("score", DoubleType()), StructField("label", DoubleType()),
                     StructField("seg", StringType())])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 3000
    s = np.round(rng.random(n), 2)  # ties, and exactly T for ≈ 1 % of rows
    s[:50] = T
    y = (rng.random(n) < s).astype(float)
    seg = rng.choice(["a", "b"], n).astype(object)
    seg[:300] = "low"
    s[:300] = np.minimum(s[:300], T - 0.01)  # segment "low": nothing predicted positive
    score = [None if i % 97 == 0 else float(v) for i, v in enumerate(s)]
    label = [None if i % 31 == 0 else float(v) for i, v in enumerate(y)]
    return list(zip(score, label, seg, strict=True))


def oracle(rows) -> dict[str, float | None]:
    kept = [(s, y) for s, y, _ in rows if s is not None and y is not None]
    y = np.array([r[1] for r in kept]).astype(int)
    pred = (np.array([r[0] for r in kept]) >= T).astype(int)
    return dict(accuracy=accuracy_score(y, pred), precision=precision_score(y, pred) if pred.any() else None,
                recall=recall_score(y, pred), f1=f1_score(y, pred) if pred.any() else 0.0)


def test_decision_metrics_match_sklearn_per_group(spark, data) -> None:
    frame = spark.createDataFrame(data, SCHEMA).repartition(3)
    pcfg = PerformanceConfig(min_labels=10, min_label_coverage=0.5)
    whole = performance_rows(frame, pcfg, "classification", threshold=T)[None]
    per_seg = performance_rows(frame, pcfg, "classification", by="seg", threshold=T)
    for rows, want in [(whole, oracle(data)), *[(per_seg[g], oracle([r for r in data if r[2] == g]))
                                                 for g in ("a", "b", "low")]]:
        got = {r["metric"]: r for r in rows}
        for m in DECISION_METRICS:
            if want[m] is None:
                assert got[m]["value"] is None and got[m]["status"] == "insufficient_data", m
            else:
                assert got[m]["value"] == pytest.approx(want[m], abs=1e-12) and got[m]["status"] == "ok", m
    assert {r["metric"]: r["value"] for r in per_seg["low"]}["recall"] == 0.0


def test_no_threshold_keeps_the_old_rows(spark, data) -> None:
    frame = spark.createDataFrame(data, SCHEMA)
    pcfg = PerformanceConfig(min_labels=10, min_label_coverage=0.5)
    rows = performance_rows(frame, pcfg, "classification")[None]
    assert [r["metric"] for r in rows] == ["labelled_rows", "label_coverage", "auc", "log_loss", "brier"]
    reg = performance_rows(frame, pcfg, "regression", threshold=T)[None]
    assert [r["metric"] for r in reg] == ["labelled_rows", "label_coverage", "rmse", "mae"]
