"""Independent numpy builders of profiles (no Spark) for pure-number drift tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftline.monitoring.profile import CategoricalProfile, NumericProfile

FINE = tuple(round(i / 100, 2) for i in range(1, 100))


def numeric_profile(name: str, raw: np.ndarray, edges: Sequence[float], probs: Sequence[float] = FINE,
                    nulls: int = 0) -> NumericProfile:
    """A profile built with numpy: histogram on ``edges`` (under/overflow), exact inverted-CDF quantiles."""
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
