"""The monitor job: window → reference profile → merged per-date profiles → drift, quality, performance → tables.

For each date D of the run, the window is [D − window_days + 1, D] and the previous window the
``window_days`` before it. Order of work, so a failure leaves nothing half-written for the date:
read the champion's predictions of the window (none → exit 1, nothing written) and resolve the
version that scored it → load that version's reference profile and bins → profile features +
score of the current and previous windows: the score job's stored per-date profiles where they
match the predictions, ONE grouped pass over the rows of the other dates, merged
(`driftline.monitoring.daily`) → drift vs the reference and vs the previous window (`driftline.monitoring.drift`),
data-quality (`driftline.monitoring.quality`), per segment when on (`driftline.monitoring.segments`), and
late-label performance rows (`driftline.monitoring.performance`) → HTML report (atomic rename) → replace the
(model, run_date) partition of ``monitor_metrics`` → replace the (model, run_date) partition of ``monitor_runs`` (the
run's verdict row, written last). A rerun of a date replaces both partitions (R1). Drift found is a
result: exit 0. Every read is in `driftline.monitoring.inputs` and `driftline.monitoring.daily`; this
module orchestrates.
Tables: `driftline.tables.contracts` (``docs/table-reference.md``); metrics: ``docs/monitoring.md``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.alerts.metrics import export_monitor_run
from driftline.jobs.monitor_parts import (
    decision_threshold,
    importance_drift,
    multivariate_of,
    scope_of,
    segment_drift,
    segment_reference,
    window_performance,
    window_samples,
)
from driftline.jobs.notify import monitor_facts, notify_monitor
from driftline.monitoring import custom_reference
from driftline.monitoring.daily import daily_rows, known_scores, page_sample, profiled_columns, window_profiles
from driftline.monitoring.drift import DatasetDrift, dataset_drift, drift_rows
from driftline.monitoring.estimated import CELL_COLUMN, CellTable, comparison_rows, estimated_rows
from driftline.monitoring.evidently_page import write_evidently_page
from driftline.monitoring.fairness import FAIRNESS
from driftline.monitoring.inputs import (
    TREND_DAYS,
    WINDOW_END,
    Reference,
    champion_predictions,
    estimated_of,
    load_reference,
    loop_decisions,
    matured_frame,
    own_window_rows,
    recent_metrics,
    resolve_version,
)
from driftline.monitoring.loop_report import Timeline, timeline
from driftline.monitoring.metrics import ALL_ROWS, MetricsContext, monitor_metrics_frame_rows
from driftline.monitoring.multivariate import MultivariateDrift, multivariate_rows
from driftline.monitoring.performance import PERFORMANCE, MaturedWindow, performance_status, sliced_performance
from driftline.monitoring.quality import quality_rows, schema_rows
from driftline.monitoring.report import trend_points
from driftline.monitoring.segments import summary as segment_summary
from driftline.monitoring.spec import DriftSpec
from driftline.monitoring.windows import earlier_windows, window_of
from driftline.profiling.types import DatasetProfile
from driftline.registry.client import ModelRegistry, tracking_setup
from driftline.tables.contracts import MONITOR_METRICS, MONITOR_RUNS, PREDICTIONS
from driftline.training import importance
from driftline.vocabulary import ALERT, INSUFFICIENT, MODEL, MODEL_VERSION, RUN_DATE, SCORE_DATE, WARN, worst

if TYPE_CHECKING:
    import pandas as pd

    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)


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


def report_path(workspace: str | Path, model: str, date: dt.date) -> Path:
    """Where the HTML report of (model, date) lives: ``<workspace>/reports/<model>/<date>.html``."""
    return Path(workspace).resolve() / "reports" / model / f"{date.isoformat()}.html"


def run(ctx: JobContext) -> JobResult:
    """Monitor the window ending at every date of the run (see the module docstring)."""
    for date in ctx.dates:
        monitor_date(ctx, date)
    return ctx.result()


@dataclass(frozen=True)
class Measured:
    """What a monitor run measured for one date, before anything is written."""

    dates: tuple[dt.date, ...]
    previous_dates: tuple[dt.date, ...]
    version: str
    reference: Reference
    current: DatasetProfile
    result: DatasetDrift
    rows: list[dict[str, Any]]                       # reference baseline: drift, quality, performance
    previous_rows: list[dict[str, Any]]              # previous-window baseline
    segment_rows: dict[str, list[dict[str, Any]]]    # slice name → drift + quality (per segment), performance rows
    matured: list[MaturedWindow]
    history: list[dict[str, Any]]                    # `recent_metrics`: earlier runs' rows (trends, closed loop)
    quality_status: str
    performance_status: str
    reference_sample: pd.DataFrame | None            # the version's stored reference sample
    sample: pd.DataFrame | None                      # the window's sampled rows (Evidently page, multivariate)
    multivariate: MultivariateDrift | None           # None when monitoring.multivariate is off
    quality_alerts: tuple[str, ...] = ()             # `column.metric` of the quality rows at warn or alert


def monitor_date(ctx: JobContext, date: dt.date) -> None:
    """Profile, compare and write the (model, date) partitions of ``monitor_metrics`` and ``monitor_runs``."""
    write_outputs(ctx, date, measure(ctx, date))


def measure(ctx: JobContext, date: dt.date) -> Measured:
    """Read the window, profile it in one pass and compute every row of the run (no write)."""
    from pyspark.sql import functions as F

    cfg = ctx.config
    mcfg = cfg.monitoring
    dates = window_of(date, mcfg.window_days)
    previous_dates = window_of(dates[0] - dt.timedelta(days=1), mcfg.window_days)
    scope = scope_of(ctx)
    both = champion_predictions(scope, [*previous_dates, *dates])
    daily = daily_rows(scope, [*previous_dates, *dates])
    scored = known_scores(scope, both, [*previous_dates, *dates], daily)
    counts: dict[str, int] = {}
    for (d, v), got in scored.items():
        if d >= dates[0]:
            counts[v] = counts.get(v, 0) + got.rows
    version = resolve_version(counts, PREDICTIONS.table(cfg.name), dates)
    in_current = F.col(SCORE_DATE) >= F.lit(dates[0])
    preds = both.filter(in_current & (F.col(MODEL_VERSION) == version))
    ref = load_reference(scope, version)
    cells = estimation_cells(ctx, ref)
    # the previous window (whatever champion version scored it) is profiled with the same bins; the estimated
    # performance's cells are one more column (the score on the calibration table's edges)
    profiled, bins = profiled_columns(ref, cells)
    window_rows = preds.unionByName(both.filter(~in_current))
    by_segment = segment_reference(ctx, ref)
    profiles = window_profiles(scope, ref, window_rows, scored, version, dates, previous_dates, profiled, bins,
                               daily, None if by_segment is None else {c: s.values for c, s in by_segment.items()})
    columns = list(ref.profile.columns)
    current = without_cells(profiles.groups["current"])
    estimated = ([] if cells is None else
                 estimated_rows(cells, profiles.groups["current"].columns[CELL_COLUMN],
                                mcfg.performance.estimated_min_rows))
    spec = drift_spec(ctx, ref)
    result = dataset_drift(ref.profile, current, spec, columns)
    quality = [*quality_rows(ref.profile, current, spec.min_rows, spec.unseen_threshold),
               *schema_rows(ref.profile, [f.name for f in cfg.features], version)]
    performance, segment_rows = window_performance(ctx, preds, date, dates)
    for name, rows in segment_drift(ctx, by_segment, profiles.segments, profiled, bins, columns).items():
        segment_rows[name] = [*rows, *segment_rows.get(name, [])]   # a segment's drift rows, then its performance
    previous_rows: list[dict[str, Any]] = []
    if "previous" in profiles.groups:
        # window vs window: calibrated thresholds describe chunk-vs-whole-reference distances, so static ones
        previous_rows = drift_rows(dataset_drift(without_cells(profiles.groups["previous"]), current,
                                                 DriftSpec.from_config(mcfg.drift), columns))
    else:
        log.info("%s %s: no champion predictions in the previous window %s..%s; no previous_window rows", cfg.name,
                 date, previous_dates[0], previous_dates[-1])
    quality_status = worst([r["status"] for r in quality if r["status"] != INSUFFICIENT])
    windows = earlier_windows(date, mcfg.window_days, cfg.label.horizon_days)
    # one read of the earlier runs' rows, back to the oldest earlier window's own run: trends, closed loop and
    # what each earlier window's run estimated
    history = recent_metrics(scope, date, max(TREND_DAYS, (date - windows[-1][-1]).days if windows else 0))
    reference, sample = window_samples(ctx, ref, page_sample(scope, profiles.samples, preds, current.rows, dates, ref,
                                                             mcfg.report.evidently_rows), current.rows)
    joint = multivariate_of(ctx, ref, reference, sample)
    custom = custom_reference.window_rows(scope, ref, preds, dates, current.rows, mcfg.custom_metrics,
                                          tracking_setup(cfg.mlflow, ctx.workspace), reference)
    return Measured(dates, previous_dates, version, ref, current, result,
                    [*drift_rows(result), *([] if joint is None else multivariate_rows(joint)), *quality, *performance,
                     *estimated, *custom], previous_rows, segment_rows,
                    matured_windows(ctx, date, ref, cells, windows, history), history,
                    INSUFFICIENT if current.rows == 0 else quality_status,
                    performance_status(performance), reference, sample, joint,
                    tuple(f"{r['column']}.{r['metric']}" for r in quality if r["status"] in (WARN, ALERT)))


def drift_verdict(m: Measured, cfg: Any) -> tuple[str, bool]:
    """The run's drift status (the worse of the per-column verdict and a multivariate warn/alert) and its
    ``dataset_drift`` flag (the per-column verdict's alert, or a multivariate alert when
    ``monitoring.multivariate.dataset_drift`` says it counts)."""
    joint = m.multivariate.status if m.multivariate is not None else INSUFFICIENT
    status = worst([m.result.status, joint]) if joint in (WARN, ALERT) else m.result.status
    return status, m.result.status == ALERT or (joint == ALERT and cfg.dataset_drift)


def estimation_cells(ctx: JobContext, ref: Reference) -> CellTable | None:
    """The version's calibration table when performance is estimated (binary classification, switched on, a
    version trained since tables exist), else None (said once in the log)."""
    cfg = ctx.config
    if not cfg.monitoring.performance.estimated or cfg.label.task != "classification":
        return None
    if ref.cells is None:
        log.info("%s v%s: no calibration table stored with the version (trained before estimated performance "
                 "existed, or its validation window could not calibrate); no estimated_* rows", cfg.name, ref.version)
    return ref.cells


def without_cells(prof: DatasetProfile) -> DatasetProfile:
    """``prof`` without the estimation cells' column (not a feature: never judged for drift or quality)."""
    if CELL_COLUMN not in prof.columns:
        return prof
    return replace(prof, columns={c: p for c, p in prof.columns.items() if c != CELL_COLUMN})


def write_outputs(ctx: JobContext, date: dt.date, m: Measured) -> None:
    """The report, then the (model, date) partitions of ``monitor_metrics`` and ``monitor_runs`` (last)."""
    from driftline.monitoring.report import write_report

    cfg = ctx.config
    dates, ref, current, result = m.dates, m.reference, m.current, m.result
    path = report_path(ctx.workspace, cfg.name, date)
    evidently = write_evidently_page(model=cfg.name, limit=cfg.monitoring.report.evidently_rows,
                                     reference=m.reference_sample, profile=ref.profile, current=m.sample,
                                     rows=current.rows, report=path)
    trends = trend_points([*own_window_rows(last_days(m.history, date)), *({**r, "run_date": date} for r in m.rows)])
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
    write_report(path, model=cfg.name, version=m.version, date=date, window=(dates[0], dates[-1]),
                 run_id=ctx.run_id, reference=ref.profile, current=current, result=result, rows=m.rows,
                 trends=trends, evidently=evidently, matured=[(w.start, w.end, w.version, w.rows) for w in m.matured],
                 loop=loop_timeline(ctx, date, m), importance=importance.of_run(registry.client, ref.mlflow_run_id),
                 fairness=[(c, {name.split("=", 1)[1]: kept for name, rows in m.segment_rows.items()
                                if name.startswith(f"{c}=") and (kept := [r for r in rows if r["column"] == FAIRNESS])},
                            m.segment_rows[c]) for c in cfg.monitoring.fairness.protected if c in m.segment_rows],
                 segments=segment_summary(m.segment_rows))
    metrics_ctx = MetricsContext(run_id=ctx.run_id, run_date=date, model=cfg.name, model_version=m.version,
                                 reference_id=ref.reference_id, window_start=dates[0], window_end=dates[-1],
                                 created_at=ctx.started_at, config_hash=ctx.config_hash,
                                 code_version=ctx.code_version)
    commit = ctx.commit_info(f"{cfg.name}@{date.isoformat()}")
    prev = m.previous_dates
    previous_ctx = replace(metrics_ctx, baseline="previous_window",
                           reference_id=f"{cfg.name}/previous_window/{prev[0]}..{prev[-1]}")
    tuples = [*monitor_metrics_frame_rows(m.rows, metrics_ctx), *monitor_metrics_frame_rows(m.previous_rows,
                                                                                            previous_ctx),
              *[t for name, seg_rows in sorted(m.segment_rows.items())
                for t in monitor_metrics_frame_rows(seg_rows, replace(metrics_ctx, slice=name))],
              *[t for w in m.matured
                for name, rows in [(ALL_ROWS, w.rows), *sorted(w.segments.items())]
                for t in monitor_metrics_frame_rows(rows, replace(metrics_ctx, model_version=w.version,
                                                                  reference_id=f"{cfg.name}/{w.version}",
                                                                  window_start=w.start, window_end=w.end,
                                                                  slice=name))]]
    df = ctx.spark.createDataFrame(tuples, schema=MONITOR_METRICS.schema())
    partition = [{MODEL: cfg.name, RUN_DATE: date}]
    ctx.store.replace_partitions(MONITOR_METRICS.table(), df, MONITOR_METRICS.partition_by, commit,
                                 partitions=partition)
    status, drifted_flag = drift_verdict(m, cfg.monitoring.multivariate)
    run_row = MONITOR_RUNS.row(
        model=cfg.name, model_version=m.version, run_date=date, window_start=dates[0], window_end=dates[-1],
        rows=current.rows, columns_evaluated=result.evaluated, columns_drifted=result.drifted,
        drift_share=result.drift_share, dataset_drift=drifted_flag, status=status,
        quality_status=m.quality_status, performance_status=m.performance_status, report_path=str(path),
        run_id=ctx.run_id, code_version=ctx.code_version, config_hash=ctx.config_hash,
        started_at=ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None))
    ctx.store.replace_partitions(MONITOR_RUNS.table(), ctx.spark.createDataFrame([run_row], MONITOR_RUNS.schema()),
                                 MONITOR_RUNS.partition_by, commit, partitions=partition)
    run = dict(zip(MONITOR_RUNS.names, run_row, strict=True))
    export_monitor_run(cfg.alerts.metrics, ctx.workspace, run, m.rows)
    notify_monitor(ctx, monitor_facts(date, (dates[0], dates[-1]), run, m.rows, str(path), m.quality_alerts),
                   m.history)
    drifted = [c.column for c in result.columns if c.drifted]
    log.info("%s %s (window %s..%s, v%s, %d rows): drift %s — %d of %d columns drifted%s; quality %s; "
             "performance %s; report %s", cfg.name, date, dates[0], dates[-1], m.version, current.rows, result.status,
             result.drifted, result.evaluated, f" ({', '.join(drifted)})" if drifted else "", m.quality_status,
             m.performance_status, path)


def matured_windows(ctx: JobContext, date: dt.date, ref: Reference, cells: CellTable | None,
                    windows: list[tuple[dt.date, ...]], history: list[dict[str, Any]]) -> list[MaturedWindow]:
    """Performance rows of the windows before the current one whose labels may have matured since (the
    `earlier_windows` of ``date``) read by `matured_frame`, one grouped performance pass for all of them; with
    estimated performance on (``cells``), each window's realized metrics are compared with what its own run
    estimated before its labels existed (``history``: `recent_metrics`; ``estimated_error_<metric>`` rows,
    `driftline.monitoring.estimated.comparison_rows`)."""
    cfg = ctx.config
    scope = scope_of(ctx)
    found = matured_frame(scope, date, windows, cfg.monitoring.segments)
    if found is None:
        return []
    rows: dict[dt.date, list[dict[str, Any]]] = {}
    by_segment: dict[dt.date, dict[str, list[dict[str, Any]]]] = {}
    for (end, name), r in sliced_performance(found.frame, cfg.monitoring.performance, cfg.label.task,
                                             cfg.monitoring.segments, WINDOW_END, decision_threshold(ctx)).items():
        day = dt.date.fromisoformat(str(end))
        if name == ALL_ROWS:
            rows[day] = r
        else:
            by_segment.setdefault(day, {})[name] = r
    estimated = estimated_of(history, set(rows)) if cells is not None else {}
    tables: dict[str, CellTable | None] = {ref.version: ref.cells}
    out = []
    for end, r in sorted(rows.items()):
        version = found.version_of[end]
        if end in estimated and version not in tables:
            tables[version] = load_reference(scope, version).cells
        cells = tables.get(version)
        realized = {m["metric"]: m["value"] for m in r}
        if end in estimated and cells is not None and realized.get("auc") is not None:   # labels matured
            r = [*r, *comparison_rows(estimated[end], realized, int(realized.get("labelled_rows") or 0), cells)]
        if end == windows[-1][-1]:   # the newest window whose labels are all in: importance on them
            r = [*r, *importance_drift(ctx, date, windows[-1], version)]
        out.append(MaturedWindow(found.starts[end], end, version, r, by_segment.get(end, {})))
    return out


def loop_timeline(ctx: JobContext, date: dt.date, m: Measured) -> Timeline:
    """The report's closed loop: the recent runs' estimated and realized AUC (this run's rows included), the
    champion per window and the retrain decisions (`driftline.monitoring.loop_report`)."""
    history = [r for r in last_days(m.history, date) if r["column"] == PERFORMANCE]
    decisions = loop_decisions(scope_of(ctx), date)
    own = [{**r, RUN_DATE: date, "window_end": date, MODEL_VERSION: m.version} for r in m.rows
           if r["column"] == PERFORMANCE]
    matured = [{**r, RUN_DATE: date, "window_end": w.end, MODEL_VERSION: w.version} for w in m.matured for r in w.rows]
    return timeline([*history, *own, *matured], decisions, "auc", ctx.config.monitoring.performance.min_labels)


def last_days(history: list[dict[str, Any]], date: dt.date, days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """The rows of the runs in the ``days`` before ``date`` (the report shows that many; the history read may
    reach further back, to the oldest earlier window whose estimate is compared)."""
    since = date - dt.timedelta(days=days)
    return [r for r in history if r[RUN_DATE] >= since]
