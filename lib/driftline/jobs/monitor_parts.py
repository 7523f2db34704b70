"""The monitor job's per-run pieces beyond the drift of each column: the run's scope, the samples (Evidently page,
multivariate drift), the domain classifier's verdict, and the late-label passes (performance per segment of the
current window and of the earlier windows whose labels matured since, fairness per protected column).
`driftline.jobs.monitor` orchestrates; the measures live in `driftline.monitoring`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError
from driftline.monitoring import segments
from driftline.monitoring.evidently_page import current_sample, reference_sample
from driftline.monitoring.fairness import fairness_rows, group_counts
from driftline.monitoring.inputs import Reference, Scope, labelled_frame
from driftline.monitoring.metrics import ALL_ROWS, slice_name
from driftline.monitoring.multivariate import MultivariateDrift, multivariate_drift
from driftline.monitoring.performance import sliced_performance
from driftline.monitoring.segments import SegmentColumn
from driftline.monitoring.spec import DriftSpec
from driftline.profiling.types import DatasetProfile, NumericProfile
from driftline.registry.client import json_artifact, tracking_setup
from driftline.vocabulary import SCORE

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

    from driftline.features.spec import LabelSource
    from driftline.jobs.context import JobContext
    from driftline.profiling.bins import ColumnBins

log = logging.getLogger(__name__)


def scope_of(ctx: JobContext) -> Scope:
    """The monitoring reads' slice of the run: the store, the model, its entity key and label source."""
    cfg = ctx.config
    return Scope(ctx.store, cfg.name, cfg.entity_key, cfg.sources.labels)


def window_samples(ctx: JobContext, ref: Reference, sample: Any, rows: int
                   ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The version's stored reference sample and at most ``monitoring.report.evidently_rows`` sampled rows of the
    window (read here when they are not the stored samples' merge), for the Evidently page and the multivariate
    drift; (None, None) when the window is empty, the sample size is 0 or the version stored no sample (the
    window's sample is then not read)."""
    limit = ctx.config.monitoring.report.evidently_rows
    if rows == 0 or limit == 0:
        return None, None
    reference = reference_sample(tracking_setup(ctx.config.mlflow, ctx.workspace), ref.mlflow_run_id)
    if reference is None or reference.empty:
        return None, None
    return reference, current_sample(sample, list(ref.profile.columns), limit)


def multivariate_of(ctx: JobContext, ref: Reference, reference: pd.DataFrame | None, sample: pd.DataFrame | None
                    ) -> MultivariateDrift | None:
    """The domain classifier's verdict on the two samples' feature columns (`driftline.monitoring.multivariate`),
    None when ``monitoring.multivariate`` is off."""
    cfg = ctx.config.monitoring.multivariate
    if not cfg.enabled:
        return None
    have = [c for c in ref.profile.columns if c != SCORE
            and (reference is None or c in reference.columns) and (sample is None or c in sample.columns)]
    numeric = [c for c in have if isinstance(ref.profile.columns[c], NumericProfile)]
    categorical = [c for c in have if c not in numeric]
    result = multivariate_drift(reference, sample, numeric, categorical, cfg, key=(ref.reference_id,
                                                                                  ref.mlflow_run_id))
    log.info("%s v%s: multivariate drift %s (domain classifier AUC %s, threshold %s, %d / %d sampled rows)",
             ctx.config.name, ref.version, result.status, result.auc, result.threshold, result.n_reference,
             result.n_current)
    return result


_SEGMENT_DOCS: dict[tuple[str, str], Any] = {}   # (tracking URI, MLflow run) → its segments.json (None: none)


def segment_reference(ctx: JobContext, ref: Reference) -> dict[str, SegmentColumn] | None:
    """The version's segment reference profiles (`driftline.monitoring.segments`) when
    ``monitoring.segment_drift`` is on and ``monitoring.segments`` names columns it stored, else None (the log says
    why); read once per process and version (a backfill)."""
    mcfg = ctx.config.monitoring
    if not mcfg.segment_drift.enabled or not mcfg.segments:
        return None
    tracking = tracking_setup(ctx.config.mlflow, ctx.workspace)
    key = (tracking.tracking_uri, ref.mlflow_run_id)
    if key not in _SEGMENT_DOCS:
        _SEGMENT_DOCS[key] = json_artifact(tracking, ref.mlflow_run_id, segments.ARTIFACT)
    doc = _SEGMENT_DOCS[key]
    if doc is None:
        log.info("%s v%s: no segment reference profiles stored with the version (trained before "
                 "monitoring.segments was set, or before drift per segment existed); no drift rows per segment",
                 ctx.config.name, ref.version)
        return None
    return segments.from_artifact(doc, mcfg.segments) or None


def segment_drift(ctx: JobContext, reference: dict[str, SegmentColumn] | None,
                  current: dict[tuple[str, str], DatasetProfile] | None, profiled: list[str],
                  bins: dict[str, ColumnBins],
                  columns: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Drift and quality rows per segment (`driftline.monitoring.segments.segment_rows`, static thresholds) of the
    window's segment profiles ``current`` (in the ``profiled`` columns and ``bins``; the judged ``columns`` are the
    reference's); none when the window was not profiled per segment (``current`` None)."""
    from driftline.profiling.accumulate import empty_core_row
    from driftline.profiling.profile import profile_from_row

    if reference is None or current is None:
        return {}
    empty = profile_from_row(empty_core_row(profiled, bins), profiled, bins, ())
    return segments.segment_rows(reference, current, empty, DriftSpec.from_config(ctx.config.monitoring.drift),
                                 columns)


def window_performance(ctx: JobContext, preds: DataFrame, date: dt.date, dates: tuple[dt.date, ...]
                       ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Late-label performance rows of the window (whole window, and per value of each segment column)."""
    cfg = ctx.config
    mcfg = cfg.monitoring
    protected = mcfg.fairness.protected if cfg.label.task == "classification" else []
    grouped = [*mcfg.segments, *[c for c in protected if c not in mcfg.segments]]
    labelled = labelled_frame(scope_of(ctx), preds, date, dates, grouped)
    if labelled is not None and protected:
        labelled = labelled.cache()   # read once for the performance passes and each protected column
    try:
        sliced = sliced_performance(labelled, mcfg.performance, cfg.label.task, mcfg.segments,
                                    threshold=decision_threshold(ctx))
        performance = sliced.get((None, ALL_ROWS), [])
        segment_rows = {name: r for (_, name), r in sliced.items() if name != ALL_ROWS}
        for column in protected if labelled is not None else []:
            per_group, across = fairness_rows(column, group_counts(labelled, column, cfg.label.threshold),
                                              mcfg.fairness)
            for value, rows in per_group.items():
                segment_rows.setdefault(slice_name(column, value), []).extend(rows)
            segment_rows[column] = across
    finally:
        if labelled is not None and protected:
            labelled.unpersist()
    return performance, segment_rows


def decision_threshold(ctx: JobContext) -> float | None:
    """The decision threshold of the realized precision / recall / F1 / accuracy (classification only)."""
    cfg = ctx.config
    return cfg.label.threshold if cfg.label.task == "classification" else None


def importance_drift(ctx: JobContext, date: dt.date, window: tuple[dt.date, ...], version: str
                     ) -> list[dict[str, Any]]:
    """The importance-drift rows of the fully matured ``window`` scored by ``version``
    (`driftline.monitoring.importance_drift`): its champion rows with a label matured before ``date``, at most
    ``training.importance.max_rows`` of them, scored by permuting each feature; [] when switched off, when the
    version stored no training importance or the window has no labelled row (said in the log)."""
    from driftline.jobs.score_versions import signature_of
    from driftline.monitoring.inputs import has_labels
    from driftline.registry.client import ModelRegistry
    from driftline.training import importance

    cfg = ctx.config
    icfg = cfg.training.importance
    if not cfg.monitoring.importance_drift.enabled or not icfg.enabled:
        return []
    scope = scope_of(ctx)
    src = scope.labels
    if src is None or not has_labels(scope):
        return []
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name, cfg.adopt.trust_pickle)
    info = registry.get(version)
    trained = importance.of_run(registry.client, info.run_id)
    if not trained:
        log.info("%s v%s: no permutation importance stored at training; no importance drift", cfg.name, version)
        return []
    model = registry.load(version)
    signature = signature_of(registry, info, model)   # the version's inputs, not today's config's
    numeric, categorical = list(signature.numeric), list(signature.categorical)
    try:
        return _importance_rows(ctx, src, date, window, version, model, trained, numeric, categorical)
    except DriftlineError as exc:   # an auxiliary measure: the run goes on and says why
        log.warning("%s v%s: no importance drift on %s..%s: %s", cfg.name, version, window[0], window[-1], exc)
        return []


def _importance_rows(ctx: JobContext, src: LabelSource, date: dt.date, window: tuple[dt.date, ...], version: str,
                     model: Any, trained: dict[str, float], numeric: list[str], categorical: list[str]
                     ) -> list[dict[str, Any]]:
    """`importance_drift`'s read of the window's labelled rows (``src``: the label source) and the permutation (see
    there); the joined rows are cached for their count and their collection (one join)."""
    from pyspark.sql import functions as F

    from driftline.monitoring.importance_drift import importance_rows
    from driftline.monitoring.inputs import champion_predictions, window_frame
    from driftline.training import importance
    from driftline.training.dataset import LABEL, matured_labels
    from driftline.training.pipeline import model_frame
    from driftline.vocabulary import AS_OF, MODEL_VERSION

    cfg = ctx.config
    icfg = cfg.training.importance
    scope = scope_of(ctx)
    preds = champion_predictions(scope, list(window)).filter(F.col(MODEL_VERSION) == version)
    rows = window_frame(scope, preds, window, [*numeric, *categorical], numeric)
    labels = matured_labels(scope.store.read(src.table).filter(
        F.col(src.as_of).cast("date").between(F.lit(window[0]), F.lit(window[-1]))), src, src.as_of, date)
    key = scope.entity_key
    joined = (rows.withColumn("_label_key", F.col(key).cast("string"))
              .join(labels, on=["_label_key", AS_OF], how="inner")
              .select(key, AS_OF, *numeric, *categorical, LABEL)).cache()
    try:
        total = joined.count()
        if total == 0:
            return []
        labelled = joined
        if total > icfg.max_rows:   # a seeded sample a little above the bound; `importance.sample` makes it exact
            labelled = joined.sample(False, min(1.0, 1.2 * icfg.max_rows / total), seed=cfg.training.sample_seed)
        pdf = labelled.toPandas().sort_values([AS_OF, key], ignore_index=True)
    finally:
        joined.unpersist()
    now = importance.permutation_importances(model, model_frame(pdf, numeric, categorical),
                                             pdf[LABEL].to_numpy(dtype="float64"), cfg.label.task, icfg,
                                             cfg.training.sample_seed)
    if not now:
        return []
    n = min(len(pdf), icfg.max_rows)
    log.info("%s v%s: permutation importance on %d matured rows of %s..%s", cfg.name, version, n, window[0],
             window[-1])
    return importance_rows(trained, now, n, cfg.monitoring.importance_drift.min_rank_correlation)
