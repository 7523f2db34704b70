"""Training set pieces: windows, matured labels at the D 00:00 UTC boundary, seeded sample cap."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import types as T

from driftline.errors import InputContractError, MissingInputError
from driftline.features.spec import LabelSource
from driftline.training.dataset import (
    check_labels,
    collect_sample,
    matured_labels,
    post_onset_rows,
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


def test_windows_without_onset_are_unchanged_by_the_episode_code() -> None:
    cfg = TrainingConfig(train_days=10, validation_days=3, gap_days=2)
    assert training_windows(D, 14, cfg, None) == training_windows(D, 14, cfg)
    assert "driftline.onset" not in training_windows(D, 14, cfg).tags()
    assert training_windows(D, 14, cfg).post_onset_days() == 0


@pytest.mark.parametrize("post,validation", [(2, 1), (3, 1), (4, 2), (7, 3), (10, 5), (14, 7), (15, 7), (60, 7)])
def test_episode_windows_validate_on_post_onset_days_and_train_across_the_onset(post: int, validation: int) -> None:
    """P post-onset matured dates: validation = the last min(validation_days, P // 2), the rest trains."""
    cfg = TrainingConfig(train_days=28, validation_days=7)
    last = dt.date(2026, 2, 14)                                    # D − 14 − 1
    onset = last - dt.timedelta(days=post - 1)
    w = training_windows(D, 14, cfg, onset)
    assert w.onset == onset and w.post_onset_days() == post
    assert w.validation_end == last
    assert (w.validation_end - w.validation_start).days + 1 == validation
    assert w.validation_start >= onset                             # validation: post-onset dates only
    assert w.train_end == w.validation_start - dt.timedelta(days=1)
    assert (w.train_end - w.train_start).days + 1 == 28            # train_days, pre- and post-onset
    assert w.train_end >= onset                                    # post-onset dates train too
    assert w.tags()["driftline.onset"] == onset.isoformat()
    assert w.feature_dates()[0] == w.train_start and w.feature_dates()[-1] == last


def test_episode_windows_keep_the_gap_outside_the_post_onset_training_dates() -> None:
    cfg = TrainingConfig(train_days=10, validation_days=7, gap_days=2)
    onset = dt.date(2026, 2, 7)                                    # P = 8 matured dates up to 02-14, U = 6
    w = training_windows(D, 14, cfg, onset)
    assert (w.validation_start, w.validation_end) == (dt.date(2026, 2, 12), dt.date(2026, 2, 14))
    assert w.train_end == dt.date(2026, 2, 9)                      # gap 02-10, 02-11; 02-07..02-09 train
    with pytest.raises(MissingInputError, match="expected at least 4 post-onset as-of dates"):
        training_windows(D, 14, cfg, dt.date(2026, 2, 12))        # P = 3 < 2 + gap


@pytest.mark.parametrize("onset", [dt.date(2026, 2, 14), dt.date(2026, 2, 20), dt.date(2026, 3, 5)])
def test_episode_windows_need_two_matured_post_onset_dates(onset: dt.date) -> None:
    with pytest.raises(MissingInputError) as err:
        training_windows(D, 14, TrainingConfig(), onset)
    msg = str(err.value)
    assert "\n" not in msg and f"onset {onset}" in msg and "last matured date 2026-02-14" in msg
    assert "expected at least 2 post-onset as-of dates" in msg
    assert f"retrain on {onset + dt.timedelta(days=16)} or later" in msg     # onset + horizon + 2


def test_post_onset_rows_counts_rows_on_or_after_the_onset() -> None:
    days = pd.Series([dt.date(2026, 2, d) for d in (1, 2, 3, 3, 4)])
    assert post_onset_rows(days, dt.date(2026, 2, 3)) == 3
    assert post_onset_rows(days, None) == 0
    assert post_onset_rows(days.iloc[:0], dt.date(2026, 2, 3)) == 0


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
