"""The train job's reference profile: the reference rows (training and validation rows with their
predictions), their bins, profile and calibrated drift thresholds, written to ``reference_profiles``
and logged as MLflow artifacts of the version's run.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from driftline.registry.profiles import REFERENCE_SAMPLE, ProfileProvenance, write_reference_rows
from driftline.training.pipeline import model_frame
from driftline.vocabulary import AS_OF, SCORE, finite_or_none

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from driftline.jobs.context import JobContext
    from driftline.jobs.train import FitResult, Plan, Registered, TrainingData
    from driftline.registry.client import ModelRegistry

log = logging.getLogger("driftline.jobs.train")  # the train job's logger: same log lines as before the split


def reference_pdf(plan: Plan, data: TrainingData, fit: FitResult) -> pd.DataFrame:
    """The reference rows (pandas): as_of_date, the features, their prediction and the split."""
    parts = []
    for split, frame, scores in (("train", data.train, fit.train_scores), ("validation", data.validation,
                                                                          fit.validation_scores)):
        x = model_frame(frame, plan.numeric, plan.categorical)
        x.insert(0, AS_OF, frame[AS_OF].to_numpy())
        x[SCORE] = scores
        x["split"] = split
        parts.append(x)
    pdf = pd.concat(parts, ignore_index=True)
    pdf[AS_OF] = pd.to_datetime(pdf[AS_OF]).dt.date
    return pdf


def reference_frame(spark: SparkSession, plan: Plan, pdf: pd.DataFrame) -> DataFrame:
    """The reference rows of `reference_pdf` as a Spark DataFrame."""
    from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

    schema = StructType(
        [StructField(AS_OF, DateType())]
        + [StructField(c, DoubleType()) for c in plan.numeric]
        + [StructField(c, StringType()) for c in plan.categorical]
        + [StructField(SCORE, DoubleType()), StructField("split", StringType())]
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
    pdf = reference_pdf(plan, data, fit)
    ref = reference_frame(ctx.spark, plan, pdf).cache()
    try:
        numeric = [*plan.numeric, SCORE]
        bins = fit_configured_bins(ref, numeric, plan.categorical, drift)
        prof = profile(ref, [*plan.features, SCORE], bins)
        calibrated = calibrate(ref, AS_OF, prof, bins, drift)
    finally:
        ref.unpersist()
    rows = [*profile_rows(prof, bins), *calibration_rows(calibrated, prof)]
    who = ProfileProvenance(cfg.name, record.version, record.mlflow_run_id, ctx.run_id, ctx.config_hash,
                            ctx.code_version, ctx.started_at)
    write_reference_rows(ctx.spark, ctx.store, rows, who, ctx.commit_info(f"{cfg.name}@{record.version}"))
    with mlflow.start_run(run_id=record.mlflow_run_id):
        mlflow.log_text(bins_to_json(bins), "reference_profile/bins.json")
        mlflow.log_text(json.dumps([{**r, "value": finite_or_none(r["value"])} for r in rows], indent=0),
                        "reference_profile/profile.json")
        n = min(cfg.monitoring.report.evidently_rows, len(pdf))
        if n:
            # a bounded random sample for the Evidently page of the monitoring reports (Parquet: no code inside)
            with tempfile.TemporaryDirectory() as tmp:
                sample = Path(tmp) / REFERENCE_SAMPLE
                pdf.drop(columns=["split"]).sample(n=n, random_state=cfg.estimator.seed).reset_index(drop=True) \
                    .to_parquet(sample, index=False)
                mlflow.log_artifact(str(sample), "reference_profile")
    registry.set_tags(record.version, {"driftline.profile_rows": str(len(rows))})
    log.info("reference profile: %d rows for %s v%s", len(rows), cfg.name, record.version)
    return len(rows)
