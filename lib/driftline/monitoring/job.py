"""The monitor job: window → reference profile → one profiling pass → drift, quality, performance → tables + report.

For each date D of the run, the window is [D − window_days + 1, D] and the previous window the
``window_days`` before it. Order of work, so a failure leaves nothing half-written for the date:
read the champion's predictions of the window (none → exit 1, nothing written) and resolve the
version that scored it → load that version's reference profile and bins → profile features +
prediction of the current and previous windows in ONE grouped aggregation pass with the reference
bins → drift vs the reference and vs the previous window (`driftline.monitoring.drift`),
data-quality and late-label performance rows → HTML report (atomic rename) → replace the
(model, run_date) partition of ``monitor_metrics``
→ replace the (model, run_date) partition of ``monitor_runs`` (the run's verdict row, written
last). A rerun of a date replaces both partitions (R1). Drift found is a result: exit 0.
Columns are documented in ``docs/monitoring.md``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError
from driftline.monitoring.calibration import CALIBRATION_STATS, thresholds_from_rows
from driftline.monitoring.drift import DATASET, cells, dataset_drift, drift_rows, unseen_count
from driftline.monitoring.drift import unseen_threshold as unseen_limit
from driftline.monitoring.evidently_page import sample_rows, write_evidently_page
from driftline.monitoring.metrics import (
    ALL_ROWS,
    MONITOR_METRICS,
    MetricsContext,
    monitor_metrics_frame_rows,
    monitor_metrics_schema,
    slice_name,
)
from driftline.monitoring.profile import (
    CategoricalProfile,
    ColumnBins,
    DatasetProfile,
    NumericProfile,
    bins_from_rows,
    profile_by,
)
from driftline.monitoring.report import PERFORMANCE, trend_points
from driftline.monitoring.spec import ALERT, INSUFFICIENT, OK, WARN, DriftSpec, Status
from driftline.monitoring.stored import profile_from_rows
from driftline.registry.profiles import PREDICTION, read_reference_rows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from driftline.config.schema import PerformanceConfig
    from driftline.context import JobContext
    from driftline.jobs import JobResult

log = logging.getLogger(__name__)

AS_OF = "as_of_date"
MONITOR_RUNS = "monitor_runs"
METRICS_PARTITIONS = ("model_name", "run_date")
RUNS_PARTITIONS = ("model", "run_date")
TREND_DAYS = 30  # the report's trends show the runs of the last 30 days
WINDOW = "__window__"  # group column of the one profiling pass: current or previous window
GROUP = "__group__"  # group column of the performance pass: a segment value, or null for the whole window
MAX_SEGMENT_VALUES = 50  # per segment column, the most scored values get performance rows
WINDOW_END = "__window_end__"  # group column of the matured windows' performance pass
MAX_MATURED_WINDOWS = 50  # earlier windows recomputed on matured labels per run, at most
# Completeness: a column's null rate (null + NaN) is `warn` above the reference's rate plus this.
NULL_RATE_TOLERANCE = 0.05
STATUS_ORDER = {OK: 0, INSUFFICIENT: 1, WARN: 2, ALERT: 3}


class MonitorInputError(DriftlineError):
    """The window's inputs are not there (no predictions table, no champion predictions): exit 1."""


# --------------------------------------------------------------------------- reference profile

@dataclass(frozen=True)
class Reference:
    """A model version's reference: profile, bins, quantile grid and id."""

    version: str
    reference_id: str
    profile: DatasetProfile
    bins: Mapping[str, ColumnBins]
    quantiles: tuple[float, ...]
    calibrated: Mapping[tuple[str, str], float]  # (column, distance metric) → calibrated threshold
    mlflow_run_id: str  # the training run (holds the reference sample for the Evidently page)

    @property
    def has_offset_sums(self) -> bool:
        """Wasserstein-1 comes from cells and offset sums (references written since they exist)."""
        return all(p.offset_sums for p in self.profile.columns.values()
                   if isinstance(p, NumericProfile) and p.edges)


def load_reference(ctx: JobContext, version: str) -> Reference:
    """The stored reference profile of ``version`` (features + ``prediction``) and its calibrated thresholds,
    one partition-pruned read."""
    name = ctx.config.name
    rows = [r.asDict() for r in read_reference_rows(ctx.store, name, version).collect()]
    if not any(r["stat"] not in CALIBRATION_STATS for r in rows):
        raise MonitorInputError(f"table reference_profiles: expected the reference profile of {name} v{version}, "
                                "found no rows (retrain the version to write it)")
    prof, quantiles = profile_from_rows(rows)
    return Reference(version, f"{name}/{version}", prof, bins_from_rows(rows), quantiles,
                     thresholds_from_rows(rows), str(rows[0]["mlflow_run_id"]))


def drift_spec(ctx: JobContext, ref: Reference) -> DriftSpec:
    """The drift spec of the run: ``monitoring.drift``, with the reference's calibrated distance thresholds
    when ``threshold_mode`` is ``calibrated`` (static ones where a (column, metric) has none)."""
    cfg = ctx.config.monitoring.drift
    spec = DriftSpec.from_config(cfg)
    if cfg.threshold_mode != "calibrated":
        return spec
    if not ref.calibrated:
        log.warning("%s v%s: threshold_mode is calibrated but the reference has no calibrated thresholds "
                    "(trained before calibration, or its reference spans one date); static thresholds apply",
                    ctx.config.name, ref.version)
    return spec.with_calibrated(ref.calibrated)


# --------------------------------------------------------------------------- the window


def window_of(date: dt.date, days: int) -> tuple[dt.date, ...]:
    """The dates of the window ending at ``date`` (inclusive), oldest first."""
    return tuple(date - dt.timedelta(days=days - 1 - i) for i in range(days))


def champion_predictions(ctx: JobContext, dates: Sequence[dt.date]) -> DataFrame:
    """The champion's rows of ``<model>__predictions`` over ``dates`` (partition-pruned)."""
    from pyspark.sql import functions as F

    from driftline.registry.client import CHAMPION
    from driftline.scoring.core import ROLE
    from driftline.scoring.tables import SCORE_DATE, predictions_table

    table = predictions_table(ctx.config.name)
    span = f"{dates[0]}..{dates[-1]}"
    if not ctx.store.exists(table):
        raise MonitorInputError(f"table {table}: expected champion predictions for score_date {span}, "
                                f"found no table (run driftline score first)")
    return (ctx.store.read(table, partitions={SCORE_DATE: list(dates)})
            .filter(F.col(SCORE_DATE).between(F.lit(dates[0]), F.lit(dates[-1])) & (F.col(ROLE) == CHAMPION)))


def version_order(version: Any) -> tuple[int, str]:
    """Sort key of registry versions ("2" < "10"): the latest sorts last."""
    return len(str(version)), str(version)


def resolve_version(predictions: DataFrame, table: str, dates: Sequence[dt.date]) -> tuple[str, int]:
    """The version that scored the window (the latest if several) and the number of champion rows."""
    from pyspark.sql import functions as F

    from driftline.scoring.core import MODEL_VERSION

    found = predictions.groupBy(MODEL_VERSION).agg(F.count(F.lit(1)).alias("n")).collect()
    if not found:
        raise MonitorInputError(
            f"table {table}: expected champion predictions for score_date {dates[0]}..{dates[-1]}, found none "
            f"(run driftline score --from {dates[0]} --to {dates[-1]})"
        )
    versions = sorted(found, key=lambda r: version_order(r[MODEL_VERSION]))
    if len(versions) > 1:
        log.warning("%s: window %s..%s was scored by versions %s; monitoring against the latest", table, dates[0],
                    dates[-1], ", ".join(str(r[MODEL_VERSION]) for r in versions))
    return str(versions[-1][MODEL_VERSION]), int(sum(r["n"] for r in found))


def window_frame(ctx: JobContext, predictions: DataFrame, dates: Sequence[dt.date],
                 columns: Sequence[str], numeric: Collection[str] = (), few: bool = False) -> DataFrame:
    """The rows the champion scored in the window: its ``prediction`` (= score) and their feature values.

    Reads the predictions' key, score_date, score and the features ``columns`` of the same key and
    date (left join: a scored row without its feature row shows nulls); returns key, as_of_date,
    ``columns`` and ``prediction``; a boolean column as the model and its reference saw it (the train
    job's casts): 1.0 / 0.0 when ``numeric``, else "true" / "false". A reference column missing from
    the features table, or one the reference profiled as ``numeric`` but the table holds as neither a
    number nor a boolean, fails (R9), naming expected and found. ``few``: ``predictions`` is a few
    thousand rows (a sample): their feature rows are found with broadcast joins (a left join cannot
    broadcast its preserved side), not a shuffle of the window.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    from driftline.scoring.core import SCORE
    from driftline.scoring.tables import SCORE_DATE

    key = ctx.config.entity_key
    table = f"{ctx.config.name}__features"
    features_cols = [c for c in columns if c != PREDICTION]
    if not ctx.store.exists(table):
        raise MonitorInputError(f"table {table}: expected it to exist for monitoring, found none")
    features = ctx.store.read(table, partitions={AS_OF: list(dates)})
    missing = [c for c in [key, AS_OF, *features_cols] if c not in features.columns]
    if missing:
        raise MonitorInputError(f"table {table}: expected the reference's columns {', '.join(features_cols)}, "
                                f"found {', '.join(missing)} missing (columns: {', '.join(features.columns)})")
    retyped = [f"{f.name} ({f.dataType.simpleString()})" for f in features.schema.fields
               if f.name in numeric and f.name in features_cols
               and not isinstance(f.dataType, (NumericType, BooleanType))]
    if retyped:
        raise MonitorInputError(f"table {table}: expected numeric columns as in the reference profile, found "
                                f"{', '.join(retyped)}")
    scored = predictions.select(F.col(key), F.col(SCORE_DATE).alias(AS_OF), F.col(SCORE).alias(PREDICTION))
    types = {f.name: f.dataType for f in features.schema.fields}
    as_seen = [F.col(c).cast("double" if c in numeric else "string").alias(c) if isinstance(types[c], BooleanType)
               else F.col(c) for c in features_cols]
    feats = features.filter(F.col(AS_OF).between(F.lit(dates[0]), F.lit(dates[-1]))).select(key, AS_OF, *as_seen)
    if few:
        wanted = F.broadcast(scored.select(key, AS_OF).distinct())
        feats = F.broadcast(feats.join(wanted, on=[key, AS_OF], how="left_semi"))
    return scored.join(feats, on=[key, AS_OF], how="left").select(key, AS_OF, *features_cols, PREDICTION)


# --------------------------------------------------------------------------- data quality


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
        clean = None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)
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
            add(name, "min", cur.min, _finite(ref.min), lo_status, ref.count, cur.count, reason)
            add(name, "max", cur.max, _finite(ref.max), hi_status, ref.count, cur.count, reason)
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


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def schema_rows(reference: DatasetProfile, features: Sequence[str], version: str) -> list[dict[str, Any]]:
    """Schema changes of the configured features against the reference of ``version`` (pure).

    The model's inputs are the configured ``features``; the reference profiled those of the version
    in use. ``new_column`` (``warn``): configured now but not in the reference, so the champion does
    not use it (retrain to use it); ``removed_column`` (``warn``): in the reference but no longer
    configured, so new dates of the features table hold nulls for it (its ``null_rate`` shows that);
    ``__dataset__`` / ``schema_changes``: their number (threshold 0, ``warn`` above). A reference
    column missing from the features table, or retyped there, fails instead (`window_frame`).
    """
    profiled = [c for c in reference.columns if c != PREDICTION]
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


# --------------------------------------------------------------------------- late-label performance


def has_labels(ctx: JobContext) -> bool:
    """The model has a labels source and its table exists (else no performance rows)."""
    src = ctx.config.sources.labels
    return src is not None and ctx.store.exists(src.table)


def labelled_frame(ctx: JobContext, predictions: DataFrame, date: dt.date, dates: Sequence[dt.date],
                   segments: Sequence[str] = (), keep: Sequence[str] = ()) -> DataFrame | None:
    """The window's champion predictions with their matured label (null when none) and segment columns.

    Labels matured before ``date`` 00:00 UTC (as the train job) are left-joined on entity key and
    ``score_date`` = label ``as_of_date``; ``segments`` come from the features table (same key and
    date). Returns ``score``, ``label``, ``segments`` and the predictions' columns ``keep``; None when
    the model has no labels table.
    """
    from pyspark.sql import functions as F

    from driftline.scoring.core import SCORE
    from driftline.scoring.tables import SCORE_DATE
    from driftline.training.dataset import LABEL, matured_labels

    cfg = ctx.config
    src = cfg.sources.labels
    if not has_labels(ctx):
        log.info("%s: no labels table; no performance rows", cfg.name)
        return None
    as_of = getattr(src, "as_of", None) or AS_OF
    window_labels = ctx.store.read(src.table).filter(F.col(as_of).cast("date").between(F.lit(dates[0]),
                                                                                        F.lit(dates[-1])))
    labels = matured_labels(window_labels, src, as_of, date)
    key = cfg.entity_key
    scored = predictions.select(F.col(key), F.col(SCORE_DATE).alias(AS_OF), F.col(SCORE), *keep)
    if segments:
        table = f"{cfg.name}__features"
        features = ctx.store.read(table, partitions={AS_OF: list(dates)})
        missing = [c for c in segments if c not in features.columns]
        if missing:
            raise MonitorInputError(f"monitoring.segments: expected columns of table {table}, found "
                                    f"{', '.join(missing)} missing (columns: {', '.join(features.columns)})")
        segs = (features.filter(F.col(AS_OF).between(F.lit(dates[0]), F.lit(dates[-1])))
                .select(key, AS_OF, *[F.col(c).cast("string").alias(c) for c in segments]))
        scored = scored.join(segs, on=[key, AS_OF], how="left")
    return (scored.withColumn("_label_key", F.col(key).cast("string"))
            .join(labels, on=["_label_key", AS_OF], how="left")
            .select(SCORE, LABEL, *segments, *keep))


@dataclass(frozen=True)
class MaturedWindow:
    """An earlier window's performance, recomputed with the labels matured since it was monitored."""

    start: dt.date
    end: dt.date
    version: str
    rows: list[dict[str, Any]]


def earlier_windows(date: dt.date, window_days: int, horizon_days: int) -> list[tuple[dt.date, ...]]:
    """The earlier windows a run on ``date`` recomputes on matured labels, newest first (pure).

    Back to back before the run's own window, down to the first one that ends on or before
    `driftline.training.dataset.last_matured_date` (``date`` − ``horizon_days`` − 1: the latest as-of
    date whose labels, arriving up to ``horizon_days`` late, are all known before ``date`` 00:00 UTC):
    K = ceil((``horizon_days`` + 1) / ``window_days``) windows, at most `MAX_MATURED_WINDOWS`. The
    windows after that one hold partly matured labels; the ones before it were final on earlier runs.
    """
    from driftline.training.dataset import last_matured_date

    matured = last_matured_date(date, horizon_days)
    end = window_of(date, window_days)[0] - dt.timedelta(days=1)
    windows: list[tuple[dt.date, ...]] = []
    while len(windows) < MAX_MATURED_WINDOWS and (not windows or windows[-1][-1] > matured):
        windows.append(window_of(end, window_days))
        end -= dt.timedelta(days=window_days)
    return windows


def matured_windows(ctx: JobContext, date: dt.date) -> list[MaturedWindow]:
    """Performance rows of the windows before the current one whose labels may have matured since.

    The `earlier_windows` of ``date``, each with the champion rows of the latest version that scored it
    (as the current window) and the labels matured before ``date``; one grouped performance pass for all
    of them. Windows without champion predictions are skipped; no labels table, no Spark action.
    """
    from pyspark.sql import functions as F

    from driftline.scoring.core import MODEL_VERSION
    from driftline.scoring.tables import SCORE_DATE

    cfg = ctx.config
    if not has_labels(ctx):
        return []
    windows = earlier_windows(date, cfg.monitoring.window_days, cfg.label.horizon_days)
    span = sorted(d for w in windows for d in w)
    preds = champion_predictions(ctx, span)
    scored = {(r[SCORE_DATE], str(r[MODEL_VERSION]))
              for r in preds.select(SCORE_DATE, MODEL_VERSION).distinct().collect()}
    version_of: dict[dt.date, str] = {}
    for w in windows:
        found = sorted({v for d, v in scored if w[0] <= d <= w[-1]}, key=version_order)
        if found:
            version_of[w[-1]] = found[-1]
    if not version_of:
        return []
    end_of = {d: w[-1] for w in windows if w[-1] in version_of for d in w}
    window_end = F.create_map(*[x for d, e in sorted(end_of.items()) for x in (F.lit(d), F.lit(e))])
    keep = F.lit(False)
    for d, e in sorted(end_of.items()):
        keep = keep | ((F.col(SCORE_DATE) == F.lit(d)) & (F.col(MODEL_VERSION) == F.lit(version_of[e])))
    frame = labelled_frame(ctx, preds.filter(keep).withColumn(WINDOW_END, window_end[F.col(SCORE_DATE)]), date,
                           span, keep=[WINDOW_END])
    rows = performance_rows(frame, cfg.monitoring.performance, cfg.label.task, WINDOW_END)
    starts = {w[-1]: w[0] for w in windows}
    return [MaturedWindow(starts[end], end, version_of[end], r) for end, r in sorted(rows.items())]


def performance_rows(frame: DataFrame | None, pcfg: PerformanceConfig, task: str,
                     by: str | None = None) -> dict[Any, list[dict[str, Any]]]:
    """Late-label performance rows of ``frame`` (see `labelled_frame`), for the whole window or per ``by`` value.

    One grouped aggregation pass, plus one for AUC over the groups that reach the floors. Rows per
    group: ``labelled_rows`` (scored rows with a matured label; threshold =
    ``monitoring.performance.min_labels``), ``label_coverage`` (labelled / scored rows; threshold =
    ``min_label_coverage``); then classification ``auc``, ``log_loss``, ``brier`` or regression
    ``rmse``, ``mae`` — descriptive (status ``ok``) when count and coverage reach the floors, else
    ``insufficient_data`` with a reason. Keys: None for the whole window (``by`` None), else the
    values of ``by`` (None for nulls), at most `MAX_SEGMENT_VALUES` of them (the most scored).
    No frame (no labels table) → no rows.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    from driftline.scoring.core import SCORE
    from driftline.training.dataset import LABEL

    if frame is None:
        return {}
    group = F.col(by) if by is not None else F.lit(None).cast("string")
    frame = frame.withColumn(GROUP, group)
    classification = task == "classification"
    y = F.col(LABEL)
    used = y.isNotNull() & F.col(SCORE).isNotNull()

    def avg(expr: Any) -> Any:
        return F.avg(F.when(used, expr))

    p = F.least(F.greatest(F.col(SCORE), F.lit(1e-15)), F.lit(1 - 1e-15))
    if classification:
        aggs = [avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss"),
                avg((F.col(SCORE) - y) ** 2).alias("brier")]
    else:
        aggs = [F.sqrt(avg((F.col(SCORE) - y) ** 2)).alias("rmse"), avg(F.abs(F.col(SCORE) - y)).alias("mae")]
    found = frame.groupBy(GROUP).agg(F.count(F.lit(1)).alias("scored"), F.count(F.when(used, 1)).alias("n"),
                                     *aggs).collect()
    groups = sorted(found, key=lambda r: (-r["scored"], r[GROUP] is None, str(r[GROUP])))
    if by is not None and len(groups) > MAX_SEGMENT_VALUES:
        log.warning("segment %s: %d values, keeping the %d most scored", by, len(groups), MAX_SEGMENT_VALUES)
        groups = groups[:MAX_SEGMENT_VALUES]
    values = {r[GROUP]: r.asDict() for r in groups}
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
    ready = [g for g, r in reasons.items() if r is None]
    if classification and ready:
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
    out: dict[Any, list[dict[str, Any]]] = {}
    for g, v in values.items():
        n, coverage, reason = int(v["n"]), v["coverage"], reasons[g]
        common = dict(column=PERFORMANCE, method=None, n_reference=None, n_current=n)
        rows = [{**common, "metric": "labelled_rows", "value": float(n), "threshold": float(pcfg.min_labels),
                 "status": OK if n >= pcfg.min_labels else INSUFFICIENT, "reason": None},
                {**common, "metric": "label_coverage", "value": None if math.isnan(coverage) else coverage,
                 "threshold": pcfg.min_label_coverage,
                 "status": OK if coverage >= pcfg.min_label_coverage else INSUFFICIENT, "reason": None}]
        for metric in (("auc", "log_loss", "brier") if classification else ("rmse", "mae")):
            value = None if reason is not None else v.get(metric)
            rows.append({**common, "metric": metric, "value": None if value is None else float(value),
                         "threshold": None, "status": INSUFFICIENT if reason is not None or value is None else OK,
                         "reason": reason})
        out[g] = rows
    return out


# --------------------------------------------------------------------------- monitor_runs


def monitor_runs_schema() -> StructType:
    """Schema of ``monitor_runs``: one row per (model, run_date), see ``docs/monitoring.md``."""
    from pyspark.sql.types import (
        BooleanType,
        DateType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    return StructType([
        StructField("run_id", StringType(), False),
        StructField("model", StringType(), False),
        StructField("model_version", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("window_start", DateType(), False),
        StructField("window_end", DateType(), False),
        StructField("rows", LongType(), False),
        StructField("columns_evaluated", IntegerType(), False),
        StructField("columns_drifted", IntegerType(), False),
        StructField("drift_share", DoubleType(), True),
        StructField("dataset_drift", BooleanType(), False),
        StructField("status", StringType(), False),
        StructField("quality_status", StringType(), False),
        StructField("performance_status", StringType(), False),
        StructField("report_path", StringType(), True),
        StructField("config_hash", StringType(), False),
        StructField("code_version", StringType(), False),
        StructField("started_at", TimestampType(), False),
    ])


def worst(statuses: Sequence[str]) -> str:
    """The most severe of ``statuses`` (alert > warn > insufficient_data > ok); ``ok`` when empty."""
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 0), default=OK)


def report_path(workspace: str | Path, model: str, date: dt.date) -> Path:
    """Where the HTML report of (model, date) lives: ``<workspace>/reports/<model>/<date>.html``."""
    return Path(workspace).resolve() / "reports" / model / f"{date.isoformat()}.html"


# --------------------------------------------------------------------------- the job


def run(ctx: JobContext) -> JobResult:
    """Monitor the window ending at every date of the run (see the module docstring)."""
    for date in ctx.dates:
        monitor_date(ctx, date)
    return ctx.result()


def monitor_date(ctx: JobContext, date: dt.date) -> None:
    """Profile, compare and write the (model, date) partitions of ``monitor_metrics`` and ``monitor_runs``."""
    from pyspark.sql import functions as F

    from driftline.monitoring.report import write_report
    from driftline.scoring.core import MODEL_VERSION
    from driftline.scoring.tables import SCORE_DATE, predictions_table

    cfg = ctx.config
    mcfg = cfg.monitoring
    dates = window_of(date, mcfg.window_days)
    previous_dates = window_of(dates[0] - dt.timedelta(days=1), mcfg.window_days)
    both = champion_predictions(ctx, [*previous_dates, *dates])
    in_current = F.col(SCORE_DATE) >= F.lit(dates[0])
    preds = both.filter(in_current)
    version, _ = resolve_version(preds, predictions_table(cfg.name), dates)
    preds = preds.filter(F.col(MODEL_VERSION) == version)
    ref = load_reference(ctx, version)
    columns = list(ref.profile.columns)
    # the previous window (whatever champion version scored it) rides along in the same grouped pass
    numeric = [c for c, p in ref.profile.columns.items() if isinstance(p, NumericProfile)]
    window = (window_frame(ctx, preds.unionByName(both.filter(~in_current)), [*previous_dates, *dates], columns,
                           numeric)
              .withColumn(WINDOW, F.when(F.col(AS_OF) >= F.lit(dates[0]), "current").otherwise("previous")))
    # the one profiling pass; no sketches (quantiles only for a reference stored before offset sums existed)
    profiles = profile_by(window, WINDOW, columns, ref.bins, quantiles=() if ref.has_offset_sums else ref.quantiles,
                          distinct=False)
    current = profiles["current"]
    spec = drift_spec(ctx, ref)
    result = dataset_drift(ref.profile, current, spec, columns)
    quality = [*quality_rows(ref.profile, current, spec.min_rows, spec.unseen_threshold),
               *schema_rows(ref.profile, [f.name for f in cfg.features], version)]
    labelled = labelled_frame(ctx, preds, date, dates, mcfg.segments)
    if labelled is not None and mcfg.segments:
        labelled = labelled.cache()   # read once for the whole window and every segment column
    try:
        performance = performance_rows(labelled, mcfg.performance, cfg.label.task).get(None, [])
        segment_rows = {slice_name(seg, value): r for seg in mcfg.segments
                        for value, r in performance_rows(labelled, mcfg.performance, cfg.label.task, seg).items()}
    finally:
        if labelled is not None and mcfg.segments:
            labelled.unpersist()
    matured = matured_windows(ctx, date)
    rows = [*drift_rows(result), *quality, *performance]
    previous_rows: list[dict[str, Any]] = []
    if "previous" in profiles:
        # window vs window: calibrated thresholds describe chunk-vs-whole-reference distances, so static ones
        previous_rows = drift_rows(dataset_drift(profiles["previous"], current, DriftSpec.from_config(mcfg.drift),
                                                 columns))
    else:
        log.info("%s %s: no champion predictions in the previous window %s..%s; no previous_window rows", cfg.name,
                 date, previous_dates[0], previous_dates[-1])

    quality_status = worst([r["status"] for r in quality if r["status"] != INSUFFICIENT])
    if current.rows == 0:
        quality_status = INSUFFICIENT
    perf_status = _performance_status(performance)
    path = report_path(ctx.workspace, cfg.name, date)
    # the page's sample: a few thousand predictions joined to their features (not a second join of the window)
    sampled = window_frame(ctx, sample_rows(preds, current.rows, mcfg.report.evidently_rows), dates, columns,
                           numeric, few=True)
    evidently = write_evidently_page(ctx, mlflow_run_id=ref.mlflow_run_id, profile=ref.profile, sample=sampled,
                                     rows=current.rows, report=path)
    trends = trend_points([*metric_history(ctx, date), *({**r, "run_date": date} for r in rows)])
    write_report(path, model=cfg.name, version=version, date=date, window=(dates[0], dates[-1]), run_id=ctx.run_id,
                 reference=ref.profile, current=current, result=result, rows=rows, trends=trends,
                 evidently=evidently, matured=[(m.start, m.end, m.version, m.rows) for m in matured])

    metrics_ctx = MetricsContext(run_id=ctx.run_id, run_date=date, model_name=cfg.name, model_version=version,
                                 reference_id=ref.reference_id, window_start=dates[0], window_end=dates[-1],
                                 created_at=ctx.started_at)
    commit = ctx.commit_info(f"{cfg.name}@{date.isoformat()}")
    previous_ctx = replace(metrics_ctx, baseline="previous_window",
                           reference_id=f"{cfg.name}/previous_window/{previous_dates[0]}..{previous_dates[-1]}")
    tuples = [*monitor_metrics_frame_rows(rows, metrics_ctx), *monitor_metrics_frame_rows(previous_rows, previous_ctx),
              *[t for name, seg_rows in sorted(segment_rows.items())
                for t in monitor_metrics_frame_rows(seg_rows, replace(metrics_ctx, slice=name))],
              *[t for m in matured
                for t in monitor_metrics_frame_rows(m.rows, replace(metrics_ctx, model_version=m.version,
                                                                    reference_id=f"{cfg.name}/{m.version}",
                                                                    window_start=m.start, window_end=m.end))]]
    df = ctx.spark.createDataFrame(tuples, schema=monitor_metrics_schema())
    ctx.store.replace_partitions(MONITOR_METRICS, df, list(METRICS_PARTITIONS), commit,
                                 partitions=[{"model_name": cfg.name, "run_date": date}])
    started = ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None)
    run_row = (ctx.run_id, cfg.name, version, date, dates[0], dates[-1], current.rows, result.evaluated,
               result.drifted, result.drift_share, result.status == ALERT, result.status, quality_status,
               perf_status, str(path), ctx.config_hash, ctx.code_version, started)
    ctx.store.replace_partitions(MONITOR_RUNS, ctx.spark.createDataFrame([run_row], schema=monitor_runs_schema()),
                                 list(RUNS_PARTITIONS), commit, partitions=[{"model": cfg.name, "run_date": date}])
    drifted = [c.column for c in result.columns if c.drifted]
    log.info("%s %s (window %s..%s, v%s, %d rows): drift %s — %d of %d columns drifted%s; quality %s; "
             "performance %s; report %s", cfg.name, date, dates[0], dates[-1], version, current.rows, result.status,
             result.drifted, result.evaluated, f" ({', '.join(drifted)})" if drifted else "", quality_status,
             perf_status, path)


def metric_history(ctx: JobContext, date: dt.date, days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """``monitor_metrics`` rows of the model's earlier runs in the ``days`` before ``date`` (baseline reference,
    whole window; only the columns a trend needs), for the report's trends."""
    from pyspark.sql import functions as F

    if not ctx.store.exists(MONITOR_METRICS):
        return []
    since = [date - dt.timedelta(days=days - i) for i in range(days)]
    return [r.asDict() for r in ctx.store.read(MONITOR_METRICS, partitions={"model_name": [ctx.config.name],
                                                                              "run_date": since})
            .filter((F.col("run_date") < F.lit(date)) & (F.col("baseline") == "reference")
                    & (F.col("slice") == ALL_ROWS) & (F.col("window_end") == F.col("run_date")))
            .select("run_date", "column", "metric", "method", "value", "threshold", "status").collect()]


def _performance_status(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return INSUFFICIENT
    statuses = [r["status"] for r in rows]
    return INSUFFICIENT if INSUFFICIENT in statuses else worst(statuses)
