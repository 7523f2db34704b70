"""Distributed column profiles: bins fitted once on a reference, then ONE pass per table.

Usage (training writes the reference; monitoring profiles current windows with the same bins)::

    bins = fit_reference_bins(reference_df, numeric=["x"], categorical=["plan"], bins=10, top_k=20)
    ref = profile(reference_df, ["x", "plan"], bins)                             # + quantile/distinct sketches
    cur = profile(current_df, ["x", "plan"], bins, quantiles=(), distinct=False)  # same edges → comparable

`profile` reads the columns once (`core_pass`): each task folds its rows into one row of mergeable
aggregates per group — on the JVM (`driftline.jvm`) where driftline's jar is loaded, else as ``mapInArrow``
with numpy; the driver merges those rows in partition order, so only aggregates reach it and the numbers
are deterministic for the same data, partitioning and bins (counts, min, max exactly; mean, std and offset
sums up to the last bits across partitionings).
Approximate quantiles (``percentile_approx``, relative rank error ≈ 1/accuracy) and distinct counts
(``approx_count_distinct``) are a second, Spark sketch aggregation, asked for at training time only.

Conventions (numeric):
- null_count: SQL nulls; nan_count: NaN; inf_count: ±infinity. null_rate = (nulls + NaN) / rows.
- count, mean, std (sample), min, max and quantiles use finite values only.
- Bins are ``[e_i, e_{i+1})``, the last one closed ``[e_{n-1}, e_n]`` (as ``numpy.histogram``);
  ``underflow`` counts values < e_0 (−inf included), ``overflow`` values > e_n (+inf included).
  Edges are quantiles of the reference's finite values (duplicates dropped): exact min and max,
  interior edges at equal quantile steps. A constant column gets edges ``(c, c)`` (one bin: c).
- Offset sums (for Wasserstein-1 from cells, `driftline.monitoring.drift.wasserstein_cells`): per cell, the
  sum over its finite values of the distance to the cell's inner edge — ``v − e_k`` in bin k, ``e_0 − v``
  in the underflow, ``v − e_n`` in the overflow (all ≥ 0) — and the finite counts of the two outer cells.
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

from driftline.jvm import JVM_FOLD_CONF, PROFILE_FOLD, java_class
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

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)

DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


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
    # per cell (underflow, bins…, overflow): sum of the finite values' distances to the cell's inner edge;
    # () when not profiled (references stored before offset sums existed)
    offset_sums: tuple[float, ...] = ()
    underflow_finite: int = 0
    overflow_finite: int = 0

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
    distinct_approx: int | None   # None when profiled without the sketch (monitor windows)
    categories: tuple[str, ...]
    category_counts: tuple[int, ...]
    other: int
    # hashed bins (`CategoricalBins.hashed`): the values beyond the top K per tail bucket (sum = other), and how
    # many of them the reference's membership filter has certainly never seen; () / 0 otherwise
    tail_counts: tuple[int, ...] = ()
    unseen: int = 0
    expected_unseen: float = 0.0   # the reference's Good–Turing unseen share (from the bins)

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


GROUP = "__group__"


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


# --------------------------------------------------------------------------- the one pass (JVM or Arrow + numpy)


def _layout(columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> tuple[list[str], list[int]]:
    """Names of the additive slots (``rows``, ``c<i>_<stat>``) and the numeric columns' positions."""
    add = ["rows"]
    numeric = []
    for i, name in enumerate(columns):
        b = bins[name]
        p = f"c{i}_"
        if isinstance(b, NumericBins):
            numeric.append(i)
            add += [p + s for s in ("nulls", "nans", "infs")]
            if b.edges:
                add += [p + s for s in ("under", "over", "funder", "fover", "dunder", "dover")]
                add += [f"{p}b{k}" for k in range(b.n_bins)] + [f"{p}d{k}" for k in range(b.n_bins)]
        else:
            add += [p + "nulls", p + "count"] + [f"{p}k{k}" for k in range(len(b.categories))]
            if b.hashed:
                add += [f"{p}t{k}" for k in range(b.buckets)] + [p + "unseen"]
    return add, numeric


def hash_column(i: int) -> str:
    """The frame column holding ``xxhash64`` of categorical column ``c<i>`` (hashed bins only)."""
    return f"h{i}"


class _Accumulator:
    """Mergeable aggregates of one group: additive slots, finite min/max and (count, mean, M2) per numeric column."""

    def __init__(self, n_add: int, n_num: int) -> None:
        import numpy as np

        self.add = np.zeros(n_add)
        self.lo = np.full(n_num, np.inf)
        self.hi = np.full(n_num, -np.inf)
        self.mom = np.zeros((n_num, 3))

    @classmethod
    def from_row(cls, row: Any) -> _Accumulator:
        """The accumulator a task wrote as a row (``add``, ``lo``, ``hi``, ``mom`` arrays)."""
        import numpy as np

        acc = cls(len(row["add"]), len(row["lo"]))
        acc.add = np.asarray(row["add"], dtype=float)
        acc.lo, acc.hi = np.asarray(row["lo"], dtype=float), np.asarray(row["hi"], dtype=float)
        acc.mom = np.asarray(row["mom"], dtype=float).reshape(-1, 3)
        return acc

    def merge_moments(self, j: int, n: float, mean: float, m2: float) -> None:
        """Chan et al.'s pairwise update of (count, mean, M2)."""
        n0, mean0, m20 = self.mom[j]
        if n == 0:
            return
        total = n0 + n
        delta = mean - mean0
        self.mom[j] = (total, mean0 + delta * n / total, m20 + m2 + delta * delta * n0 * n / total)

    def merge(self, other: _Accumulator) -> None:
        import numpy as np

        self.add += other.add
        self.lo = np.minimum(self.lo, other.lo)
        self.hi = np.maximum(self.hi, other.hi)
        for j, (n, mean, m2) in enumerate(other.mom):
            self.merge_moments(j, n, mean, m2)


def _accumulate(acc: _Accumulator, batch: Any, columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> None:
    """Add one Arrow record batch (columns ``c<i>``: double for numeric, string for categorical) to ``acc``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    a = acc.add
    pos = 0
    a[pos] += batch.num_rows
    pos += 1
    j = 0
    for i, name in enumerate(columns):
        b = bins[name]
        arr = batch.column(f"c{i}")
        nulls = arr.null_count
        if isinstance(b, NumericBins):
            v = arr.to_numpy(zero_copy_only=False)          # nulls become NaN
            finite = np.isfinite(v)
            if finite.all():                                  # the common case: no copy, no more masks
                x, nans, infs, neg_infs = v, 0, 0, 0
            else:
                x = v[finite]
                nans = int(np.count_nonzero(np.isnan(v))) - nulls
                infs = v.size - nulls - nans - x.size
                neg_infs = int(np.count_nonzero(v == -np.inf)) if infs else 0
            a[pos:pos + 3] += (nulls, nans, infs)
            pos += 3
            if x.size:
                acc.lo[j] = min(acc.lo[j], x.min())
                acc.hi[j] = max(acc.hi[j], x.max())
                mean = x.mean()
                d = x - mean
                acc.merge_moments(j, x.size, mean, float(np.dot(d, d)))
            j += 1
            e = b.edges
            if e:
                n = b.n_bins
                # cells 0 = underflow, 1..n = bins, n + 1 = overflow; nudging the last edge up one ulp puts
                # a value equal to it in the last bin (closed), as numpy.histogram
                search = np.array([*e[:-1], np.nextafter(e[-1], np.inf)])
                inner = np.array([e[0], *e[:-1], e[-1]])       # each cell's inner edge
                cell = np.searchsorted(search, x, side="right")
                counts = np.bincount(cell, minlength=n + 2)
                offsets = np.bincount(cell, weights=np.abs(x - inner[cell]), minlength=n + 2)
                a[pos:pos + 6] += (counts[0] + neg_infs, counts[-1] + infs - neg_infs, counts[0], counts[-1],
                                   offsets[0], offsets[-1])
                pos += 6
                a[pos:pos + n] += counts[1:-1]
                a[pos + n:pos + 2 * n] += offsets[1:-1]
                pos += 2 * n
        else:
            a[pos:pos + 2] += (nulls, len(arr) - nulls)
            pos += 2
            n = len(b.categories)
            idx = pc.index_in(arr, value_set=pa.array(b.categories, pa.string())) if n else None
            if idx is not None:
                a[pos:pos + n] += np.bincount(idx.drop_null().to_numpy(zero_copy_only=False), minlength=n)
                pos += n
            if b.hashed and b.membership is not None:
                beyond = pc.is_valid(arr) if idx is None else pc.and_(pc.is_valid(arr), pc.is_null(idx))
                h = batch.column(hash_column(i)).filter(beyond).to_numpy(zero_copy_only=False).astype(np.int64)
                a[pos:pos + b.buckets] += np.bincount(np.mod(h, b.buckets), minlength=b.buckets)
                a[pos + b.buckets] += h.size - int(np.count_nonzero(b.membership.contains(h)))
                pos += b.buckets + 1


def core_pass(df: DataFrame, by: str | None, columns: Sequence[str],
              bins: Mapping[str, ColumnBins], engine: str = "auto") -> dict[Any, dict[str, Any]]:
    """The exact statistics of `profile` per group in one pass: each task folds its rows into one row per
    group; the driver merges the rows in partition order (deterministic for the same partitioning). Returns
    group key → ``{rows, c<i>_<stat>}`` as `profile_from_row` reads.

    The fold runs on the JVM (``driftline.jvm.ProfileFold``, `driftline.jvm`) when that class is loaded and
    the group key is a plain type, else as ``mapInArrow`` with numpy (`_accumulate`); both write the same
    rows. ``engine``: ``"auto"``, or ``"jvm"`` / ``"arrow"`` to insist on one (tests compare them)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StructField, StructType

    add_names, numeric = _layout(columns, bins)
    n_add, n_num = len(add_names), len(numeric)
    cols = [(F.col(c).cast("double") if isinstance(bins[c], NumericBins) else F.col(c).cast("string")).alias(f"c{i}")
            for i, c in enumerate(columns)]
    cols += [F.xxhash64(F.col(c).cast("string")).alias(hash_column(i)) for i, c in enumerate(columns)
             if isinstance(bins[c], CategoricalBins) and bins[c].hashed]
    if by is not None:
        cols.append(F.col(by).alias(GROUP))
    frame = df.select(*cols)
    key_field = [StructField(GROUP, frame.schema[GROUP].dataType)] if by is not None else []
    schema = StructType([StructField("part", IntegerType()), *key_field,
                         *(StructField(f, ArrayType(DoubleType())) for f in ("add", "lo", "hi", "mom"))])
    grouped = by is not None

    def fold(batches: Iterable[Any]) -> Iterable[Any]:
        import pyarrow as pa
        import pyarrow.compute as pc
        from pyspark import TaskContext

        accs: dict[Any, _Accumulator] = {}
        types: dict[Any, Any] = {}
        for batch in batches:
            if not grouped:
                _accumulate(accs.setdefault(None, _Accumulator(n_add, n_num)), batch, columns, bins)
                continue
            keys = batch.column(GROUP)
            for key in pc.unique(keys).to_pylist():
                mask = pc.is_null(keys) if key is None else pc.fill_null(pc.equal(keys, pa.scalar(key, keys.type)),
                                                                         False)
                types[key] = keys.type
                _accumulate(accs.setdefault(key, _Accumulator(n_add, n_num)), batch.filter(mask), columns, bins)
        part = TaskContext.get().partitionId()
        for key, acc in accs.items():
            data = {"part": pa.array([part], pa.int32())}
            if grouped:
                data[GROUP] = pa.array([key], types[key])
            for f, values in (("add", acc.add), ("lo", acc.lo), ("hi", acc.hi), ("mom", acc.mom.ravel())):
                data[f] = pa.array([values.tolist()], pa.list_(pa.float64()))
            yield pa.RecordBatch.from_pydict(data)

    jvm, why_not = _jvm_fold(frame, columns, bins, grouped) if engine != "arrow" else (None, "engine arrow")
    if jvm is None and engine == "jvm":
        raise ProfileError(f"core_pass: expected the JVM fold ({PROFILE_FOLD}) to run, found {why_not}")
    log.debug("profile pass over %d columns%s: %s fold", len(columns), f" by {by}" if grouped else "",
              "JVM" if jvm is not None else f"Arrow + numpy ({why_not})")
    parts = jvm.collect() if jvm is not None else frame.mapInArrow(fold, schema).collect()  # a row per task and group
    merged: dict[Any, _Accumulator] = {}
    for r in sorted(parts, key=lambda r: r["part"]):
        merged.setdefault(r[GROUP] if grouped else None, _Accumulator(n_add, n_num)).merge(_Accumulator.from_row(r))
    return {key: _core_row(acc, add_names, numeric) for key, acc in merged.items()}


_JVM_KEY_TYPES = ("string", "int", "bigint", "smallint", "tinyint", "date", "timestamp", "boolean", "double",
                  "float")


def _jvm_fold(frame: DataFrame, columns: Sequence[str], bins: Mapping[str, ColumnBins],
              grouped: bool) -> tuple[DataFrame | None, str]:
    """The JVM fold's per-task rows of ``frame`` (columns ``c<i>`` [+ key]), or None and why it cannot run here."""
    from pyspark.sql import DataFrame

    spark = frame.sparkSession
    if spark.conf.get(JVM_FOLD_CONF, "true").lower() == "false":
        return None, "runtime.jvm_fold false"
    if grouped and frame.schema[GROUP].dataType.simpleString() not in _JVM_KEY_TYPES:
        return None, f"a group key of type {frame.schema[GROUP].dataType.simpleString()}"
    fold = java_class(spark, PROFILE_FOLD)
    if fold is None:
        return None, "no such class on the driver's classpath"
    spec = {"grouped": grouped, "key": frame.columns.index(GROUP) if grouped else -1,
            "columns": [_column_spec(bins[c], frame.columns, i) for i, c in enumerate(columns)]}
    return DataFrame(fold.fold(frame._jdf, json.dumps(spec)), spark), ""


def _column_spec(b: ColumnBins, frame_columns: Sequence[str], i: int) -> dict[str, Any]:
    """One column of the JVM fold's spec: numeric edges, or categories (+ tail buckets, hash column, filter)."""
    if isinstance(b, NumericBins):
        return {"kind": "numeric", "edges": list(b.edges)}
    spec: dict[str, Any] = {"kind": "categorical", "categories": list(b.categories)}
    if b.hashed and b.membership is not None:
        spec.update(buckets=b.buckets, hash=frame_columns.index(hash_column(i)), membership=b.membership.spec())
    return spec


def _core_row(acc: _Accumulator, add_names: Sequence[str], numeric: Sequence[int]) -> dict[str, Any]:
    row: dict[str, Any] = {name: float(v) for name, v in zip(add_names, acc.add, strict=True)}
    for j, i in enumerate(numeric):
        n, mean, m2 = acc.mom[j]
        p = f"c{i}_"
        row[p + "count"] = int(n)
        row[p + "mean"] = float(mean) if n else None
        row[p + "std"] = math.sqrt(m2 / (n - 1)) if n > 1 else None
        row[p + "min"] = float(acc.lo[j]) if n else None
        row[p + "max"] = float(acc.hi[j]) if n else None
    return row


def empty_core_row(columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> dict[str, Any]:
    """The core row of a group without rows (every count 0, moments unknown)."""
    add_names, numeric = _layout(columns, bins)
    return _core_row(_Accumulator(len(add_names), len(numeric)), add_names, numeric)


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
    ``lower``/``upper`` = edges), bin_offset_sum (same ``bin``s; see the module docstring),
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
        else:
            if cp.distinct_approx is not None:
                add(name, k, "distinct_approx", cp.distinct_approx)
            for b, (cat, cnt) in enumerate(zip(cp.categories, cp.category_counts, strict=True)):
                add(name, k, "category_count", cnt, bin=b, category=cat)
            add(name, k, "category_count", cp.other, bin=len(cp.categories), category=OTHER)
            for b, cnt in enumerate(cp.tail_counts):
                add(name, k, "tail_count", cnt, bin=b)
            if cp.tail_counts:
                add(name, k, "unseen_count", cp.unseen)
            b = (bins or {}).get(name)
            if isinstance(b, CategoricalBins):
                for extra in membership_rows(b):
                    row = dict.fromkeys(PROFILE_ROW_FIELDS)
                    row.update(column=name, kind=k, **extra)
                    out.append(row)
    return out


# --------------------------------------------------------------------------- helpers


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)
