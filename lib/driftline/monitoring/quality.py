"""Data-quality and schema rows of a monitor run, from the reference and window profiles (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from driftline.monitoring.comparison import cells, unseen_count
from driftline.monitoring.comparison import unseen_threshold as unseen_limit
from driftline.monitoring.drift import DATASET
from driftline.profiling.types import CategoricalProfile, DatasetProfile, NumericProfile
from driftline.vocabulary import INSUFFICIENT, OK, SCORE, WARN, Status, finite_or_none

# Completeness: a column's null rate (null + NaN) is `warn` above the reference's rate plus this.
NULL_RATE_TOLERANCE = 0.05


def quality_rows(reference: DatasetProfile, current: DatasetProfile, min_rows: int,
                 unseen_threshold: float = 0.1) -> list[dict[str, Any]]:
    """Data-quality rows per column from the two profiles (pure): completeness, range, window size.

    - ``null_rate`` (null + NaN share; threshold = reference rate + `NULL_RATE_TOLERANCE`, ``warn`` above)
      and ``null_rate_reference`` (descriptive);
    - numeric: ``min`` / ``max`` of the finite current values (threshold = the reference's min / max,
      ``warn`` below / above) and ``out_of_range_share`` (share of non-missing values outside the
      reference range, ±inf included; descriptive);
    - ``new_values_share`` where the share of values the reference never held is known (value cells,
      complete categorical top K or membership filter): threshold = the reference's expected share E
      (Good–Turing) + ``unseen_threshold`` · (1 − E), ``warn`` above (the drift row ``unseen_share``
      alerts on the same rule);
    - ``__dataset__``: ``rows`` of the window (threshold = min_rows, ``insufficient_data`` below).
    Columns are ``insufficient_data`` when the window has no rows.
    """
    out: list[dict[str, Any]] = []

    def add(column: str, metric: str, value: float | None, threshold: float | None, status: Status,
            n_ref: int | None = None, n_cur: int | None = None, reason: str | None = None) -> None:
        clean = finite_or_none(value)
        if clean is None and status != INSUFFICIENT:
            status = OK
        out.append(dict(column=column, metric=metric, value=clean, threshold=threshold, status=status,
                        method=None, reason=reason, n_reference=n_ref, n_current=n_cur))

    empty = current.rows == 0
    reason = "the window has no rows" if empty else None
    for name, ref in reference.columns.items():
        cur = current.columns[name]
        base = INSUFFICIENT if empty else OK
        limit = ref.null_rate + NULL_RATE_TOLERANCE
        rate = cur.null_rate
        status = base if empty or math.isnan(rate) or rate <= limit else WARN
        add(name, "null_rate", rate, limit, status, ref.rows, cur.rows, reason)
        add(name, "null_rate_reference", ref.null_rate, None, base, ref.rows, cur.rows, reason)
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
            lo_status = base if empty or math.isnan(cur.min) or cur.min >= ref.min else WARN
            hi_status = base if empty or math.isnan(cur.max) or cur.max <= ref.max else WARN
            add(name, "min", cur.min, finite_or_none(ref.min), lo_status, ref.count, cur.count, reason)
            add(name, "max", cur.max, finite_or_none(ref.max), hi_status, ref.count, cur.count, reason)
            values = cur.underflow + sum(cur.bin_counts) + cur.overflow
            share = (cur.underflow + cur.overflow) / values if values else math.nan
            add(name, "out_of_range_share", share, None, base if values else INSUFFICIENT, ref.count, values,
                reason if values else "no non-missing values in the window")
        unseen, values = unseen_count(ref, cur), sum(cells(cur))   # values the reference never held, of all
        if unseen is not None and values:
            expected = ref.expected_unseen if isinstance(ref, CategoricalProfile) else 0.0
            limit = unseen_limit(expected, unseen_threshold)
            add(name, "new_values_share", unseen / values, limit, WARN if unseen / values > limit else base,
                ref.count, values, reason)
    short = current.rows < min_rows
    add(DATASET, "rows", float(current.rows), float(min_rows), INSUFFICIENT if short else OK, reference.rows,
        current.rows, f"the window has {current.rows} rows, expected at least {min_rows} (monitoring.drift.min_rows)"
        if short else None)
    return out




def schema_rows(reference: DatasetProfile, features: Sequence[str], version: str) -> list[dict[str, Any]]:
    """Schema changes of the configured features against the reference of ``version`` (pure).

    The model's inputs are the configured ``features``; the reference profiled those of the version
    in use. ``new_column`` (``warn``): configured now but not in the reference, so the champion does
    not use it (retrain to use it); ``removed_column`` (``warn``): in the reference but no longer
    configured, so new dates of the features table hold nulls for it (its ``null_rate`` shows that);
    ``__dataset__`` / ``schema_changes``: their number (threshold 0, ``warn`` above). A reference
    column missing from the features table, or retyped there, fails instead (`window_frame`).
    """
    profiled = [c for c in reference.columns if c != SCORE]
    added = [c for c in features if c not in reference.columns]
    removed = [c for c in profiled if c not in features]
    rows: list[dict[str, Any]] = []

    def add(column: str, metric: str, value: float, status: Status, reason: str | None,
            threshold: float | None = None) -> None:
        rows.append(dict(column=column, metric=metric, value=value, threshold=threshold, status=status, method=None,
                         reason=reason, n_reference=None, n_current=None))

    for c in added:
        add(c, "new_column", 1.0, WARN, f"configured feature not in the reference profile of version {version}: "
            "the champion does not use it (retrain to use it)")
    for c in removed:
        add(c, "removed_column", 1.0, WARN, f"in the reference profile of version {version} but no longer "
            "configured: new feature rows hold nulls for it")
    changes = len(added) + len(removed)
    add(DATASET, "schema_changes", float(changes), WARN if changes else OK,
        f"{changes} configured feature(s) differ from the reference of version {version}: "
        f"new {', '.join(added) or '-'}; removed {', '.join(removed) or '-'}" if changes else None, threshold=0.0)
    return rows
