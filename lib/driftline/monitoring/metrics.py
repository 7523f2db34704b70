"""The ``monitor_metrics`` row contract: one row per (run, model, version, window, slice, baseline, column, metric).

`drift_rows` (and later data-quality and performance rows) produce ``column, metric, value,
threshold, status, method, reason, n_reference, n_current``; `monitor_metrics_frame_rows` adds the
run context and orders the fields as the table contract (`driftline.tables.contracts.MONITOR_METRICS`,
``docs/table-reference.md``); the metrics themselves are documented in ``docs/monitoring.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.errors import DriftlineError
from driftline.vocabulary import STATUSES, finite_or_none

ALL_ROWS = "__all__"  # the slice of the whole window
BASELINES = ("reference", "previous_window")


class MetricsRowError(DriftlineError):
    """A metric row does not fit the ``monitor_metrics`` contract."""


@dataclass(frozen=True)
class MetricsContext:
    """What every row of one comparison shares (run, model version, window, slice, baseline)."""

    run_id: str
    run_date: dt.date
    model: str
    model_version: str
    reference_id: str
    window_start: dt.date
    window_end: dt.date
    created_at: dt.datetime
    config_hash: str
    code_version: str
    slice: str = ALL_ROWS
    baseline: str = "reference"


def slice_name(column: str | None = None, value: Any = None) -> str:
    """``__all__`` for the whole window, ``<column>=<value>`` for a segment (``<column>=__null__`` for nulls)."""
    if column is None:
        return ALL_ROWS
    return f"{column}={'__null__' if value is None else value}"


def monitor_metrics_frame_rows(rows: Sequence[Mapping[str, Any]], ctx: MetricsContext) -> list[tuple[Any, ...]]:
    """Rows of `driftline.monitoring.drift.drift_rows` → tuples in the `MONITOR_METRICS` contract's column order.

    NaN becomes null (an undefined value is never a number); statuses and baselines are checked.
    """
    if ctx.baseline not in BASELINES:
        raise MetricsRowError(f"baseline: expected one of {', '.join(BASELINES)}, found {ctx.baseline}")
    created = ctx.created_at.astimezone(dt.UTC).replace(tzinfo=None) if ctx.created_at.tzinfo else ctx.created_at
    out = []
    for r in rows:
        if r["status"] not in STATUSES:
            raise MetricsRowError(f"{r['column']}.{r['metric']}: expected status in {STATUSES}, found {r['status']}")
        out.append((
            ctx.run_date, ctx.model, ctx.model_version, ctx.reference_id,
            ctx.window_start, ctx.window_end, ctx.slice, ctx.baseline,
            r["column"], r["metric"], finite_or_none(r["value"]), finite_or_none(r["threshold"]), r["status"],
            r.get("method"), r.get("reason"),
            None if r.get("n_reference") is None else int(r["n_reference"]),
            None if r.get("n_current") is None else int(r["n_current"]),
            ctx.run_id, ctx.code_version, ctx.config_hash, created,
        ))
    return out
