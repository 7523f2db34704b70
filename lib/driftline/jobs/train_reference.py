"""The train job's reference profile: the reference rows (the training and validation rows chosen by
``training.reference_rows``, with their predictions), their bins, profile and calibrated drift thresholds,
written to ``reference_profiles`` and logged as MLflow artifacts of the version's run.

``training.reference_rows`` (`reference_masks`): ``train_and_validation`` (every row of the run),
``validation`` (the validation rows), ``post_onset`` (the default: the rows from the drift episode's onset
on, training and validation — the regime a retrain was trained for; without an onset, every row).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftline.monitoring import custom_reference, segments
from driftline.registry.profiles import REFERENCE_SAMPLE, ProfileProvenance, write_reference_rows
from driftline.training.pipeline import model_frame
from driftline.vocabulary import AS_OF, SCORE, finite_or_none

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from driftline.config.schema import DriftlineConfig
    from driftline.jobs.context import JobContext
    from driftline.jobs.train import FitResult, Plan, Registered, TrainingData
    from driftline.registry.client import ModelRegistry

log = logging.getLogger("driftline.jobs.train")  # the train job's logger: same log lines as before the split


def reference_masks(data: TrainingData, rows: str = "train_and_validation") -> tuple[np.ndarray, np.ndarray]:
    """Which training and which validation rows are reference rows under ``training.reference_rows`` = ``rows``."""
    def on_or_after(frame: pd.DataFrame) -> np.ndarray:
        if data.onset is None:
            return np.ones(len(frame), dtype=bool)
        return (pd.to_datetime(frame[AS_OF]).dt.date >= data.onset).to_numpy(dtype=bool)

    if rows == "train_and_validation":
        return np.ones(len(data.train), dtype=bool), np.ones(len(data.validation), dtype=bool)
    if rows == "validation":
        return np.zeros(len(data.train), dtype=bool), np.ones(len(data.validation), dtype=bool)
    if rows == "post_onset":
        return on_or_after(data.train), on_or_after(data.validation)
    raise ValueError(f"training.reference_rows: expected train_and_validation, validation or post_onset, "
                     f"found {rows!r}")


def reference_pdf(plan: Plan, data: TrainingData, fit: FitResult,
                  rows: str = "train_and_validation") -> pd.DataFrame:
    """The reference rows (pandas) chosen by ``rows`` (`reference_masks`): as_of_date, the features, their
    prediction and the split."""
    parts = []
    masks = reference_masks(data, rows)
    for (split, frame, scores), keep in zip((("train", data.train, fit.train_scores),
                                            ("validation", data.validation, fit.validation_scores)), masks,
                                           strict=True):
        x = model_frame(frame, plan.numeric, plan.categorical)
        x.insert(0, AS_OF, frame[AS_OF].to_numpy())
        x[SCORE] = scores
        x["split"] = split
        for c in segment_columns(frame):
            x[c] = frame[c].to_numpy(dtype=object)
        parts.append(x[keep])
    pdf = pd.concat(parts, ignore_index=True)
    pdf[AS_OF] = pd.to_datetime(pdf[AS_OF]).dt.date
    log.info("reference rows (training.reference_rows=%s): %d of %d training rows, %d of %d validation rows, "
             "%d as-of dates", rows, int(masks[0].sum()), len(data.train), int(masks[1].sum()),
             len(data.validation), pdf[AS_OF].nunique())
    return pdf


def segment_columns(frame: pd.DataFrame) -> list[str]:
    """The segment columns' string values the training rows carry (`driftline.monitoring.segments.segment_alias`)."""
    return [c for c in frame.columns if c.startswith(segments.PREFIX)]


def reference_frame(spark: SparkSession, plan: Plan, pdf: pd.DataFrame) -> DataFrame:
    """The reference rows of `reference_pdf` as a Spark DataFrame."""
    from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

    schema = StructType(
        [StructField(AS_OF, DateType())]
        + [StructField(c, DoubleType()) for c in plan.numeric]
        + [StructField(c, StringType()) for c in plan.categorical]
        + [StructField(SCORE, DoubleType()), StructField("split", StringType())]
        + [StructField(c, StringType()) for c in segment_columns(pdf)]
    )
    return spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None), schema=schema)


def write_reference_profile(ctx: JobContext, registry: ModelRegistry, plan: Plan, data: TrainingData,
                            fit: FitResult, record: Registered) -> int:
    """Profile features and prediction of the reference rows (and calibrate drift thresholds on chunks of
    them); write ``reference_profiles`` + MLflow artifacts."""
    import mlflow

    from driftline.monitoring.calibration import calibrate, calibration_rows
    from driftline.profiling.bins import bins_to_json, fit_configured_bins
    from driftline.profiling.profile import profile, profile_rows

    cfg = ctx.config
    drift = cfg.monitoring.drift
    pdf = reference_pdf(plan, data, fit, cfg.training.reference_rows)
    ref = reference_frame(ctx.spark, plan, pdf).cache()
    try:
        numeric = [*plan.numeric, SCORE]
        bins = fit_configured_bins(ref, numeric, plan.categorical, drift)
        prof = profile(ref, [*plan.features, SCORE], bins)
        calibrated = calibrate(ref, AS_OF, prof, bins, drift)
        custom = custom_reference.at_training(ref, len(pdf), cfg.monitoring.custom_metrics)
        by_segment = segments.at_training(ref, [*plan.features, SCORE], bins, cfg.monitoring.segments,
                                          cfg.monitoring.segment_drift.top_n) if cfg.monitoring.segments else None
    finally:
        ref.unpersist()
    rows = [*profile_rows(prof, bins), *calibration_rows(calibrated, prof), *estimation_rows(cfg, plan, data, fit)]
    who = ProfileProvenance(cfg.name, record.version, record.mlflow_run_id, ctx.run_id, ctx.config_hash,
                            ctx.code_version, ctx.started_at)
    write_reference_rows(ctx.spark, ctx.store, rows, who, ctx.commit_info(f"{cfg.name}@{record.version}"))
    with mlflow.start_run(run_id=record.mlflow_run_id):
        mlflow.log_text(bins_to_json(bins), "reference_profile/bins.json")
        mlflow.log_text(json.dumps([{**r, "value": finite_or_none(r["value"])} for r in rows], indent=0),
                        "reference_profile/profile.json")
        if custom is not None:
            mlflow.log_text(custom, custom_reference.ARTIFACT)
        if by_segment is not None:
            mlflow.log_text(by_segment, segments.ARTIFACT)
        n = min(cfg.monitoring.report.evidently_rows, len(pdf))
        if n:
            # a bounded random sample for the Evidently page of the monitoring reports (Parquet: no code inside)
            with tempfile.TemporaryDirectory() as tmp:
                sample = Path(tmp) / REFERENCE_SAMPLE
                pdf.drop(columns=["split", *segment_columns(pdf)]).sample(n=n, random_state=cfg.estimator.seed) \
                    .reset_index(drop=True).to_parquet(sample, index=False)
                mlflow.log_artifact(str(sample), "reference_profile")
    registry.set_tags(record.version, {"driftline.profile_rows": str(len(rows))})
    log.info("reference profile: %d rows for %s v%s", len(rows), cfg.name, record.version)
    return len(rows)


def estimation_rows(cfg: DriftlineConfig, plan: Plan, data: TrainingData, fit: FitResult) -> list[dict[str, Any]]:
    """The calibration table of estimated performance (binary classification, ``monitoring.performance.estimated``):
    the validation window's scores and labels, chunked by as-of date for the band; stored with the reference."""
    from driftline.monitoring.estimated import fit_cell_table
    from driftline.monitoring.estimated_store import cell_rows
    from driftline.training.dataset import LABEL

    perf = cfg.monitoring.performance
    if plan.task != "classification" or not perf.estimated:
        return []
    table = fit_cell_table(fit.validation_scores, data.validation[LABEL].to_numpy(dtype="float64"),
                           data.validation[AS_OF].to_numpy(), cfg.label.threshold, cells=perf.estimated_cells)
    if table is None:
        log.warning("estimated performance off for this version: the validation window cannot calibrate its scores "
                    "(needs both classes and at least %d rows)", 2 * perf.estimated_cells)
        return []
    return cell_rows(table)

