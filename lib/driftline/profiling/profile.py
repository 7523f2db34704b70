"""Distributed column profiles: bins fitted once on a reference, then ONE pass per table.

Usage (training writes the reference; monitoring profiles current windows with the same bins)::

    bins = fit_reference_bins(reference_df, numeric=["x"], categorical=["plan"], bins=10, top_k=20)
    ref = profile(reference_df, ["x", "plan"], bins)                             # + quantile/distinct sketches
    cur = profile(current_df, ["x", "plan"], bins, quantiles=(), distinct=False)  # same edges → comparable

`profile` / `profile_by` read the columns once (`driftline.profiling.fold.core_pass`): each task folds its
rows into one row of mergeable aggregates per group — on the JVM (`driftline.jvm`) where driftline's jar is
loaded, else as ``mapInArrow`` with numpy (`driftline.profiling.accumulate`); the driver merges those rows in
partition order, so only aggregates reach it. Approximate quantiles (``percentile_approx``, relative rank error
≈ 1/accuracy) and distinct counts (``approx_count_distinct``) are a second, Spark sketch aggregation
(`sketch_expressions`), asked for at training time only. `profile_from_row` turns one group's aggregates into
a `DatasetProfile` (`driftline.profiling.types`, which states the statistics' conventions); `profile_rows`
writes a profile in the long format stored as reference profiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from driftline.profiling.accumulate import empty_core_row
from driftline.profiling.bins import (
    DEFAULT_ACCURACY,
    OTHER,
    CategoricalBins,
    ColumnBins,
    NumericBins,
    ProfileError,
    check_columns,
    finite,
    membership_rows,
)
from driftline.profiling.fold import GROUP, core_pass
from driftline.profiling.types import CategoricalProfile, ColumnProfile, DatasetProfile, NumericProfile

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def profile(
    df: DataFrame,
    columns: Sequence[str],
    bins: Mapping[str, ColumnBins],
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    accuracy: int = DEFAULT_ACCURACY,
    distinct: bool = True,
) -> DatasetProfile:
    """Profile ``columns`` of ``df`` against reference ``bins``.

    Reads only ``columns``; returns counts, null/NaN/inf counts, finite count/mean/std/min/max, histogram
    counts and offset sums on the reference edges (with under/overflow) and top-K category counts with
    ``__other__`` from ONE pass (`core_pass`); approximate ``quantiles`` and (``distinct``) the approximate
    distinct count of categorical columns need a second, sketch aggregation — ask for neither
    (``quantiles=()``, ``distinct=False``) to read the data once.
    """
    return profile_by(df, None, columns, bins, quantiles=quantiles, accuracy=accuracy, distinct=distinct)[None]


def profile_by(
    df: DataFrame,
    by: str | None,
    columns: Sequence[str],
    bins: Mapping[str, ColumnBins],
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    accuracy: int = DEFAULT_ACCURACY,
    distinct: bool = True,
) -> dict[Any, DatasetProfile]:
    """Profiles of ``columns`` per value of ``by`` (slices, windows, reference chunks); see `profile`.

    One pass for every group; keys are the values of ``by`` (None for nulls; the single key None when
    ``by`` is None, even for an empty DataFrame). Only per-partition aggregates reach the driver.
    """
    from pyspark.sql import functions as F

    caller = "profile" if by is None else "profile_by"
    missing_bins = [c for c in columns if c not in bins]
    if missing_bins:
        raise ProfileError(
            f"{caller}: expected reference bins for every column, found none for {', '.join(missing_bins)}"
        )
    if by is not None and by in columns:
        raise ProfileError(f"profile_by: expected a group column outside the profiled columns, found {by} in both")
    check_columns(df, [c for c in (by, *columns) if c is not None])
    rows = core_pass(df, by, columns, bins)
    if quantiles or distinct:
        exprs = sketch_expressions(columns, bins, quantiles, accuracy, distinct)
        if exprs and by is None:
            sketch = df.agg(*exprs).first()
            rows.setdefault(None, empty_core_row(columns, bins)).update(sketch.asDict() if sketch else {})
        elif exprs:
            for r in df.groupBy(F.col(by).alias(GROUP)).agg(*exprs).collect():
                rows.setdefault(r[GROUP], empty_core_row(columns, bins)).update(r.asDict())
    if by is None and not rows:
        rows[None] = empty_core_row(columns, bins)
    return {key: profile_from_row(row, columns, bins, quantiles) for key, row in rows.items()}


def sketch_expressions(
    columns: Sequence[str], bins: Mapping[str, ColumnBins], quantiles: Sequence[float], accuracy: int,
    distinct: bool = True,
) -> list[Column]:
    """The sketch aggregates of `profile` (aliases ``c<i>_q``, ``c<i>_distinct``): approximate quantiles of
    numeric columns' finite values, approximate distinct counts of categorical columns."""
    from pyspark.sql import functions as F

    exprs = []
    for i, name in enumerate(columns):
        c = F.col(name).cast("double") if isinstance(bins[name], NumericBins) else F.col(name)   # booleans: 0/1
        if isinstance(bins[name], NumericBins):
            if quantiles:
                exprs.append(F.percentile_approx(finite(c), F.array(*map(F.lit, quantiles)), accuracy)
                             .alias(f"c{i}_q"))
        elif distinct:
            exprs.append(F.approx_count_distinct(c.cast("string")).alias(f"c{i}_distinct"))
    return exprs


def profile_from_row(
    row: Mapping[str, Any], columns: Sequence[str], bins: Mapping[str, ColumnBins], quantiles: Sequence[float]
) -> DatasetProfile:
    """Turn one group's aggregates (`core_pass` row, with the `sketch_expressions` values when asked) into a
    `DatasetProfile` (pure)."""
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
                offset_sums=tuple(float(row[p + d] or 0.0) for d in ("dunder", *(f"d{k}" for k in range(n)),
                                                                    "dover")) if b.edges else (),
                underflow_finite=int(row[p + "funder"]) if b.edges else 0,
                overflow_finite=int(row[p + "fover"]) if b.edges else 0,
            )
        else:
            counts = tuple(int(row[f"{p}k{k}"]) for k in range(len(b.categories)))
            count = int(row[p + "count"])
            out[name] = CategoricalProfile(
                column=name, rows=rows, null_count=int(row[p + "nulls"]), count=count,
                distinct_approx=None if row.get(p + "distinct") is None else int(row[p + "distinct"]),
                categories=b.categories,
                category_counts=counts, other=count - sum(counts),
                tail_counts=tuple(int(row[f"{p}t{k}"]) for k in range(b.buckets)) if b.hashed else (),
                unseen=int(row[p + "unseen"]) if b.hashed else 0,
                expected_unseen=b.expected_unseen,
            )
    return DatasetProfile(rows=rows, columns=out)


# --------------------------------------------------------------------------- long format


PROFILE_ROW_FIELDS = ("column", "kind", "stat", "bin", "lower", "upper", "category", "quantile", "value")


def profile_rows(prof: DatasetProfile, bins: Mapping[str, ColumnBins] | None = None) -> list[dict[str, Any]]:
    """Long-format rows (one per column × statistic × bin/category/quantile), see `PROFILE_ROW_FIELDS`.

    stat ∈ rows, null_count, null_rate, count, (numeric) nan_count, inf_count, mean, std, min, max,
    quantile (``quantile`` = probability), bin_count (``bin`` −1 = underflow, 0..n−1, n = overflow;
    ``lower``/``upper`` = edges), bin_offset_sum (same ``bin``s; see `driftline.profiling.types`),
    bin_finite_count (``bin`` −1 and n: the outer cells' finite values), (categorical) distinct_approx
    (when profiled), category_count (``category``, ``bin`` = rank; ``__other__`` last), with hashed bins
    tail_count (``bin`` = bucket) and unseen_count; with ``bins`` (a reference), the membership filter rows
    of hashed categorical columns (`driftline.profiling.bins.membership_rows`).
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
            _numeric_rows(add, name, cp)
        else:
            _categorical_rows(add, name, cp)
            b = (bins or {}).get(name)
            if isinstance(b, CategoricalBins):
                for extra in membership_rows(b):
                    row = dict.fromkeys(PROFILE_ROW_FIELDS)
                    row.update(column=name, kind=k, **extra)
                    out.append(row)
    return out


def _numeric_rows(add: Callable[..., None], name: str, cp: NumericProfile) -> None:
    """`profile_rows`' statistics of a numeric column after the common ones (rows … count)."""
    k = cp.kind
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
        if cp.offset_sums:
            for b, total in enumerate(cp.offset_sums, start=-1):
                add(name, k, "bin_offset_sum", total, bin=b)
            add(name, k, "bin_finite_count", cp.underflow_finite, bin=-1)
            add(name, k, "bin_finite_count", cp.overflow_finite, bin=n)


def _categorical_rows(add: Callable[..., None], name: str, cp: CategoricalProfile) -> None:
    """`profile_rows`' statistics of a categorical column after the common ones, before its membership rows."""
    k = cp.kind
    if cp.distinct_approx is not None:
        add(name, k, "distinct_approx", cp.distinct_approx)
    for b, (cat, cnt) in enumerate(zip(cp.categories, cp.category_counts, strict=True)):
        add(name, k, "category_count", cnt, bin=b, category=cat)
    add(name, k, "category_count", cp.other, bin=len(cp.categories), category=OTHER)
    for b, cnt in enumerate(cp.tail_counts):
        add(name, k, "tail_count", cnt, bin=b)
    if cp.tail_counts:
        add(name, k, "unseen_count", cp.unseen)


# --------------------------------------------------------------------------- helpers


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)
