"""The ``monitor_metrics`` row contract: one row per (run, model, version, window, slice, baseline, column, metric).

`drift_rows` (and later data-quality and performance rows) produce ``column, metric, value,
threshold, status, method, reason, n_reference, n_current``; `monitor_metrics_frame_rows` adds the
run context and orders the fields as `monitor_metrics_schema`. Columns are documented in
``docs/monitoring.md``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError
from driftline.monitoring.spec import STATUSES

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

MONITOR_METRICS = "monitor_metrics"
ALL_ROWS = "__all__"  # the slice of the whole window
BASELINES = ("reference", "previous_window")
# The key of a row: at most one row per key in the table (idempotent rewrite per date).
KEY_FIELDS = ("run_date", "model_name", "model_version", "window_start", "window_end", "slice", "baseline",
              "column", "metric")


class MetricsRowError(DriftlineError):
    """A metric row does not fit the ``monitor_metrics`` contract."""


def monitor_metrics_schema() -> StructType:
    """Schema of ``monitor_metrics`` (long format; see ``docs/monitoring.md``)."""
    from pyspark.sql.types import (
        DateType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    return StructType([
        StructField("run_id", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("model_name", StringType(), False),
        StructField("model_version", StringType(), False),
        StructField("reference_id", StringType(), False),
        StructField("window_start", DateType(), False),
        StructField("window_end", DateType(), False),
        StructField("slice", StringType(), False),
        StructField("baseline", StringType(), False),
        StructField("column", StringType(), False),
        StructField("metric", StringType(), False),
        StructField("value", DoubleType(), True),
        StructField("threshold", DoubleType(), True),
        StructField("status", StringType(), False),
        StructField("method", StringType(), True),
        StructField("reason", StringType(), True),
        StructField("n_reference", LongType(), True),
        StructField("n_current", LongType(), True),
        StructField("created_at", TimestampType(), False),
    ])


@dataclass(frozen=True)
class MetricsContext:
    """What every row of one comparison shares (run, model version, window, slice, baseline)."""

    run_id: str
    run_date: dt.date
    model_name: str
    model_version: str
    reference_id: str
    window_start: dt.date
    window_end: dt.date
    created_at: dt.datetime
    slice: str = ALL_ROWS
    baseline: str = "reference"


def slice_name(column: str | None = None, value: Any = None) -> str:
    """``__all__`` for the whole window, ``<column>=<value>`` for a segment (``<column>=__null__`` for nulls)."""
    if column is None:
        return ALL_ROWS
    return f"{column}={'__null__' if value is None else value}"


def monitor_metrics_frame_rows(rows: Sequence[Mapping[str, Any]], ctx: MetricsContext) -> list[tuple[Any, ...]]:
    """Rows of `driftline.monitoring.drift.drift_rows` → tuples in `monitor_metrics_schema` order.

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
            ctx.run_id, ctx.run_date, ctx.model_name, ctx.model_version, ctx.reference_id,
            ctx.window_start, ctx.window_end, ctx.slice, ctx.baseline,
            r["column"], r["metric"], _clean(r["value"]), _clean(r["threshold"]), r["status"],
            r.get("method"), r.get("reason"),
            None if r.get("n_reference") is None else int(r["n_reference"]),
            None if r.get("n_current") is None else int(r["n_current"]),
            created,
        ))
    return out


def _clean(value: float | None) -> float | None:
    """NaN (undefined) and ±inf (beyond the double range) are stored as null, never as a number."""
    return None if value is None or not math.isfinite(value) else float(value)
