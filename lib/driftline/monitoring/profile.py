"""Distributed column profiles: bins fitted once on a reference, then ONE aggregation pass per table.

Usage (training writes the reference; monitoring profiles current windows with the same bins)::

    bins = fit_reference_bins(reference_df, numeric=["x"], categorical=["plan"], bins=10, top_k=20)
    ref = profile(reference_df, ["x", "plan"], bins)
    cur = profile(current_df, ["x", "plan"], bins)      # same edges → comparable counts

`profile` builds one ``df.agg(...)`` over all columns; only that single row of aggregates reaches
the driver. Numbers are deterministic for the same data and bins (counts, mean, min, max exactly;
quantiles within the ``percentile_approx`` accuracy, relative rank error ≈ 1/accuracy).

Conventions (numeric):
- null_count: SQL nulls; nan_count: NaN; inf_count: ±infinity. null_rate = (nulls + NaN) / rows.
- count, mean, std (sample), min, max and quantiles use finite values only.
- Bins are ``[e_i, e_{i+1})``, the last one closed ``[e_{n-1}, e_n]`` (as ``numpy.histogram``);
  ``underflow`` counts values < e_0 (−inf included), ``overflow`` values > e_n (+inf included).
  Edges are quantiles of the reference's finite values (duplicates dropped): exact min and max,
  interior edges at equal quantile steps. A constant column gets edges ``(c, c)`` (one bin: c).
Conventions (categorical): values compared as strings; ``categories`` are the reference's top-K by
count (ties by value); everything else non-null counts as ``__other__``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)

OTHER = "__other__"
DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
DEFAULT_ACCURACY = 10_000  # percentile_approx accuracy: relative rank error ≈ 1 / accuracy


class ProfileError(DriftlineError):
    """A profile cannot be computed as asked (unknown column, missing bins, wrong column type)."""


# --------------------------------------------------------------------------- bins


@dataclass(frozen=True)
class NumericBins:
    """Histogram edges of a numeric column (strictly increasing, or ``(c, c)`` for a constant)."""

    column: str
    edges: tuple[float, ...]

    kind = "numeric"

    @property
    def n_bins(self) -> int:
        return max(len(self.edges) - 1, 0)


@dataclass(frozen=True)
class CategoricalBins:
    """Top-K categories of a categorical column; the rest is ``__other__``."""

    column: str
    categories: tuple[str, ...]

    kind = "categorical"


ColumnBins = NumericBins | CategoricalBins


def quantile_edges(lo: float | None, hi: float | None, interior: Sequence[float | None]) -> tuple[float, ...]:
    """Edges from exact min/max and interior quantiles: sorted, de-duplicated, ``(c, c)`` for a constant."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return ()
    values = sorted({float(lo), float(hi), *(float(q) for q in interior if q is not None and lo < q < hi)})
    if len(values) == 1:
        return (values[0], values[0])
    return tuple(values)


def fit_reference_bins(
    df: DataFrame,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    *,
    bins: int = 10,
    top_k: int = 20,
    accuracy: int = DEFAULT_ACCURACY,
) -> dict[str, ColumnBins]:
    """Fit quantile edges (numeric) and top-K categories (categorical) on a reference DataFrame.

    Reads the named columns of ``df``; two aggregations (edges for all numeric columns at once,
    top-K for all categorical columns at once); only aggregates reach the driver.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    if bins < 1:
        raise ProfileError(f"bins: expected at least 1, found {bins}")
    if top_k < 1:
        raise ProfileError(f"top_k: expected at least 1, found {top_k}")
    _check_columns(df, [*numeric, *categorical])
    out: dict[str, ColumnBins] = {}
    if numeric:
        probs = [i / bins for i in range(1, bins)]
        exprs = []
        for i, c in enumerate(numeric):
            x = _finite(F.col(c))
            exprs += [F.min(x).alias(f"n{i}_min"), F.max(x).alias(f"n{i}_max")]
            if probs:
                exprs.append(F.percentile_approx(x, F.array(*map(F.lit, probs)), accuracy).alias(f"n{i}_q"))
        row = df.agg(*exprs).first()
        if row is None:
            raise ProfileError("fit_reference_bins: the aggregation returned no row")
        for i, c in enumerate(numeric):
            interior = list(row[f"n{i}_q"] or []) if probs else []
            out[c] = NumericBins(c, quantile_edges(row[f"n{i}_min"], row[f"n{i}_max"], interior))
    if categorical:
        stacked = df.select(F.explode(F.array(*[
            F.struct(F.lit(c).alias("column"), F.col(c).cast("string").alias("value")) for c in categorical
        ])).alias("s")).select("s.column", "s.value")
        rank = Window.partitionBy("column").orderBy(F.desc("n"), F.asc("value"))
        top = (
            stacked.filter(F.col("value").isNotNull())
            .groupBy("column", "value").agg(F.count(F.lit(1)).alias("n"))
            .withColumn("rank", F.row_number().over(rank))
            .filter(F.col("rank") <= top_k)
            .select("column", "value", "rank")
            .collect()
        )
        by_col: dict[str, list[tuple[int, str]]] = {c: [] for c in categorical}
        for r in top:
            by_col[r["column"]].append((r["rank"], r["value"]))
        for c in categorical:
            out[c] = CategoricalBins(c, tuple(v for _, v in sorted(by_col[c])))
    return out


def bins_to_json(bins: Mapping[str, ColumnBins]) -> str:
    """Bins as JSON (stored with the model version as an MLflow artifact)."""
    data = []
    for b in bins.values():
        if isinstance(b, NumericBins):
            data.append({"column": b.column, "kind": "numeric", "edges": list(b.edges)})
        else:
            data.append({"column": b.column, "kind": "categorical", "categories": list(b.categories)})
    return json.dumps(data, indent=1)


def bins_from_json(text: str) -> dict[str, ColumnBins]:
    """Inverse of `bins_to_json`."""
    out: dict[str, ColumnBins] = {}
    for item in json.loads(text):
        if item["kind"] == "numeric":
            out[item["column"]] = NumericBins(item["column"], tuple(float(e) for e in item["edges"]))
        else:
            out[item["column"]] = CategoricalBins(item["column"], tuple(item["categories"]))
    return out


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class NumericProfile:
    column: str
    rows: int
    null_count: int
    nan_count: int
    inf_count: int
    count: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: tuple[tuple[float, float], ...]
    edges: tuple[float, ...]
    bin_counts: tuple[int, ...]
    underflow: int
    overflow: int

    kind = "numeric"

    @property
    def null_rate(self) -> float:
        return (self.null_count + self.nan_count) / self.rows if self.rows else math.nan


@dataclass(frozen=True)
class CategoricalProfile:
    column: str
    rows: int
    null_count: int
    count: int
    distinct_approx: int
    categories: tuple[str, ...]
    category_counts: tuple[int, ...]
    other: int

    kind = "categorical"

    @property
    def null_rate(self) -> float:
        return self.null_count / self.rows if self.rows else math.nan


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class DatasetProfile:
    rows: int
    columns: Mapping[str, ColumnProfile]


def profile(
    df: DataFrame,
    columns: Sequence[str],
    bins: Mapping[str, ColumnBins],
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    accuracy: int = DEFAULT_ACCURACY,
) -> DatasetProfile:
    """Profile ``columns`` of ``df`` against reference ``bins`` in one aggregation pass.

    Reads only ``columns``; returns counts, null/NaN/inf counts, finite count/mean/std/min/max,
    approximate quantiles, histogram counts on the reference edges (with under/overflow), and
    top-K category counts with ``__other__``.
    """
    missing_bins = [c for c in columns if c not in bins]
    if missing_bins:
        raise ProfileError(
            f"profile: expected reference bins for every column, found none for {', '.join(missing_bins)}"
        )
    _check_columns(df, columns)
    exprs = profile_expressions(columns, bins, quantiles, accuracy)
    row = df.agg(*exprs).first()
    if row is None:
        raise ProfileError("profile: the aggregation returned no row")
    return profile_from_row(row.asDict(), columns, bins, quantiles)


def profile_by(
    df: DataFrame,
    by: str,
    columns: Sequence[str],
    bins: Mapping[str, ColumnBins],
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    accuracy: int = DEFAULT_ACCURACY,
) -> dict[Any, DatasetProfile]:
    """Profiles of ``columns`` per value of ``by`` in one grouped aggregation pass (slices, reference chunks).

    Reads ``by`` and ``columns``; one ``groupBy(by).agg(...)`` with the expressions of `profile`;
    one aggregate row per group reaches the driver. Keys are the values of ``by`` (None for nulls).
    """
    from pyspark.sql import functions as F

    missing_bins = [c for c in columns if c not in bins]
    if missing_bins:
        raise ProfileError(
            f"profile_by: expected reference bins for every column, found none for {', '.join(missing_bins)}"
        )
    if by in columns:
        raise ProfileError(f"profile_by: expected a group column outside the profiled columns, found {by} in both")
    _check_columns(df, [by, *columns])
    exprs = profile_expressions(columns, bins, quantiles, accuracy)
    rows = df.groupBy(F.col(by).alias("__group__")).agg(*exprs).collect()
    return {r["__group__"]: profile_from_row(r.asDict(), columns, bins, quantiles) for r in rows}


def profile_expressions(
    columns: Sequence[str], bins: Mapping[str, ColumnBins], quantiles: Sequence[float], accuracy: int
) -> list[Column]:
    """The aggregate expressions of `profile` (aliases ``rows`` and ``c<i>_<stat>``)."""
    from pyspark.sql import functions as F

    exprs = [F.count(F.lit(1)).alias("rows")]
    for i, name in enumerate(columns):
        b = bins[name]
        c = F.col(name)
        p = f"c{i}_"
        exprs.append(F.count_if(c.isNull()).alias(p + "nulls"))
        if isinstance(b, NumericBins):
            x = _finite(c)
            v = F.when(~F.isnan(c), c)  # NaN compares greater than everything in Spark SQL: exclude it
            exprs += [
                F.count_if(F.isnan(c)).alias(p + "nans"),
                F.count_if(c.isin(math.inf, -math.inf)).alias(p + "infs"),
                F.count(x).alias(p + "count"),
                F.avg(x).alias(p + "mean"),
                F.stddev_samp(x).alias(p + "std"),
                F.min(x).alias(p + "min"),
                F.max(x).alias(p + "max"),
            ]
            if quantiles:
                exprs.append(F.percentile_approx(x, F.array(*map(F.lit, quantiles)), accuracy).alias(p + "q"))
            e = b.edges
            if e:
                exprs += [F.count_if(v < e[0]).alias(p + "under"), F.count_if(v > e[-1]).alias(p + "over")]
                n = b.n_bins
                for k in range(n):
                    upper = (v <= e[k + 1]) if k == n - 1 else (v < e[k + 1])
                    exprs.append(F.count_if((v >= e[k]) & upper).alias(f"{p}b{k}"))
                if n == 0:  # a single edge cannot occur (constants get (c, c)); keep the shape explicit
                    raise ProfileError(f"{name}: expected at least two edges, found {e}")
        else:
            s = c.cast("string")
            exprs += [
                F.count(s).alias(p + "count"),
                F.approx_count_distinct(s).alias(p + "distinct"),
            ]
            for k, cat in enumerate(b.categories):
                exprs.append(F.count_if(s == F.lit(cat)).alias(f"{p}k{k}"))
    return exprs


def profile_from_row(
    row: Mapping[str, Any], columns: Sequence[str], bins: Mapping[str, ColumnBins], quantiles: Sequence[float]
) -> DatasetProfile:
    """Turn the single aggregate row of `profile_expressions` into a `DatasetProfile` (pure)."""
    rows = int(row["rows"])
    out: dict[str, ColumnProfile] = {}
    for i, name in enumerate(columns):
        b = bins[name]
        p = f"c{i}_"
        if isinstance(b, NumericBins):
            qs = row.get(p + "q") or []
            n = b.n_bins
            out[name] = NumericProfile(
                column=name, rows=rows,
                null_count=int(row[p + "nulls"]), nan_count=int(row[p + "nans"]), inf_count=int(row[p + "infs"]),
                count=int(row[p + "count"]),
                mean=_num(row[p + "mean"]), std=_num(row[p + "std"]),
                min=_num(row[p + "min"]), max=_num(row[p + "max"]),
                quantiles=tuple((float(q), _num(v)) for q, v in zip(quantiles, qs, strict=False)),
                edges=b.edges,
                bin_counts=tuple(int(row[f"{p}b{k}"]) for k in range(n)),
                underflow=int(row[p + "under"]) if b.edges else 0,
                overflow=int(row[p + "over"]) if b.edges else 0,
            )
        else:
            counts = tuple(int(row[f"{p}k{k}"]) for k in range(len(b.categories)))
            count = int(row[p + "count"])
            out[name] = CategoricalProfile(
                column=name, rows=rows, null_count=int(row[p + "nulls"]), count=count,
                distinct_approx=int(row[p + "distinct"]), categories=b.categories,
                category_counts=counts, other=count - sum(counts),
            )
    return DatasetProfile(rows=rows, columns=out)


# --------------------------------------------------------------------------- long format


PROFILE_ROW_FIELDS = ("column", "kind", "stat", "bin", "lower", "upper", "category", "quantile", "value")


def profile_rows(prof: DatasetProfile) -> list[dict[str, Any]]:
    """Long-format rows (one per column × statistic × bin/category/quantile), see `PROFILE_ROW_FIELDS`.

    stat ∈ rows, null_count, null_rate, count, (numeric) nan_count, inf_count, mean, std, min, max,
    quantile (``quantile`` = probability), bin_count (``bin`` −1 = underflow, 0..n−1, n = overflow;
    ``lower``/``upper`` = edges), (categorical) distinct_approx, category_count (``category``,
    ``bin`` = rank; ``__other__`` last).
    """
    out: list[dict[str, Any]] = []

    def add(col: str, kind: str, stat: str, value: float, **extra: Any) -> None:
        row = dict.fromkeys(PROFILE_ROW_FIELDS)
        row.update(column=col, kind=kind, stat=stat, value=float(value), **extra)
        out.append(row)

    for name, cp in prof.columns.items():
        k = cp.kind
        add(name, k, "rows", cp.rows)
        add(name, k, "null_count", cp.null_count)
        add(name, k, "null_rate", cp.null_rate)
        add(name, k, "count", cp.count)
        if isinstance(cp, NumericProfile):
            add(name, k, "nan_count", cp.nan_count)
            add(name, k, "inf_count", cp.inf_count)
            for stat in ("mean", "std", "min", "max"):
                add(name, k, stat, getattr(cp, stat))
            for q, v in cp.quantiles:
                add(name, k, "quantile", v, quantile=q)
            e = cp.edges
            if e:
                n = len(cp.bin_counts)
                add(name, k, "bin_count", cp.underflow, bin=-1, upper=e[0])
                for b, cnt in enumerate(cp.bin_counts):
                    add(name, k, "bin_count", cnt, bin=b, lower=e[b], upper=e[b + 1])
                add(name, k, "bin_count", cp.overflow, bin=n, lower=e[-1])
        else:
            add(name, k, "distinct_approx", cp.distinct_approx)
            for b, (cat, cnt) in enumerate(zip(cp.categories, cp.category_counts, strict=True)):
                add(name, k, "category_count", cnt, bin=b, category=cat)
            add(name, k, "category_count", cp.other, bin=len(cp.categories), category=OTHER)
    return out


def bins_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, ColumnBins]:
    """Rebuild reference bins from stored long-format rows (``bin_count`` / ``category_count``)."""
    numeric: dict[str, list[tuple[int, float, float]]] = {}
    categorical: dict[str, list[tuple[int, str]]] = {}
    kinds: dict[str, str] = {}
    for r in rows:
        kinds[r["column"]] = r["kind"]
        if r["stat"] == "bin_count" and r["lower"] is not None and r["upper"] is not None:
            numeric.setdefault(r["column"], []).append((int(r["bin"]), float(r["lower"]), float(r["upper"])))
        elif r["stat"] == "category_count" and r["category"] != OTHER:
            categorical.setdefault(r["column"], []).append((int(r["bin"]), str(r["category"])))
    out: dict[str, ColumnBins] = {}
    for col, kind in kinds.items():
        if kind == "numeric":
            spans = sorted(numeric.get(col, []))
            edges = (*[lo for _, lo, _ in spans], spans[-1][2]) if spans else ()
            out[col] = NumericBins(col, tuple(edges))
        else:
            out[col] = CategoricalBins(col, tuple(c for _, c in sorted(categorical.get(col, []))))
    return out


# --------------------------------------------------------------------------- helpers


def _finite(c: Column) -> Column:
    """``c`` where it is a finite number, else null."""
    from pyspark.sql import functions as F

    return F.when(~F.isnan(c) & ~c.isin(math.inf, -math.inf), c)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _check_columns(df: DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ProfileError(
            f"profile: expected columns {', '.join(missing)} in the DataFrame, found only {', '.join(df.columns)}"
        )

