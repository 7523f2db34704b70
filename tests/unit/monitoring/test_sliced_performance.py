"""`sliced_performance`: every window's whole-window and per-segment performance from one exploded pass, against
scikit-learn on each subset computed in pandas (null scores, labels and segment values, a few-valued integer
segment, a high-cardinality segment capped per window, a window with one class only: AUC undefined)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from driftline.monitoring.performance import MAX_SEGMENT_VALUES, sliced_performance
from driftline.monitoring.spec import PerformanceConfig

SCHEMA = StructType([StructField("score", DoubleType()), StructField("label", DoubleType()),
                     StructField("window_end", DateType()), StructField("plan", StringType()),
                     StructField("tenure", LongType()), StructField("city", StringType())])
PCFG = PerformanceConfig(min_labels=5, min_label_coverage=0.1)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    import datetime as dt

    rng = np.random.default_rng(5)
    n = 4000
    ends = np.array([dt.date(2026, 3, 1), dt.date(2026, 3, 8), dt.date(2026, 3, 15)], dtype=object)
    end = ends[rng.integers(0, 3, n)]
    score = np.round(rng.beta(0.5, 2.0, n), 3)   # skewed, with ties
    label = (rng.random(n) < score).astype(float)
    label[end == ends[2]] = 0.0   # the third window holds one class only: AUC undefined
    plan = rng.choice(["basic", "pro", None], n, p=[0.6, 0.3, 0.1]).astype(object)
    tenure = rng.integers(0, 3, n)   # a few-valued integer, cast to its string
    city = np.array([f"c{int(v)}" for v in rng.zipf(1.3, n) % 400], dtype=object)   # far more than the cap
    frame = pd.DataFrame(dict(score=score, label=label, window_end=end, plan=plan, tenure=tenure, city=city))
    frame.loc[frame.index % 37 == 0, "score"] = np.nan   # unscored: not counted
    frame.loc[frame.index % 11 == 0, "label"] = np.nan   # label not matured yet
    return frame


def oracle(rows: pd.DataFrame) -> dict[str, float | None]:
    used = rows.dropna(subset=["score", "label"])
    y, s = used["label"].to_numpy(), used["score"].to_numpy()
    return dict(labelled_rows=float(len(used)), label_coverage=len(used) / len(rows),
                auc=roc_auc_score(y, s) if len(set(y)) == 2 else None,
                log_loss=log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1]), brier=brier_score_loss(y, s))


def frame_of(spark, data: pd.DataFrame):
    records = [tuple(None if (isinstance(v, float) and np.isnan(v)) else v for v in row)
               for row in data.astype(object).itertuples(index=False)]
    records = [(s, y, e, p, int(t), c) for s, y, e, p, t, c in records]
    return spark.createDataFrame(records, SCHEMA).repartition(3)


def check(rows: list[dict], want: dict[str, float | None]) -> None:
    got = {r["metric"]: r["value"] for r in rows}
    for metric, value in want.items():
        if value is None:
            assert got[metric] is None, metric
        else:
            assert got[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), metric


def test_every_window_and_slice_matches_sklearn(spark, data, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="driftline.monitoring.performance"):
        got = sliced_performance(frame_of(spark, data), PCFG, "classification", ["plan", "tenure", "city"],
                                 by="window_end")
    for end, window in data.groupby("window_end"):
        key = end.isoformat()
        check(got[(key, "__all__")], oracle(window))
        for plan in ("basic", "pro"):
            check(got[(key, f"plan={plan}")], oracle(window[window["plan"] == plan]))
        check(got[(key, "plan=__null__")], oracle(window[window["plan"].isna()]))
        for tenure in range(3):
            check(got[(key, f"tenure={tenure}")], oracle(window[window["tenure"] == tenure]))
        # the high-cardinality column: the most scored values of this window only, the others left out
        cities = [name for k, name in got if k == key and name.startswith("city=")]
        counts = window["city"].value_counts()
        assert len(cities) == MAX_SEGMENT_VALUES < len(counts)
        assert min(counts[c.removeprefix("city=")] for c in cities) >= counts.iloc[MAX_SEGMENT_VALUES]
        top = counts.index[0]
        check(got[(key, f"city={top}")], oracle(window[window["city"] == top]))
    assert {k for k, _ in got} == {e.isoformat() for e in data["window_end"].unique()}
    assert any("segment city (window_end 2026-03-01)" in r.getMessage() for r in caplog.records)


def test_whole_frame_without_by_or_segments(spark, data) -> None:
    frame = frame_of(spark, data)
    got = sliced_performance(frame, PCFG, "classification")
    assert list(got) == [(None, "__all__")]
    check(got[(None, "__all__")], oracle(data))
    # the current window's case: no ``by``, segments of the whole frame
    sliced = sliced_performance(frame, PCFG, "classification", ["plan", "tenure"])
    assert set(sliced) == {(None, n) for n in ("__all__", "plan=basic", "plan=pro", "plan=__null__",
                                                "tenure=0", "tenure=1", "tenure=2")}
    check(sliced[(None, "__all__")], oracle(data))
    check(sliced[(None, "plan=__null__")], oracle(data[data["plan"].isna()]))
    check(sliced[(None, "tenure=2")], oracle(data[data["tenure"] == 2]))
    assert sliced_performance(None, PCFG, "classification", ["plan"]) == {}
