"""Late-label performance rows (pure over a labelled frame) and the earlier windows a run recomputes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from driftline.monitoring.metrics import slice_name
from driftline.vocabulary import INSUFFICIENT, OK, SCORE, finite_or_none, worst

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.monitoring.spec import PerformanceConfig

log = logging.getLogger(__name__)

PERFORMANCE = "__performance__"  # the column of late-label performance rows in monitor_metrics
GROUP = "__group__"  # group column of the performance pass: a segment value, or null for the whole window
SLICE = "__slice__"  # `sliced_performance`'s group: a JSON object of the ``by`` value, segment column and value
MAX_SEGMENT_VALUES = 50  # per segment column, the most scored values get performance rows
DECISION_METRICS = ("accuracy", "precision", "recall", "f1")  # classification at a decision threshold


@dataclass(frozen=True)
class MaturedWindow:
    """An earlier window's performance, recomputed with the labels matured since it was monitored."""

    start: dt.date
    end: dt.date
    version: str
    rows: list[dict[str, Any]]
    segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # slice name → its performance rows


def performance_rows(frame: DataFrame | None, pcfg: PerformanceConfig, task: str,
                     by: str | None = None, threshold: float | None = None,
                     family: Callable[[Any], tuple[Any, Any]] | None = None) -> dict[Any, list[dict[str, Any]]]:
    """Late-label performance rows of ``frame`` (see `labelled_frame`), for the whole window or per ``by`` value.

    One grouped aggregation pass, plus one for AUC over the groups that reach the floors. Rows per
    group: ``labelled_rows`` (scored rows with a matured label; threshold =
    ``monitoring.performance.min_labels``), ``label_coverage`` (labelled / scored rows; threshold =
    ``min_label_coverage``); then classification ``auc``, ``log_loss``, ``brier`` or regression
    ``rmse``, ``mae`` — descriptive (status ``ok``) when count and coverage reach the floors, else
    ``insufficient_data`` with a reason. Classification with a decision ``threshold`` also gets `DECISION_METRICS`
    (``accuracy``, ``precision``, ``recall``, ``f1`` of prediction = score ≥ threshold, as the score job's
    ``predicted_label``; from TP / FP / FN / TN sums of the same pass; null and ``insufficient_data`` when
    undefined, e.g. precision without a predicted positive). Keys: None for the whole window (``by`` None), else the
    values of ``by`` (None for nulls), at most `MAX_SEGMENT_VALUES` of them (the most scored, ties by value); with
    ``family``, at most that many of each family (``family(key)`` = (family, value the ties are ordered by); family
    None: a group never left out).
    No frame (no labels table) → no rows.
    """
    from pyspark.sql import functions as F

    if frame is None:
        return {}
    group = F.col(by) if by is not None else F.lit(None).cast("string")
    frame = frame.withColumn(GROUP, group)
    classification = task == "classification"
    decision = threshold if classification else None
    values = _group_aggregates(frame, classification, by, decision, family)
    reasons = _floor_reasons(values, pcfg)
    ready = [g for g, r in reasons.items() if r is None]
    if classification and ready:
        _add_auc(frame, values, ready)
    return {g: _group_rows(v, reasons[g], pcfg, classification, decision is not None) for g, v in values.items()}


def _label_and_used() -> tuple[Any, Any]:
    """The label column, and the rows that count: scored, with a matured label."""
    from pyspark.sql import functions as F

    from driftline.training.dataset import LABEL

    y = F.col(LABEL)
    return y, y.isNotNull() & F.col(SCORE).isNotNull()


def _group_aggregates(frame: DataFrame, classification: bool, by: str | None, threshold: float | None = None,
                      family: Callable[[Any], tuple[Any, Any]] | None = None) -> dict[Any, dict[str, Any]]:
    """Group → its ``scored`` and labelled (``n``) counts and error metrics (one pass; with a decision
    ``threshold`` also `DECISION_METRICS`), the most scored first, at most `MAX_SEGMENT_VALUES` groups of a segment
    (of a ``family``, see `performance_rows`)."""
    from pyspark.sql import functions as F

    y, used = _label_and_used()

    def avg(expr: Any) -> Any:
        return F.avg(F.when(used, expr))

    p = F.least(F.greatest(F.col(SCORE), F.lit(1e-15)), F.lit(1 - 1e-15))
    if classification:
        aggs = [avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss"),
                avg((F.col(SCORE) - y) ** 2).alias("brier")]
        if threshold is not None:
            # Spark orders NaN above every number; the score job's predicted_label (numpy) is 0 for NaN
            pred = (F.col(SCORE) >= F.lit(float(threshold))) & ~F.isnan(F.col(SCORE))
            aggs += [F.count(F.when(used & pred & (y == 1), 1)).alias("_tp"),
                     F.count(F.when(used & pred & (y != 1), 1)).alias("_fp"),
                     F.count(F.when(used & ~pred & (y == 1), 1)).alias("_fn")]
    else:
        aggs = [F.sqrt(avg((F.col(SCORE) - y) ** 2)).alias("rmse"), avg(F.abs(F.col(SCORE) - y)).alias("mae")]
    found = frame.groupBy(GROUP).agg(F.count(F.lit(1)).alias("scored"), F.count(F.when(used, 1)).alias("n"),
                                     *aggs).collect()
    groups = _most_scored(found, family or (lambda g: (by, g))) if by is not None else found
    out = {r[GROUP]: r.asDict() for r in groups}
    if threshold is not None:
        for v in out.values():
            v.update(_decision_metrics(int(v["_tp"]), int(v["_fp"]), int(v["_fn"]), int(v["n"])))
    return out


def _most_scored(groups: list[Any], family: Callable[[Any], tuple[Any, Any]]) -> list[Any]:
    """The ``groups``, most scored first (ties: by value), less those past the `MAX_SEGMENT_VALUES` most scored of
    their family."""
    placed = sorted(((r, *family(r[GROUP])) for r in groups),
                    key=lambda x: (-x[0]["scored"], x[2] is None, str(x[2])))
    seen: dict[Any, int] = {}
    kept = []
    for r, f, _ in placed:
        seen[f] = seen.get(f, 0) + 1
        if f is None or seen[f] <= MAX_SEGMENT_VALUES:
            kept.append(r)
    for f, n in seen.items():
        if f is not None and n > MAX_SEGMENT_VALUES:
            log.warning("segment %s: %d values, keeping the %d most scored", f, n, MAX_SEGMENT_VALUES)
    return kept


def sliced_performance(frame: DataFrame | None, pcfg: PerformanceConfig, task: str, segments: Sequence[str] = (),
                       by: str | None = None, threshold: float | None = None
                       ) -> dict[tuple[str | None, str], list[dict[str, Any]]]:
    """`performance_rows` per value of ``by`` (as a string; None when ``by`` is None: the whole frame) and slice
    (`slice_name`): ``__all__`` for all its rows, ``<column>=<value>`` per value of each ``segments`` column, at
    most `MAX_SEGMENT_VALUES` values of a column per ``by`` value (the most scored).

    One grouped pass and one AUC pass for all of them: each row is counted once in each of its 1 + len(segments)
    slices (the rows are exploded, the aggregation partial before the shuffle), instead of one pair of passes per
    segment column over a cached frame."""
    from pyspark.sql import functions as F

    if frame is None:
        return {}
    owner = (F.col(by).cast("string") if by is not None else F.lit(None).cast("string")).alias("by")
    slices = [F.to_json(F.struct(owner)),
              *[F.to_json(F.struct(owner, F.lit(c).alias("column"), F.col(c).cast("string").alias("value")))
                for c in segments]]
    exploded = frame.withColumn(SLICE, F.explode(F.array(*slices)))

    def family(key: str) -> tuple[str | None, str | None]:   # (a segment column within one ``by`` value, its value)
        found = json.loads(key)
        column, of = found.get("column"), found.get("by")
        name = None if column is None else column if of is None else f"{column} ({by} {of})"
        return name, found.get("value")

    out: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for key, rows in performance_rows(exploded, pcfg, task, SLICE, threshold, family).items():
        found = json.loads(key)
        out[(found.get("by"), slice_name(found.get("column"), found.get("value")))] = rows
    return out


def _decision_metrics(tp: int, fp: int, fn: int, n: int) -> dict[str, float | None]:
    """Accuracy, precision, recall and F1 from the confusion counts of ``n`` labelled rows (None when undefined)."""
    def ratio(a: int, b: int) -> float | None:
        return a / b if b > 0 else None

    tn = n - tp - fp - fn
    return dict(accuracy=ratio(tp + tn, n), precision=ratio(tp, tp + fp), recall=ratio(tp, tp + fn),
                f1=ratio(2 * tp, 2 * tp + fp + fn))


def _floor_reasons(values: Mapping[Any, dict[str, Any]], pcfg: PerformanceConfig) -> dict[Any, str | None]:
    """Group → why its metrics are ``insufficient_data`` (too few labels, too low a coverage), None when it
    reaches both floors; sets each group's ``coverage`` (labelled / scored rows)."""
    reasons: dict[Any, str | None] = {}
    for g, v in values.items():
        n, scored = int(v["n"]), int(v["scored"])
        coverage = n / scored if scored else math.nan
        v["coverage"] = coverage
        reasons[g] = (
            f"{n} predictions have a matured label, expected at least {pcfg.min_labels} "
            "(monitoring.performance.min_labels)" if n < pcfg.min_labels else
            f"label coverage is {coverage:.3f}, expected at least {pcfg.min_label_coverage} "
            "(monitoring.performance.min_label_coverage)" if coverage < pcfg.min_label_coverage else None)
    return reasons


def _add_auc(frame: DataFrame, values: Mapping[Any, dict[str, Any]], ready: Sequence[Any]) -> None:
    """Sets ``auc`` of the ``ready`` groups (one pass over their scores; null when the labels hold one class)."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    y, used = _label_and_used()
    keep = F.col(GROUP).isin([g for g in ready if g is not None])
    if None in ready:
        keep = keep | F.col(GROUP).isNull()
    per_score = (frame.filter(used & keep).groupBy(GROUP, SCORE)
                 .agg(F.sum(y).alias("pos"), F.sum(1 - y).alias("neg")))
    below = Window.partitionBy(GROUP).orderBy(SCORE).rowsBetween(Window.unboundedPreceding, -1)
    # Mann–Whitney: each positive beats the negatives with a lower score, ties count one half
    pairs = F.sum("pos") * F.sum("neg")  # zero when the labels hold one class: AUC undefined (null)
    aucs = (per_score.withColumn("neg_below", F.coalesce(F.sum("neg").over(below), F.lit(0.0)))
            .groupBy(GROUP)
            .agg(F.try_divide(F.sum(F.col("pos") * (F.col("neg_below") + F.col("neg") / 2)), pairs).alias("auc"))
            .collect())
    for r in aucs:
        values[r[GROUP]]["auc"] = r["auc"]


def _group_rows(v: Mapping[str, Any], reason: str | None, pcfg: PerformanceConfig,
                classification: bool, decision: bool = False) -> list[dict[str, Any]]:
    """One group's rows: ``labelled_rows``, ``label_coverage``, then its metrics (``insufficient_data`` with
    ``reason`` when it does not reach the floors)."""
    n, coverage = int(v["n"]), v["coverage"]
    common = dict(column=PERFORMANCE, method=None, n_reference=None, n_current=n)
    rows = [{**common, "metric": "labelled_rows", "value": float(n), "threshold": float(pcfg.min_labels),
             "status": OK if n >= pcfg.min_labels else INSUFFICIENT, "reason": None},
            {**common, "metric": "label_coverage", "value": finite_or_none(coverage),
             "threshold": pcfg.min_label_coverage,
             "status": OK if coverage >= pcfg.min_label_coverage else INSUFFICIENT, "reason": None}]
    metrics = ("auc", "log_loss", "brier", *(DECISION_METRICS if decision else ())) if classification \
        else ("rmse", "mae")
    for metric in metrics:
        value = None if reason is not None else v.get(metric)
        rows.append({**common, "metric": metric, "value": None if value is None else float(value),
                     "threshold": None, "status": INSUFFICIENT if reason is not None or value is None else OK,
                     "reason": reason})
    return rows


def performance_status(rows: Sequence[Mapping[str, Any]]) -> str:
    """``insufficient_data`` when there are no rows or any is, else the worst status."""

    if not rows:
        return INSUFFICIENT
    statuses = [r["status"] for r in rows]
    return INSUFFICIENT if INSUFFICIENT in statuses else worst(statuses)
