"""Dataset drift: every column's verdict, false-discovery control across columns, and the long-format rows.

Usage::

    spec = DriftSpec.from_config(cfg.monitoring.drift)
    result = dataset_drift(reference_profile, current_profile, spec)   # DatasetDrift (frozen)
    rows = drift_rows(result)        # long format: column, metric, value, threshold, status, ...

Both profiles must come from `driftline.profiling.profile.profile` with the same reference bins.
Nothing here touches data: every number is a function of histogram cells, quantiles and moments.

The layers below: `driftline.monitoring.measures` (PSI, JS, KS, chi-square, Wasserstein-1, … on cell
counts, and Benjamini–Hochberg), `driftline.monitoring.comparison` (those measures applied to two profiles:
`compare`), `driftline.monitoring.verdict` (one column judged against its thresholds: `column_drift`).
Here `dataset_drift` applies Benjamini–Hochberg to the test-decided columns and the drifted-share rule
to the dataset; `drift_rows` writes the result as rows of ``monitor_metrics``. Calibrated thresholds are
in `driftline.monitoring.thresholds`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from driftline.monitoring.measures import DriftError, benjamini_hochberg
from driftline.monitoring.spec import PVALUE_METHODS, DriftSpec
from driftline.monitoring.verdict import ColumnDrift, MetricResult, column_drift
from driftline.profiling.types import DatasetProfile
from driftline.vocabulary import ALERT, INSUFFICIENT, OK, WARN, Status

log = logging.getLogger(__name__)

DATASET = "__dataset__"


@dataclass(frozen=True)
class DatasetDrift:
    """Dataset verdict: share of drifted columns among those with enough data, FDR-controlled."""

    columns: tuple[ColumnDrift, ...]
    evaluated: int
    insufficient: int
    drifted: int
    drift_share: float | None
    threshold: float
    fdr: float
    status: Status


def dataset_drift(
    reference: DatasetProfile, current: DatasetProfile, spec: DriftSpec, columns: Sequence[str] | None = None
) -> DatasetDrift:
    """Per-column drift of ``columns`` (default: all reference columns) and the dataset verdict.

    Columns decided by a p-value test count as drifted only if Benjamini–Hochberg at level
    ``spec.fdr`` rejects them among all tested columns; a column whose raw p-value is below its
    level but is not rejected is ``warn``. Distance-decided columns count when above threshold.
    Dataset status: ``insufficient_data`` if no column has enough data, ``alert`` if the drifted
    share reaches ``dataset_drift_share`` (≥, as Evidently), ``warn`` if some column drifted,
    else ``ok``.
    """
    result = dataset_drifts({None: (reference, current)}, spec, columns)[None]
    log.info("drift: %d of %d evaluated columns drifted (%d insufficient): %s",
             result.drifted, result.evaluated, result.insufficient, result.status)
    return result


def dataset_drifts(pairs: Mapping[Any, tuple[DatasetProfile, DatasetProfile]], spec: DriftSpec,
                   columns: Sequence[str] | None = None) -> dict[Any, DatasetDrift]:
    """`dataset_drift` of several (reference, current) pairs — the segments of a window — with ONE
    Benjamini–Hochberg procedure over every tested (pair, column): the false-discovery rate is controlled
    across columns × segments, and each pair gets its own dataset verdict from its columns."""
    results: dict[Any, list[ColumnDrift]] = {}
    for key, (reference, current) in pairs.items():
        names = list(reference.columns) if columns is None else list(columns)
        missing = [c for c in names if c not in reference.columns or c not in current.columns]
        if missing:
            raise DriftError(
                f"drift: expected profiles of {', '.join(names)} on both sides, found none for {', '.join(missing)} "
                f"(reference has {', '.join(reference.columns)}; current has {', '.join(current.columns)})"
            )
        results[key] = [column_drift(reference.columns[c], current.columns[c], spec) for c in names]
    tested = [(k, i) for k, found in results.items() for i, r in enumerate(found)
              if r.method in PVALUE_METHODS and r.drifted is not None]
    adjusted = benjamini_hochberg([results[k][i].decision_value for k, i in tested])  # type: ignore[misc]
    for (k, i), q in zip(tested, adjusted, strict=True):
        r = results[k][i]
        rejected = q <= spec.fdr
        crossed = bool(r.decision_value is not None and r.threshold is not None and r.decision_value < r.threshold)
        status: Status = ALERT if (crossed and rejected) or r.unseen_alert else (WARN if crossed else OK)
        metrics = (*r.metrics, MetricResult("pvalue_adjusted", q, spec.fdr, ALERT if rejected else OK))
        results[k][i] = replace(r, drifted=bool((crossed and rejected) or r.unseen_alert), status=status,
                                pvalue_adjusted=q, metrics=metrics)
    return {k: _verdict(found, spec) for k, found in results.items()}


def _verdict(results: Sequence[ColumnDrift], spec: DriftSpec) -> DatasetDrift:
    """The dataset verdict of judged columns (the drifted-share rule)."""
    evaluated = [r for r in results if r.drifted is not None]
    drifted = sum(1 for r in evaluated if r.drifted)
    share = drifted / len(evaluated) if evaluated else None
    status: Status
    if share is None:
        status = INSUFFICIENT
    elif share >= spec.dataset_drift_share:
        status = ALERT
    else:
        status = WARN if drifted else OK
    return DatasetDrift(
        columns=tuple(results), evaluated=len(evaluated), insufficient=len(results) - len(evaluated),
        drifted=drifted, drift_share=share, threshold=spec.dataset_drift_share, fdr=spec.fdr, status=status,
    )


# --------------------------------------------------------------------------- long format


DRIFT_ROW_FIELDS = ("column", "metric", "value", "threshold", "status", "method", "reason", "n_reference", "n_current")


def drift_rows(result: DatasetDrift) -> list[dict[str, Any]]:
    """Long-format rows, one per (column, metric), see `DRIFT_ROW_FIELDS` and ``docs/monitoring.md``.

    Per column: every metric of `column_drift` (plus ``pvalue_adjusted`` for test-decided columns)
    and a ``drift`` verdict row (value 1/0, None when insufficient; ``method`` and ``reason`` set).
    Dataset rows (column ``__dataset__``): ``evaluated_columns``, ``insufficient_columns``,
    ``drifted_columns`` and the verdict ``drift_share`` (threshold = dataset_drift_share).
    """
    out: list[dict[str, Any]] = []
    for c in result.columns:
        common = dict(column=c.column, method=c.method, reason=c.reason, n_reference=c.n_reference,
                      n_current=c.n_current)
        for m in c.metrics:
            out.append({**common, "metric": m.metric, "value": m.value, "threshold": m.threshold, "status": m.status})
        out.append({**common, "metric": "drift", "value": None if c.drifted is None else float(c.drifted),
                    "threshold": c.threshold, "status": c.status})
    base = dict(column=DATASET, method=None, reason=None, n_reference=None, n_current=None, threshold=None)
    for metric, value in (("evaluated_columns", result.evaluated), ("insufficient_columns", result.insufficient),
                          ("drifted_columns", result.drifted)):
        out.append({**base, "metric": metric, "value": float(value), "status": OK})
    reason = "no column has enough data" if result.drift_share is None else None
    out.append({**base, "metric": "drift_share", "value": result.drift_share, "threshold": result.threshold,
                "status": result.status, "reason": reason})
    return [{k: r[k] for k in DRIFT_ROW_FIELDS} for r in out]


def drift_by_column(result: DatasetDrift) -> Mapping[str, ColumnDrift]:
    """Column name → its verdict."""
    return {c.column: c for c in result.columns}
