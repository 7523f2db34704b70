"""Stored reference profiles (long-format ``reference_profiles`` rows) back into `DatasetProfile` objects (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from driftline.profiling.bins import CBPE_STAT_PREFIX, OTHER, NumericBins, bins_from_rows
from driftline.profiling.types import CategoricalProfile, DatasetProfile, NumericProfile
from driftline.vocabulary import SCORE  # the model's score is profiled like a feature, under this name

# calibration rows stored with a reference profile (`driftline.monitoring.calibration`)
THRESHOLD_STAT = "calibrated_threshold"
MEAN_STAT = "calibration_mean"
STD_STAT = "calibration_std"
CALIBRATION_STATS = (THRESHOLD_STAT, MEAN_STAT, STD_STAT)

CELL_STATS = ("quantile", "bin_count", "category_count", "bin_offset_sum", "bin_finite_count", "tail_count",
              "membership_filter")


def is_profile_row(row: Mapping[str, Any]) -> bool:
    """A stored row of the profile itself: not a calibration row, not an estimated-performance (``cbpe_*``) row."""
    stat = str(row["stat"])
    return stat not in CALIBRATION_STATS and not stat.startswith(CBPE_STAT_PREFIX)


def profile_from_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[DatasetProfile, tuple[float, ...]]:
    """Rebuild a `DatasetProfile` (and its quantile probabilities) from stored long-format profile rows.

    Inverse of `driftline.profiling.profile.profile_rows` (calibration rows and the estimated-performance
    ``cbpe_*`` rows, `CBPE_STAT_PREFIX`, are skipped). Columns are sorted by name with ``score`` last (a table
    read has no row order; the report and the metric rows should not depend on it).
    """
    rows = [r for r in rows if is_profile_row(r)]
    by_col: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["column"] == SCORE, r["column"])):
        by_col.setdefault(r["column"], []).append(r)
    bins = bins_from_rows(rows)
    out: dict[str, NumericProfile | CategoricalProfile] = {}
    probs: set[float] = set()
    n_rows = 0
    for name, items in by_col.items():
        stat = {r["stat"]: r["value"] for r in items if r["stat"] not in CELL_STATS}
        n_rows = int(stat["rows"])
        b = bins[name]

        def num(key: str, stat: dict[str, Any] = stat) -> float:
            v = stat.get(key)
            return math.nan if v is None else float(v)

        if items[0]["kind"] == "numeric":
            qs = tuple(sorted((float(r["quantile"]), math.nan if r["value"] is None else float(r["value"]))
                              for r in items if r["stat"] == "quantile"))
            probs |= {q for q, _ in qs}
            cells = {int(r["bin"]): int(r["value"]) for r in items if r["stat"] == "bin_count"}
            offsets = {int(r["bin"]): float(r["value"]) for r in items if r["stat"] == "bin_offset_sum"}
            finite = {int(r["bin"]): int(r["value"]) for r in items if r["stat"] == "bin_finite_count"}
            edges = b.edges if isinstance(b, NumericBins) else ()
            n = max(len(edges) - 1, 0)
            out[name] = NumericProfile(
                column=name, rows=n_rows, null_count=int(num("null_count")), nan_count=int(num("nan_count")),
                inf_count=int(num("inf_count")), count=int(num("count")), mean=num("mean"), std=num("std"),
                min=num("min"), max=num("max"), quantiles=qs, edges=tuple(edges),
                bin_counts=tuple(cells.get(k, 0) for k in range(n)),
                underflow=cells.get(-1, 0), overflow=cells.get(n, 0),
                offset_sums=tuple(offsets.get(k, 0.0) for k in range(-1, n + 1)) if offsets else (),
                underflow_finite=finite.get(-1, 0), overflow_finite=finite.get(n, 0),
            )
        else:
            cats = sorted((int(r["bin"]), str(r["category"]), int(r["value"]))
                          for r in items if r["stat"] == "category_count")
            known = [(c, v) for _, c, v in cats if c != OTHER]
            out[name] = CategoricalProfile(
                column=name, rows=n_rows, null_count=int(num("null_count")), count=int(num("count")),
                distinct_approx=int(num("distinct_approx")) if "distinct_approx" in stat else None,
                categories=tuple(c for c, _ in known),
                category_counts=tuple(v for _, v in known), other=sum(v for _, c, v in cats if c == OTHER),
                tail_counts=tuple(int(r["value"]) for r in sorted((r for r in items if r["stat"] == "tail_count"),
                                                                  key=lambda r: int(r["bin"]))),
                unseen=int(num("unseen_count")) if "unseen_count" in stat else 0,
                expected_unseen=getattr(b, "expected_unseen", 0.0),
            )
    return DatasetProfile(rows=n_rows, columns=out), tuple(sorted(probs))
