"""The profiler against numpy/pandas on the same data: bins, counts, quantiles, nulls, categories."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from driftline.profiling.bins import (
    OTHER,
    NumericBins,
    ProfileError,
    bins_from_json,
    bins_from_rows,
    bins_to_json,
    edge_probs,
    fit_reference_bins,
    quantile_edges,
    value_edges,
)
from driftline.profiling.profile import profile, profile_rows

SCHEMA = StructType([
    StructField("x", DoubleType()),
    StructField("k", DoubleType()),
    StructField("const", DoubleType()),
    StructField("empty", DoubleType()),
    StructField("c", StringType()),
])


def make_data(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    x[:7] = np.nan          # NaN (not null)
    x[7:10] = math.inf
    x[10:12] = -math.inf
    k = rng.integers(0, 5, n).astype(float)  # many ties: quantile edges collapse
    cats = rng.choice(["a", "b", "c", "d", "e", "f"], n, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05]).astype(object)
    cats[20:30] = None
    pdf = pd.DataFrame({"x": x, "k": k, "const": 3.5, "empty": np.nan, "c": cats})
    return pdf


def to_spark(spark, pdf: pd.DataFrame, null_x: int = 5):
    rows = []
    for i, r in enumerate(pdf.itertuples(index=False)):
        x = None if i >= len(pdf) - null_x else float(r.x)  # the last rows hold SQL nulls
        rows.append((x, float(r.k), float(r.const), None, r.c))
    return spark.createDataFrame(rows, SCHEMA).repartition(3)


@pytest.fixture(scope="module")
def reference(spark):
    pdf = make_data(1, 2000)
    return pdf, to_spark(spark, pdf)


@pytest.fixture(scope="module")
def bins(reference):
    _, df = reference
    return fit_reference_bins(df, ["x", "k", "const", "empty"], ["c"], bins=10, top_k=3)


def finite_x(pdf: pd.DataFrame, null_x: int = 5) -> np.ndarray:
    x = pdf["x"].to_numpy()[: len(pdf) - null_x]
    return x[np.isfinite(x)]


def test_fitted_edges_are_reference_quantiles(reference, bins) -> None:
    pdf, _ = reference
    x = finite_x(pdf)
    edges = np.array(bins["x"].edges)
    # min … max, then the next double above the max: the maximum has a cell of its own
    assert edges[0] == x.min() and edges[-2] == x.max() and edges[-1] == math.nextafter(x.max(), math.inf)
    # interior edges: the 10 %, 20 % … quantiles and, finer, 0.01 %, 0.1 %, 0.5 %, 1 %, 2.5 %, 5 % from each
    # end (rank error ≤ 1/accuracy; at 2,000 values the two outermost tail quantiles are the min and max)
    probs = [p for p in edge_probs(10) if 1 / len(x) < p < 1 - 1 / len(x)]
    assert len(probs) == 19 and len(edges) == 22 and np.all(np.diff(edges) > 0)
    for p, e in zip(probs, edges[1:-2], strict=True):
        assert abs((x <= e).mean() - p) <= 1e-3 + 1 / len(x)
    # few distinct values (≤ 2 × bins): one cell per value and a gap cell between neighbours (v, v⁺ edges)
    assert bins["k"].values == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert bins["k"].edges == tuple(e for v in range(5) for e in (float(v), math.nextafter(v, math.inf)))
    assert bins["const"].values == (3.5,) and bins["empty"].edges == () and bins["x"].values is None
    counts = pdf["c"].value_counts()
    c = bins["c"]        # 6 levels, top 3: the rest hashed into tail buckets, all 6 in the membership filter
    assert c.categories == tuple(counts.index[:3]) and c.buckets == 32 and c.membership.count == 6
    assert c.expected_unseen == 0.0     # no singleton in the reference


def test_profile_matches_numpy_and_pandas(spark, reference, bins) -> None:
    cur_pdf = make_data(2, 1500, shift=0.7)   # a shifted window profiled on the reference bins
    cur = to_spark(spark, cur_pdf, null_x=9)
    prof = profile(cur, ["x", "k", "const", "empty", "c"], bins)
    n = len(cur_pdf)
    assert prof.rows == n

    px = prof.columns["x"]
    raw = cur_pdf["x"].to_numpy()[: n - 9]
    x = raw[np.isfinite(raw)]
    assert (px.null_count, px.nan_count, px.inf_count, px.count) == (9, 7, 5, len(x))
    assert px.null_rate == pytest.approx((9 + 7) / n)
    assert px.mean == pytest.approx(x.mean(), rel=1e-12)
    assert px.std == pytest.approx(x.std(ddof=1), rel=1e-9)
    assert (px.min, px.max) == (x.min(), x.max())
    e = np.array(bins["x"].edges)
    not_nan = raw[~np.isnan(raw)]                        # ±inf go to under/overflow
    inside = not_nan[(not_nan >= e[0]) & (not_nan <= e[-1])]
    expected, _ = np.histogram(inside, bins=e)
    assert list(px.bin_counts) == expected.tolist()
    assert px.underflow == int((not_nan < e[0]).sum())
    assert px.overflow == int((not_nan > e[-1]).sum())
    assert px.underflow + sum(px.bin_counts) + px.overflow == n - 9 - 7
    # offset sums: the finite values' distances to each cell's inner edge
    below, above = x[x < e[0]], x[x > e[-1]]
    assert (px.underflow_finite, px.overflow_finite) == (below.size, above.size)
    inside = x[(x >= e[0]) & (x <= e[-1])]
    k = np.minimum(np.digitize(inside, e) - 1, len(e) - 2)
    expected_sums = [np.sum(e[0] - below), *(np.sum(inside[k == j] - e[j]) for j in range(len(e) - 1)),
                     np.sum(above - e[-1])]
    assert px.offset_sums == pytest.approx(expected_sums, rel=1e-12, abs=1e-12)
    for q, v in px.quantiles:   # approx quantile: rank of the answer within the accuracy
        assert (x <= v).mean() >= q - 1e-3 and (x < v).mean() <= q + 1e-3

    pk = prof.columns["k"]
    k = cur_pdf["k"].to_numpy()
    hist, _ = np.histogram(k, bins=np.array(bins["k"].edges))
    assert list(pk.bin_counts) == hist.tolist() and pk.underflow == pk.overflow == 0

    pconst = prof.columns["const"]
    assert pconst.bin_counts == (n,) and pconst.mean == 3.5 and pconst.std == 0.0

    pe = prof.columns["empty"]
    assert (pe.null_count, pe.count, pe.bin_counts) == (n, 0, ())
    assert math.isnan(pe.mean) and pe.null_rate == 1.0

    pc = prof.columns["c"]
    vc = cur_pdf["c"].value_counts()
    assert pc.null_count == int(cur_pdf["c"].isna().sum())
    assert pc.categories == bins["c"].categories
    assert list(pc.category_counts) == [int(vc.get(cat, 0)) for cat in pc.categories]
    assert pc.other == int(vc.sum()) - sum(pc.category_counts)
    assert pc.distinct_approx == 6


def test_profile_reads_the_data_once_and_is_deterministic(spark, reference, bins) -> None:
    _, df = reference
    cols = ["x", "k", "const", "empty", "c"]
    rows_read = spark.sparkContext.accumulator(0)

    def counting(batches):
        for batch in batches:
            rows_read.add(len(batch))
            yield batch

    counted = df.mapInPandas(counting, df.schema)
    profile(counted, cols, bins, quantiles=(), distinct=False)
    assert rows_read.value == 2000          # one pass over the rows (as the monitor profiles a window)
    profile(counted, cols, bins)
    assert rows_read.value == 2000 + 2 * 2000   # quantiles and distinct counts: a second, sketch pass
    first = profile_rows(profile(df, cols, bins))
    assert profile_rows(profile(df, cols, bins)) == first          # a rerun gives identical numbers
    other = profile_rows(profile(df.repartition(5), cols, bins))   # another partitioning: floating sums
    for a, b in zip(first, other, strict=True):                    # may differ in the last bit only
        if a["stat"] in ("mean", "std", "bin_offset_sum"):
            assert a["value"] == pytest.approx(b["value"], rel=1e-12, nan_ok=True)
        else:
            assert a == b


def test_long_rows_round_trip_bins(reference, bins) -> None:
    _, df = reference
    prof = profile(df, ["x", "k", "const", "empty", "c"], bins)
    rows = profile_rows(prof, bins)
    assert bins_from_rows(rows) == bins
    assert bins_from_json(bins_to_json(bins)) == bins
    x_bins = sorted((r["bin"], r["value"]) for r in rows if r["column"] == "x" and r["stat"] == "bin_count")
    assert x_bins[0][0] == -1 and x_bins[-1][0] == 21 and len(x_bins) == 23   # 22 edges: 21 bins + under/overflow
    other = [r for r in rows if r["column"] == "c" and r["category"] == OTHER]
    assert len(other) == 1 and other[0]["value"] == prof.columns["c"].other
    null_rate = [r["value"] for r in rows if r["column"] == "c" and r["stat"] == "null_rate"]
    assert null_rate == [10 / 2000]


def test_quantile_edges_pure() -> None:
    up = lambda v: math.nextafter(v, math.inf)  # noqa: E731
    assert quantile_edges(0.0, 10.0, [2.0, 2.0, 5.0, None]) == (0.0, 2.0, 5.0, 10.0, up(10.0))   # max: own cell
    assert quantile_edges(4.0, 4.0, [4.0]) == (4.0, up(4.0))
    assert quantile_edges(1.0, sys.float_info.max, []) == (1.0, sys.float_info.max)   # no finite double above
    assert value_edges([0.0, sys.float_info.max]) == ()                               # → quantile edges instead
    assert value_edges([1.0, up(1.0)]) == ()                                          # adjacent: no gap cell
    assert quantile_edges(None, None, []) == ()


def test_profile_errors_name_the_columns(spark, reference, bins) -> None:
    _, df = reference
    with pytest.raises(ProfileError, match="found none for nope"):
        profile(df, ["x", "nope"], bins)
    with pytest.raises(ProfileError, match=r"expected columns zz in the DataFrame"):
        profile(df, ["zz"], {"zz": NumericBins("zz", (0.0, 1.0))})


def test_offset_sums_round_trip_and_an_older_reference_falls_back_to_quantiles(spark, reference, bins) -> None:
    from driftline.monitoring.comparison import _quantile_function, compare
    from driftline.monitoring.inputs import Reference
    from driftline.monitoring.measures import wasserstein_cells, wasserstein_quantiles
    from driftline.profiling.stored import profile_from_rows

    _, df = reference
    cols = ["x", "k", "const", "empty", "c"]
    prof = profile(df, cols, bins)
    stored, _ = profile_from_rows(profile_rows(prof))
    for c in ("x", "k", "const"):
        got, want = stored.columns[c], prof.columns[c]
        assert (got.offset_sums, got.underflow_finite, got.overflow_finite) == (
            want.offset_sums, want.underflow_finite, want.overflow_finite)
    assert Reference("1", "m/1", stored, bins, (), {}, "run").has_offset_sums

    older_rows = [r for r in profile_rows(prof) if r["stat"] not in ("bin_offset_sum", "bin_finite_count")]
    older, probs = profile_from_rows(older_rows)
    assert older.columns["x"].offset_sums == () and not Reference("1", "m/1", older, bins, probs, {}, "run").has_offset_sums
    current = profile(to_spark(spark, make_data(5, 1200, shift=0.5)), cols, bins)
    ref_x, cur_x = older.columns["x"], current.columns["x"]
    p = [q for q, _ in ref_x.quantiles]
    by_quantiles = wasserstein_quantiles([0.0, *p, 1.0], _quantile_function(ref_x, p), _quantile_function(cur_x, p))
    assert compare(ref_x, cur_x).wasserstein == by_quantiles.value          # the older reference: quantiles
    new_x = stored.columns["x"]
    by_cells = wasserstein_cells(new_x.edges, (new_x.underflow_finite, *new_x.bin_counts, new_x.overflow_finite),
                                 new_x.offset_sums, (cur_x.underflow_finite, *cur_x.bin_counts, cur_x.overflow_finite),
                                 cur_x.offset_sums)
    assert compare(new_x, cur_x).wasserstein == by_cells.value             # a current reference: cells
    assert by_cells.value == pytest.approx(by_quantiles.value, rel=0.1)      # both near the shift of 0.5


def test_profile_by_groups_with_a_null_key_and_an_empty_frame(spark, reference, bins) -> None:
    from pyspark.sql import functions as F

    from driftline.profiling.profile import profile_by

    _, df = reference
    cols = ["x", "k", "const", "empty", "c"]
    keyed = df.withColumn("g", F.when(F.col("k") == 0, None).when(F.col("k") < 3, "low").otherwise("high"))
    groups = profile_by(keyed, "g", cols, bins, quantiles=(), distinct=False)
    assert set(groups) == {None, "low", "high"}
    assert sum(p.rows for p in groups.values()) == 2000
    for key, cond in ((None, F.col("g").isNull()), ("low", F.col("g") == "low"), ("high", F.col("g") == "high")):
        alone = profile(keyed.filter(cond), cols, bins, quantiles=(), distinct=False)
        for a, b in zip(profile_rows(groups[key]), profile_rows(alone), strict=True):   # each group its own profile
            assert a == b or (a["stat"] in ("mean", "std", "bin_offset_sum")
                              and a["value"] == pytest.approx(b["value"], rel=1e-12, nan_ok=True))
    none = profile(df.limit(0), cols, bins)
    assert none.rows == 0 and none.columns["x"].count == 0 and math.isnan(none.columns["x"].mean)
    assert none.columns["x"].bin_counts == (0,) * 21 and none.columns["c"].category_counts == (0, 0, 0)
