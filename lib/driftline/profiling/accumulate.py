"""The Arrow + numpy fold of the profile pass, and the row layout both folds share (pure: no Spark).

A task folds its Arrow record batches (columns ``c<i>``: double for numeric, string for categorical, ``h<i>``:
the ``xxhash64`` of hashed categorical columns) into one `Accumulator` per group with `accumulate`:
additive slots named by `layout` (``rows``, ``c<i>_<stat>``: nulls, NaN, ±inf, histogram counts and offset
sums, category counts, tail buckets, unseen values), finite min/max and Chan's mergeable (count, mean, M2) per
numeric column. The JVM fold (``driftline.jvm.ProfileFold``) writes the same slots in the same order, so the
driver merges either kind of task row (`Accumulator.from_row`, `Accumulator.merge`) and turns the merged
accumulator into the core row `driftline.profiling.profile.profile_from_row` reads (`core_row_of`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from driftline.profiling.bins import CategoricalBins, ColumnBins, NumericBins


def layout(columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> tuple[list[str], list[int]]:
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


class Accumulator:
    """Mergeable aggregates of one group: additive slots, finite min/max and (count, mean, M2) per numeric column."""

    def __init__(self, n_add: int, n_num: int) -> None:
        import numpy as np

        self.add = np.zeros(n_add)
        self.lo = np.full(n_num, np.inf)
        self.hi = np.full(n_num, -np.inf)
        self.mom = np.zeros((n_num, 3))

    @classmethod
    def from_row(cls, row: Any) -> Accumulator:
        """The accumulator a task wrote as a row (``add``, ``lo``, ``hi``, ``mom`` arrays)."""
        import numpy as np

        acc = cls(len(row["add"]), len(row["lo"]))
        acc.add = np.asarray(row["add"], dtype=float)
        acc.lo, acc.hi = np.asarray(row["lo"], dtype=float), np.asarray(row["hi"], dtype=float)
        acc.mom = np.asarray(row["mom"], dtype=float).reshape(-1, 3)
        return acc

    def arrays(self) -> dict[str, list[float]]:
        """The accumulator as the four arrays a task row (and a stored per-date profile) holds."""
        return {"add": self.add.tolist(), "lo": self.lo.tolist(), "hi": self.hi.tolist(),
                "mom": self.mom.ravel().tolist()}

    def merge_moments(self, j: int, n: float, mean: float, m2: float) -> None:
        """Chan et al.'s pairwise update of (count, mean, M2)."""
        n0, mean0, m20 = self.mom[j]
        if n == 0:
            return
        total = n0 + n
        delta = mean - mean0
        self.mom[j] = (total, mean0 + delta * n / total, m20 + m2 + delta * delta * n0 * n / total)

    def merge(self, other: Accumulator) -> None:
        import numpy as np

        self.add += other.add
        self.lo = np.minimum(self.lo, other.lo)
        self.hi = np.maximum(self.hi, other.hi)
        for j, (n, mean, m2) in enumerate(other.mom):
            self.merge_moments(j, n, mean, m2)


def accumulate(acc: Accumulator, batch: Any, columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> None:
    """Add one Arrow record batch (columns ``c<i>``: double for numeric, string for categorical) to ``acc``."""
    acc.add[0] += batch.num_rows
    pos = 1   # the next additive slot, in `layout`'s order
    j = 0     # the next numeric column's moments
    for i, name in enumerate(columns):
        b = bins[name]
        if isinstance(b, NumericBins):
            pos = _accumulate_numeric(acc, pos, j, batch.column(f"c{i}"), b)
            j += 1
        else:
            pos = _accumulate_categorical(acc.add, pos, batch, i, b)


def _accumulate_numeric(acc: Accumulator, pos: int, j: int, arr: Any, b: NumericBins) -> int:
    """Add numeric column ``arr`` (the ``j``-th numeric one, slots from ``pos``) to ``acc``; the next slot."""
    import numpy as np

    nulls = arr.null_count
    v = arr.to_numpy(zero_copy_only=False)          # nulls become NaN
    finite = np.isfinite(v)
    if finite.all():                                  # the common case: no copy, no more masks
        x, nans, infs, neg_infs = v, 0, 0, 0
    else:
        x = v[finite]
        nans = int(np.count_nonzero(np.isnan(v))) - nulls
        infs = v.size - nulls - nans - x.size
        neg_infs = int(np.count_nonzero(v == -np.inf)) if infs else 0
    acc.add[pos:pos + 3] += (nulls, nans, infs)
    pos += 3
    if x.size:
        acc.lo[j] = min(acc.lo[j], x.min())
        acc.hi[j] = max(acc.hi[j], x.max())
        mean = x.mean()
        d = x - mean
        acc.merge_moments(j, x.size, mean, float(np.dot(d, d)))
    if b.edges:
        pos = _accumulate_cells(acc.add, pos, x, b, infs, neg_infs)
    return pos


def _accumulate_cells(a: Any, pos: int, x: Any, b: NumericBins, infs: int, neg_infs: int) -> int:
    """Add the finite values ``x`` (and the column's ±inf) to the histogram and offset-sum slots from ``pos``
    (outer cells, then bins, then bins' offset sums); the next slot."""
    import numpy as np

    e = b.edges
    n = b.n_bins
    # cells 0 = underflow, 1..n = bins, n + 1 = overflow; nudging the last edge up one ulp puts
    # a value equal to it in the last bin (closed), as numpy.histogram
    search = np.array([*e[:-1], np.nextafter(e[-1], np.inf)])
    inner = np.array([e[0], *e[:-1], e[-1]])       # each cell's inner edge
    # sorted, a cell is a run: its bounds are the edges' ranks (a sort is several times faster than
    # searching every value among the edges)
    ordered = np.sort(x)
    bounds = np.concatenate(([0], np.searchsorted(ordered, search, side="left"), [ordered.size]))
    counts = np.diff(bounds)
    cell = np.repeat(np.arange(n + 2), counts)
    dist = np.abs(ordered - inner[cell])
    offsets = np.zeros(n + 2)
    filled = counts > 0
    if filled.any():
        offsets[filled] = np.add.reduceat(dist, bounds[:-1][filled]) if dist.size else 0.0
    a[pos:pos + 6] += (counts[0] + neg_infs, counts[-1] + infs - neg_infs, counts[0], counts[-1],
                       offsets[0], offsets[-1])
    pos += 6
    a[pos:pos + n] += counts[1:-1]
    a[pos + n:pos + 2 * n] += offsets[1:-1]
    return pos + 2 * n


def _accumulate_categorical(a: Any, pos: int, batch: Any, i: int, b: CategoricalBins) -> int:
    """Add categorical column ``c<i>`` of ``batch`` to the additive slots ``a`` from ``pos``: nulls, count,
    top-K category counts and, for hashed bins, tail buckets and unseen values; the next slot."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = batch.column(f"c{i}")
    nulls = arr.null_count
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
    return pos


def core_row_of(acc: Accumulator, add_names: Sequence[str], numeric: Sequence[int]) -> dict[str, Any]:
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
    add_names, numeric = layout(columns, bins)
    return core_row_of(Accumulator(len(add_names), len(numeric)), add_names, numeric)
