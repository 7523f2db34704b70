"""The profile data types: one `DatasetProfile` per profiled table (or group), of a `NumericProfile` or
`CategoricalProfile` per column (frozen, pure).

Conventions (numeric):
- null_count: SQL nulls; nan_count: NaN; inf_count: ±infinity. null_rate = (nulls + NaN) / rows.
- count, mean, std (sample), min, max and quantiles use finite values only.
- Bins are ``[e_i, e_{i+1})``, the last one closed ``[e_{n-1}, e_n]`` (as ``numpy.histogram``);
  ``underflow`` counts values < e_0 (−inf included), ``overflow`` values > e_n (+inf included).
  Edges are quantiles of the reference's finite values (duplicates dropped): exact min and max,
  interior edges at equal quantile steps. A constant column gets edges ``(c, c)`` (one bin: c).
- Offset sums (for Wasserstein-1 from cells, `driftline.monitoring.measures.wasserstein_cells`): per cell, the
  sum over its finite values of the distance to the cell's inner edge — ``v − e_k`` in bin k, ``e_0 − v``
  in the underflow, ``v − e_n`` in the overflow (all ≥ 0) — and the finite counts of the two outer cells.
Conventions (categorical): values compared as strings; ``categories`` are the reference's top-K by
count (ties by value); everything else non-null counts as ``__other__``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


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
