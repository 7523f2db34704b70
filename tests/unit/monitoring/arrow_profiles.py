"""Profiles without Spark, through the profile pass's own Arrow fold, for statistical tests over many seeds.

Bins are fitted with numpy the way `fit_reference_bins` fits them (exact quantiles instead of Spark's
sketch); categorical hashes come from a splitmix64 mixer of the category instead of Spark's ``xxhash64`` (the
folds only need one int64 per value, the same on both sides).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from driftline.profiling.accumulate import Accumulator, accumulate, core_row_of, hash_column, layout
from driftline.profiling.bins import (
    CategoricalBins,
    ColumnBins,
    NumericBins,
    edge_probs,
    quantile_edges,
    value_edges,
)
from driftline.profiling.membership import build_membership
from driftline.profiling.profile import profile_from_row
from driftline.profiling.types import DatasetProfile


def mix64(values: Sequence[str]) -> np.ndarray:
    """A 64-bit hash per string (pandas' keyed SipHash: deterministic, vectorized), as int64."""
    import pandas as pd

    return pd.util.hash_array(np.asarray(values, dtype=object)).view(np.int64)


def numeric_bins(name: str, x: np.ndarray, bins: int = 10, discrete_values: int | None = None) -> NumericBins:
    f = x[np.isfinite(x)]
    cutoff = 2 * bins if discrete_values is None else discrete_values
    distinct = np.unique(f)
    if 0 < distinct.size <= cutoff:
        edges = value_edges(distinct.tolist())
        if edges:
            return NumericBins(name, edges)
    # data values as quantiles (Spark's percentile_approx returns values of the column, never between two)
    qs = np.quantile(f, edge_probs(bins), method="inverted_cdf")
    return NumericBins(name, quantile_edges(float(f.min()), float(f.max()), qs))


def categorical_bins(name: str, values: Sequence[str], top_k: int = 20, buckets: int = 32,
                     fpr: float = 0.01) -> CategoricalBins:
    import pandas as pd

    vc = pd.Series(np.asarray(values, dtype=object)).value_counts()
    uniq, counts = vc.index.to_numpy(dtype=object), vc.to_numpy()
    order = np.lexsort((uniq.astype(str), -counts))
    top = tuple(str(uniq[i]) for i in order[:top_k])
    if uniq.size <= top_k or not buckets:
        return CategoricalBins(name, top)
    expected = float((counts == 1).sum()) / float(counts.sum())
    return CategoricalBins(name, top, buckets, build_membership(mix64(uniq).tolist(), fpr), expected)


def profile_arrays(columns: Mapping[str, np.ndarray | Sequence[str]], bins: Mapping[str, ColumnBins],
                   batch: int = 100_000) -> DatasetProfile:
    """The `DatasetProfile` the Arrow fold gives for these columns (numeric: float arrays; categorical: str)."""
    names = list(columns)
    add, num = layout(names, bins)
    acc = Accumulator(len(add), len(num))
    n = len(next(iter(columns.values())))
    for start in range(0, n, batch):
        data = {}
        for i, c in enumerate(names):
            part = columns[c][start:start + batch]
            if isinstance(bins[c], NumericBins):
                data[f"c{i}"] = pa.array(np.asarray(part, dtype=float), pa.float64())
            else:
                data[f"c{i}"] = pa.array(list(part), pa.string())
                if bins[c].hashed:
                    data[hash_column(i)] = pa.array(mix64(part), pa.int64())
        accumulate(acc, pa.RecordBatch.from_pydict(data), names, bins)
    return profile_from_row(core_row_of(acc, add, num), names, bins, ())
