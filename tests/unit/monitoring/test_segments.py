"""Drift per segment (`driftline.monitoring.segments`): each segment's reference profile equals the profile of that
segment's rows alone, the top values follow pandas' counts, one Benjamini–Hochberg over every (segment, column)
equals scipy's, and segments the reference or the window lacks are `insufficient_data` with a reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from driftline.monitoring.drift import dataset_drift, dataset_drifts, drift_rows
from driftline.monitoring.segments import (
    NULL,
    OTHER,
    at_training,
    from_artifact,
    segment_alias,
    segment_rows,
    summary,
    top_values,
)
from driftline.monitoring.spec import DriftSpec
from driftline.profiling.accumulate import empty_core_row
from driftline.profiling.bins import fit_reference_bins
from driftline.profiling.profile import profile, profile_from_row, profile_rows
from driftline.vocabulary import INSUFFICIENT

NUMERIC = ["heavy", "flag", "small_int"]
CATEGORICAL = ["code"]
COLUMNS = [*NUMERIC, *CATEGORICAL]


def awkward(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Heavy tails, a 0/1 flag, a few-valued integer, a high-cardinality string, nulls; segment columns: ``region``
    (five values and nulls) and ``shop`` (high cardinality)."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west", "tiny", None], p=[0.35, 0.3, 0.2, 0.1, 0.02, 0.03],
                        size=n).astype(object)
    heavy = (rng.pareto(1.5, size=n) + 1) * np.where(region == "north", 1 + shift, 1.0)
    heavy[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "heavy": heavy,
        "flag": (rng.random(n) < np.where(region == "south", 0.2 + shift / 4, 0.2)).astype(float),
        "small_int": rng.integers(0, 4, size=n).astype(float),
        "code": [f"c{k}" for k in rng.zipf(1.3, size=n) % 5000],
        segment_alias("region"): region,
        segment_alias("shop"): [f"shop{k}" for k in rng.integers(0, 400, size=n)],
    })


def spark_frame(spark, pdf: pd.DataFrame):
    return spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None),
                                 schema=", ".join([*(f"{c} double" for c in NUMERIC), "code string",
                                                   f"{segment_alias('region')} string",
                                                   f"{segment_alias('shop')} string"]))


@pytest.fixture(scope="module")
def reference(spark):
    pdf = awkward(6000, 1)
    frame = spark_frame(spark, pdf).cache()
    bins = fit_reference_bins(frame, NUMERIC, CATEGORICAL, bins=10, top_k=20)
    doc = at_training(frame, COLUMNS, bins, ["region", "shop", "absent"], top_n=5)
    yield pdf, frame, bins, doc
    frame.unpersist()


def test_top_values_follow_the_counts_with_null_as_a_value(spark, reference) -> None:
    pdf, frame, _, _ = reference
    counts = pdf[segment_alias("region")].fillna(NULL).value_counts()
    want = sorted(counts.index, key=lambda v: (-counts[v], v))[:5]
    assert top_values(frame, segment_alias("region"), 5) == want
    assert NULL in want and "tiny" not in want   # nulls (3 %) are a segment; tiny (2 %) is __other__


def test_each_segment_reference_is_the_profile_of_its_rows_alone(spark, reference) -> None:
    pdf, frame, bins, doc = reference
    stored = from_artifact(json.loads(doc), ["region", "shop", "absent"])
    assert set(stored) == {"region", "shop"}            # a segment column the rows lack is left out
    for column in ("region", "shop"):
        found = stored[column]
        assert len(found.values) == 5 and set(found.profiles) == {*found.values, OTHER}
        alias = segment_alias(column)
        values = pdf[alias].fillna(NULL)
        for seg, prof in found.profiles.items():
            mask = values.isin(found.values) if seg == OTHER else values == seg
            if seg == OTHER:
                mask = ~mask
            alone = profile(spark_frame(spark, pdf[mask]), COLUMNS, bins)
            assert prof.rows == int(mask.sum())
            want = {(r["column"], r["stat"], r["bin"], r["category"], r["quantile"]): r["value"]
                    for r in profile_rows(alone, bins)}
            got = {(r["column"], r["stat"], r["bin"], r["category"], r["quantile"]): r["value"]
                   for r in profile_rows(prof, bins)}
            assert got.keys() == want.keys()
            for k, v in want.items():
                if k[1] in ("distinct_approx",) or k[1] == "quantile":
                    continue   # sketches: approximate on both sides, not part of the drift decision
                assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-12, nan_ok=True), (column, seg, k)


def test_one_benjamini_hochberg_across_segments_and_columns_equals_scipy(spark, reference) -> None:
    pdf, _, bins, doc = reference
    stored = from_artifact(json.loads(doc), ["region"])["region"]
    window = awkward(4000, 2, shift=0.6)
    values = window[segment_alias("region")].fillna(NULL)
    values = values.where(values.isin(stored.values), OTHER)
    spec = DriftSpec(min_rows=30, numeric_method="ks", categorical_method="chi2")
    pairs = {seg: (ref, profile(spark_frame(spark, window[values == seg]), COLUMNS, bins, quantiles=(),
                                distinct=False)) for seg, ref in stored.profiles.items()}
    joint = dataset_drifts(pairs, spec, COLUMNS)
    raw = [(seg, c.column, c.decision_value) for seg, result in joint.items() for c in result.columns
           if c.pvalue_adjusted is not None]
    assert len(raw) >= 12
    adjusted = false_discovery_control([p for *_, p in raw], method="bh")
    for (seg, column, _), q in zip(raw, adjusted, strict=True):
        got = next(c for c in joint[seg].columns if c.column == column)
        assert got.pvalue_adjusted == pytest.approx(q, rel=1e-12)
    # one pair alone is the whole-window procedure
    seg = stored.values[0]
    alone = dataset_drift(*pairs[seg], spec, COLUMNS)
    assert drift_rows(dataset_drifts({seg: pairs[seg]}, spec, COLUMNS)[seg]) == drift_rows(alone)
    # the shifted heavy tail of `north` and the flag of `south` are found in their own segment
    assert {c.column for c in joint["north"].columns if c.drifted} >= {"heavy"}
    assert {c.column for c in joint["south"].columns if c.drifted} >= {"flag"}
    assert not any(c.drifted for c in joint["west"].columns)


def test_segments_without_reference_or_window_rows_are_insufficient(spark, reference) -> None:
    _, _, bins, doc = reference
    stored = from_artifact(json.loads(doc), ["region"])
    window = awkward(3000, 3)
    region = window[segment_alias("region")].fillna(NULL)
    current = {("region", seg): profile(spark_frame(spark, window[region == seg]), COLUMNS, bins, quantiles=(),
                                        distinct=False) for seg in ("north", "south")}
    current[("region", "brand-new")] = profile(spark_frame(spark, window[region == "tiny"]), COLUMNS, bins,
                                               quantiles=(), distinct=False)
    empty = profile_from_row(empty_core_row(COLUMNS, bins), COLUMNS, bins, ())
    spec = DriftSpec(min_rows=100)
    rows = segment_rows(stored, current, empty, spec, COLUMNS)
    assert set(rows) == {f"region={s}" for s in (*stored["region"].values, OTHER, "brand-new")}
    by = {(r["column"], r["metric"]): r for r in rows["region=east"]}   # no window rows of east
    assert by[("__dataset__", "drift_share")]["status"] == INSUFFICIENT
    assert by[("__dataset__", "rows")]["status"] == INSUFFICIENT and by[("__dataset__", "rows")]["value"] == 0
    assert "expected at least 100" in by[("heavy", "drift")]["reason"]
    [new] = rows["region=brand-new"]
    assert (new["metric"], new["status"], new["reason"]) == ("rows", INSUFFICIENT,
                                                              "the reference has no rows in this segment")
    lines = {line["slice"]: line for line in summary(rows)}
    assert "region=brand-new" not in lines and lines["region=north"]["evaluated"] == len(COLUMNS)
    assert lines["region=east"]["status"] == INSUFFICIENT
