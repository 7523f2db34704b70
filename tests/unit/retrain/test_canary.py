"""The canary rollout's pure parts: the step decision, the config slice, and which row of an entity is published."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from pyspark.sql import functions as F

from driftline.jobs.canary import (
    BUCKETS,
    HELD,
    INSUFFICIENT,
    PROMOTED,
    ROLLED_BACK,
    WIDENED,
    bucket_threshold,
    current_fraction,
    decide,
    published,
)
from driftline.jobs.paired import Paired
from driftline.retrain.spec import CanaryRule, RetrainConfig

RULE = CanaryRule(enabled=True, steps=(0.1, 0.5), min_days=2, metric="log_loss", margin=0.01, min_labels=100,
                  max_prediction_psi=0.2)
D0, D1 = dt.date(2026, 3, 1), dt.date(2026, 3, 3)


def cmp(canary: float | None = 0.50, champion: float | None = 0.50, n: int = 500, psi: float | None = 0.01,
        reason: str | None = None) -> Paired:
    return Paired({"canary": canary, "champion": champion}, n, D0, D1, reason, psi, 2 * n)


def test_a_canary_within_the_margin_is_held_until_min_days_then_widened_then_promoted() -> None:
    assert decide(RULE, 0.1, 1, cmp(0.505), "2", "1") == (
        HELD, 0.1, "v2 log_loss 0.505 vs champion v1 0.5 on the same 500 labelled rows (2026-03-01..2026-03-03): "
                   "holds; 1 of retrain.canary.min_days 2 days at 10% scored")
    status, after, reason = decide(RULE, 0.1, 2, cmp(0.505), "2", "1")
    assert (status, after) == (WIDENED, 0.5) and reason.endswith("holds for 2 days at 10%; widened to 50%")
    status, after, reason = decide(RULE, 0.5, 3, cmp(0.49), "2", "1")
    assert (status, after) == (PROMOTED, 1.0) and reason.endswith("holds after the last step (50%, 3 days)")


def test_a_worse_canary_is_rolled_back_even_before_min_days() -> None:
    status, after, reason = decide(RULE, 0.1, 0, cmp(0.52), "2", "1")
    assert (status, after) == (ROLLED_BACK, 0.0)
    assert reason.endswith("worse by 0.02 > margin 0.01")
    # higher-is-better metrics compare the other way round
    auc = RULE.model_copy(update={"metric": "auc"})
    assert decide(auc, 0.1, 5, cmp(0.70, 0.75), "2", "1")[0] == ROLLED_BACK
    assert decide(auc, 0.1, 5, cmp(0.80, 0.75), "2", "1")[0] == WIDENED


def test_prediction_psi_above_the_bound_rolls_back_without_labels_and_too_few_labels_never_widen() -> None:
    few = cmp(None, None, n=3, psi=0.35, reason="3 rows both versions scored have a matured label, fewer than 100")
    status, after, reason = decide(RULE, 0.1, 9, few, "2", "1")
    assert (status, after) == (ROLLED_BACK, 0.0)
    assert reason == ("v2 scores vs champion v1's on the same 6 rows: PSI 0.35 > retrain.canary.max_prediction_psi "
                      "0.2")
    calm = cmp(None, None, n=3, psi=0.05, reason="3 rows both versions scored have a matured label, fewer than 100")
    assert decide(RULE, 0.1, 9, calm, "2", "1") == (
        INSUFFICIENT, 0.1, "3 rows both versions scored have a matured label, fewer than retrain.canary.min_labels "
                           "100")
    off = RULE.model_copy(update={"max_prediction_psi": None})
    assert decide(off, 0.1, 9, cmp(psi=5.0), "2", "1")[0] == WIDENED


def test_the_config_slice_refuses_unordered_or_out_of_range_steps() -> None:
    assert RetrainConfig().canary.enabled is False
    with pytest.raises(ValidationError, match=r"expected steps strictly increasing fractions in \(0, 1\), found "
                                              r"\[0.5, 0.25\]"):
        CanaryRule(steps=(0.5, 0.25))
    with pytest.raises(ValidationError, match="less than 1"):
        CanaryRule(steps=(0.5, 1.0))
    with pytest.raises(ValidationError):
        CanaryRule(steps=())


def test_the_current_fraction_is_the_last_decision_of_that_version() -> None:
    rows = [{"canary_version": "2", "fraction_after": 0.1}, {"canary_version": "2", "fraction_after": 0.5},
            {"canary_version": "3", "fraction_after": 0.25}]
    assert current_fraction(rows, "2", RULE) == 0.5
    assert current_fraction(rows, "4", RULE) == 0.1     # not started by a recorded row: the first step


def test_one_published_row_per_entity_a_stable_slice_and_a_wider_step_keeps_the_narrower_one(spark) -> None:
    keys = [f"c{i:05d}" for i in range(20_000)]
    rows = [(k, role) for k in keys for role in ("champion", "canary", "previous")]
    df = spark.createDataFrame(rows, "customer_id string, role string")

    def canary_keys(fraction: float, version: str = "7") -> set[str]:
        out = df.withColumn("published", published("customer_id", "churn", version, fraction))
        counts = out.groupBy("customer_id").agg(F.sum(F.col("published").cast("int")).alias("n"))
        assert counts.filter(F.col("n") != 1).count() == 0          # exactly one published row per entity
        assert out.filter((F.col("role") == "previous") & F.col("published")).count() == 0
        return {r["customer_id"] for r in out.filter((F.col("role") == "canary") & F.col("published")).collect()}

    narrow, wide = canary_keys(0.05), canary_keys(0.25)
    assert narrow < wide                                            # widening keeps every canary entity
    for got, fraction in ((narrow, 0.05), (wide, 0.25)):            # binomial: 4 standard deviations
        sd = (len(keys) * fraction * (1 - fraction)) ** 0.5
        assert abs(len(got) - fraction * len(keys)) < 4 * sd
    assert canary_keys(0.05) == narrow                              # deterministic (stable across days)
    assert canary_keys(0.05, version="8") != narrow                 # another canary, another slice
    none = df.withColumn("published", published("customer_id", "churn", None, 0.0))
    assert {r["role"] for r in none.filter("published").collect()} == {"champion"}
    assert none.filter("published").count() == len(keys)
    assert bucket_threshold(0.05) == BUCKETS // 20 and bucket_threshold(1.5) == BUCKETS
