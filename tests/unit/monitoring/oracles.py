"""Independent numpy builders of profiles (no Spark) for pure-number drift tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftline.profiling.types import CategoricalProfile, NumericProfile

FINE = tuple(round(i / 100, 2) for i in range(1, 100))


def offset_sums(x: np.ndarray, edges: Sequence[float]) -> dict[str, object]:
    """Offset sums and finite outer counts of finite values ``x`` (`NumericProfile` fields), by numpy."""
    e = np.asarray(edges, dtype=float)
    if not e.size:
        return {}
    below, above = x[x < e[0]], x[x > e[-1]]
    inside = x[(x >= e[0]) & (x <= e[-1])]
    k = np.minimum(np.digitize(inside, e) - 1, e.size - 2)     # bin of each value, the last one closed
    sums = [float(np.sum(e[0] - below)), *(float(np.sum(inside[k == j] - e[j])) for j in range(e.size - 1)),
            float(np.sum(above - e[-1]))]
    return {"offset_sums": tuple(sums), "underflow_finite": int(below.size), "overflow_finite": int(above.size)}


def numeric_profile(name: str, raw: np.ndarray, edges: Sequence[float], probs: Sequence[float] = FINE,
                    nulls: int = 0, offsets: bool = True) -> NumericProfile:
    """A profile built with numpy: histogram on ``edges`` (under/overflow), exact inverted-CDF quantiles,
    offset sums (``offsets``; without them drift takes Wasserstein-1 from the quantiles)."""
    raw = np.asarray(raw, dtype=float)
    not_nan = raw[~np.isnan(raw)]
    x = raw[np.isfinite(raw)]
    e = np.asarray(edges, dtype=float)
    inside = not_nan[(not_nan >= e[0]) & (not_nan <= e[-1])] if e.size else not_nan[:0]
    counts = np.histogram(inside, bins=e)[0] if e.size else np.array([], dtype=int)
    qs = np.quantile(x, probs, method="inverted_cdf") if x.size else [np.nan] * len(probs)
    return NumericProfile(
        column=name, rows=raw.size + nulls, null_count=nulls, nan_count=int(np.isnan(raw).sum()),
        inf_count=int(np.isinf(raw).sum()), count=int(x.size),
        mean=float(x.mean()) if x.size else np.nan, std=float(x.std(ddof=1)) if x.size > 1 else np.nan,
        min=float(x.min()) if x.size else np.nan, max=float(x.max()) if x.size else np.nan,
        quantiles=tuple(zip(probs, map(float, qs), strict=True)), edges=tuple(map(float, e)),
        bin_counts=tuple(int(c) for c in counts),
        underflow=int((not_nan < e[0]).sum()) if e.size else 0,
        overflow=int((not_nan > e[-1]).sum()) if e.size else 0,
        **(offset_sums(x, e) if offsets else {}),
    )


def quantile_bins(x: np.ndarray, bins: int = 10) -> tuple[float, ...]:
    """Reference edges like `fit_reference_bins` (exact quantiles, duplicates dropped)."""
    x = x[np.isfinite(x)]
    values = sorted({float(x.min()), float(x.max()), *np.quantile(x, [i / bins for i in range(1, bins)])})
    return tuple(values) if len(values) > 1 else (values[0], values[0])


def categorical_profile(name: str, values: Sequence[str | None], categories: Sequence[str]) -> CategoricalProfile:
    vals = np.array([v for v in values if v is not None], dtype=object)
    uniq, n = np.unique(vals.astype(str), return_counts=True) if vals.size else (np.array([]), np.array([]))
    by = dict(zip(uniq.tolist(), n.tolist(), strict=True))
    counts = tuple(int(by.get(c, 0)) for c in categories)
    return CategoricalProfile(
        column=name, rows=len(values), null_count=len(values) - vals.size, count=int(vals.size),
        distinct_approx=len(by), categories=tuple(categories), category_counts=counts,
        other=int(vals.size) - sum(counts),
    )
