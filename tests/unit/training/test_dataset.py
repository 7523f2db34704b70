"""Training set pieces: windows, matured labels at the D 00:00 UTC boundary, seeded sample cap."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import types as T

from driftline.errors import InputContractError
from driftline.features.spec import LabelSource
from driftline.training.dataset import (
    check_labels,
    collect_sample,
    matured_labels,
    training_windows,
    with_labels,
)
from driftline.training.spec import TrainingConfig

U = dt.UTC
D = dt.date(2026, 3, 1)
SOURCE = LabelSource(table="labels", key="customer_id", timestamp="label_ts", value="churned")


def test_windows_end_a_full_horizon_before_the_date() -> None:
    w = training_windows(D, 14, TrainingConfig(train_days=10, validation_days=3, gap_days=2))
    assert w.validation_end == dt.date(2026, 2, 14)      # 2026-02-14 + 14 days = 02-28 < D
    assert w.validation_start == dt.date(2026, 2, 12)
    assert w.train_end == dt.date(2026, 2, 9)            # two gap days: 02-10, 02-11
    assert w.train_start == dt.date(2026, 1, 31)
    assert w.feature_dates()[0] == w.train_start and w.feature_dates()[-1] == w.validation_end
    assert len(w.feature_dates()) == 15


def test_matured_labels_boundary_and_latest_known_wins(spark) -> None:
    schema = T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("label_ts", T.TimestampType()), T.StructField("churned", T.IntegerType()),
    ])
    a = dt.date(2026, 2, 10)
    rows = [
        ("a", a, dt.datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=U), 1),  # just before D: usable
        ("b", a, dt.datetime(2026, 3, 1, 0, 0, 0, tzinfo=U), 1),              # exactly D 00:00: not matured
        ("c", a, dt.datetime(2026, 2, 20, tzinfo=U), 0),
        ("c", a, dt.datetime(2026, 2, 25, tzinfo=U), 1),                       # correction known later wins
        ("c", a, dt.datetime(2026, 3, 2, tzinfo=U), 0),                        # …unless known after D
        ("d", a, dt.datetime(2026, 2, 1, tzinfo=U), None),                     # null label: unusable
    ]
    got = matured_labels(spark.createDataFrame(rows, schema), SOURCE, "as_of_date", D)
    result = sorted((r["_label_key"], r["as_of_date"], r["label"]) for r in got.collect())
    assert result == [("a", a, 1.0), ("c", a, 1.0)]


def test_with_labels_and_seeded_cap_are_deterministic(spark) -> None:
    feats = spark.createDataFrame(
        [(f"e{i:03d}", dt.date(2026, 2, 1 + i % 3), float(i), None if i % 5 == 0 else "p") for i in range(90)],
        "customer_id string, as_of_date date, x double, plan string",
    )
    labels = spark.createDataFrame(
        [(f"e{i:03d}", dt.date(2026, 2, 1 + i % 3), float(i % 2)) for i in range(0, 90, 2)],
        "_label_key string, as_of_date date, label double",
    )
    joined = with_labels(feats, labels, "customer_id", ["x", "plan"])
    assert joined.columns == ["customer_id", "as_of_date", "x", "plan", "label"]
    full, capped = collect_sample(joined, "customer_id", None, 1)
    assert not capped and len(full) == 45 and full["label"].tolist() == [0.0] * 45
    assert full[["as_of_date", "customer_id"]].equals(
        full[["as_of_date", "customer_id"]].sort_values(["as_of_date", "customer_id"]).reset_index(drop=True))
    s1, c1 = collect_sample(joined.repartition(4), "customer_id", 10, 7)
    s2, _ = collect_sample(joined.repartition(1), "customer_id", 10, 7)
    s3, _ = collect_sample(joined, "customer_id", 10, 8)
    assert c1 and len(s1) == 10
    pd.testing.assert_frame_equal(s1, s2)                  # same seed: same rows whatever the partitioning
    assert set(s1["customer_id"]) != set(s3["customer_id"])  # another seed: another sample
    assert set(s1["customer_id"]) <= set(full["customer_id"])
    exact, capped_exact = collect_sample(joined, "customer_id", 45, 7)
    assert not capped_exact and len(exact) == 45


def test_label_values_are_checked() -> None:
    assert check_labels(pd.Series([0.0, 1.0]), "classification", "training").tolist() == [0, 1]
    with pytest.raises(InputContractError, match="training labels: expected 0/1 values for classification, found 2.0"):
        check_labels(pd.Series([0.0, 2.0]), "classification", "training")
    assert check_labels(pd.Series([0.5, 2.0]), "regression", "training").tolist() == [0.5, 2.0]
