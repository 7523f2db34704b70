"""The train job: training set → fit → evaluate → MLflow run + version → reference profile → gate.

Order matters for what a failure leaves behind: nothing is registered before the model is fitted
and evaluated; the reference profile is written before the gate runs; the ``champion`` alias moves
last, only when the gate passes. A rerun for the same date, config, code version and input table
versions finds the version it registered and does nothing (``--force`` trains again). The reference
profile step is `driftline.jobs.train_reference`.

A retrain inside a drift episode (``ctx.onset``) validates on post-onset dates (`ds.training_windows`),
may weigh rows by recency (``training.recency``: `recency_weights`) and profiles the post-onset rows as
its reference (``training.reference_rows``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftline.errors import ConfigError, MissingInputError, UsageError
from driftline.jobs import canary
from driftline.jobs.train_data import input_versions, labelled_window
from driftline.jobs.train_gate import canary_rollout, run_gate
from driftline.jobs.train_reference import write_reference_profile
from driftline.registry.client import (
    ModelRegistry,
    configure,
    ensure_experiment,
    log_model,
    tracking_setup,
)
from driftline.tables.contracts import FEATURES
from driftline.training import dataset as ds
from driftline.training.evaluate import baseline_scores, calibration_table, prefixed, task_metrics
from driftline.training.fingerprint import training_fingerprint
from driftline.training.importance import SCORING, as_metrics, permutation_importances
from driftline.training.pipeline import (
    build_pipeline,
    check_estimator_task,
    estimator_params,
    fit_pipeline,
    model_frame,
    predict_scores,
    recency_weights,
)
from driftline.training.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS
from driftline.vocabulary import AS_OF

if TYPE_CHECKING:
    from driftline.config.schema import DriftlineConfig
    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext
    from driftline.tables import TableStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What the config asks for, validated before any Spark action."""

    task: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    gate_metric: str
    gate_direction: str
    features_table: str
    labels_table: str
    label_as_of: str

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def plan_training(cfg: DriftlineConfig) -> Plan:
    """Check the config slices the train job needs; `ConfigError` naming the key otherwise."""
    if cfg.sources.labels is None:
        raise ConfigError("sources.labels: the train job needs a label table, found none configured")
    task = cfg.label.task
    check_estimator_task(cfg.estimator.type, task)
    estimator_params(cfg.estimator)  # unknown estimator.params fail here, before Spark
    gate = cfg.training.gate
    metric = gate.metric_for(task)
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric not in allowed:
        raise ConfigError(
            f"training.gate.metric: expected one of {', '.join(allowed)} for label.task {task!r}, found {metric!r}"
        )
    return Plan(
        task=task,
        numeric=tuple(f.name for f in cfg.features if not f.categorical),
        categorical=tuple(f.name for f in cfg.features if f.categorical),
        gate_metric=metric,
        gate_direction=gate.direction_for(task),
        features_table=FEATURES.table(cfg.name),
        labels_table=cfg.sources.labels.table,
        label_as_of=cfg.sources.labels.as_of,
    )


@dataclass
class TrainingData:
    train: pd.DataFrame
    validation: pd.DataFrame
    train_capped: bool
    validation_capped: bool
    table_versions: dict[str, int]
    onset: dt.date | None = None         # the drift episode's onset (`ds.Windows.onset`)
    train_end: dt.date | None = None     # the training window's last as-of date (recency weights count from it)

    @property
    def post_onset_train_rows(self) -> int:
        return ds.post_onset_rows(self.train[AS_OF], self.onset)

    @property
    def post_onset_validation_rows(self) -> int:
        return ds.post_onset_rows(self.validation[AS_OF], self.onset)

    @cached_property
    def fingerprint(self) -> str:
        """`training_fingerprint` of the two splits."""
        return training_fingerprint(self.train, self.validation)


FINGERPRINT_TAG = "driftline.training_rows_sha256"


def load_training_data(store: TableStore, cfg: DriftlineConfig, plan: Plan, windows: ds.Windows,
                       versions: dict[str, int]) -> TrainingData:
    """Read the given table versions, join matured labels, collect the two splits (capped)."""
    data = labelled_window(store, cfg, plan, versions, windows.train_start, windows.validation_end, windows.date)
    tcfg = cfg.training
    train, train_capped = ds.collect_sample(ds.filter_window(data, windows.train_start, windows.train_end),
                                            cfg.entity_key, tcfg.sample_cap, tcfg.sample_seed)
    val, val_capped = ds.collect_sample(ds.filter_window(data, windows.validation_start, windows.validation_end),
                                        cfg.entity_key, tcfg.sample_cap, tcfg.sample_seed)
    ds.check_rows(len(train), tcfg.min_train_rows, "training", f"{windows.train_start}..{windows.train_end}",
                  "min_train_rows")
    ds.check_rows(len(val), tcfg.min_validation_rows, "validation",
                  f"{windows.validation_start}..{windows.validation_end}", "min_validation_rows")
    for split, frame, capped in (("training", train, train_capped), ("validation", val, val_capped)):
        post = f", {ds.post_onset_rows(frame[AS_OF], windows.onset)} from onset {windows.onset} on" \
            if windows.onset is not None else ""
        log.info("%s set: %d rows%s%s", split, len(frame), post,
                 f" (capped at training.sample_cap={tcfg.sample_cap}, seed {tcfg.sample_seed})" if capped else "")
    return TrainingData(train, val, train_capped, val_capped, versions, windows.onset, windows.train_end)


@dataclass
class FitResult:
    model: Any
    train_scores: np.ndarray
    validation_scores: np.ndarray
    metrics: dict[str, float]
    calibration: pd.DataFrame | None
    sample_weight: np.ndarray | None = None   # the training rows' recency weights (None: unweighted)
    importance: dict[str, tuple[float, float]] = field(default_factory=dict)   # column → (mean, std) score drop


def training_weights(cfg: DriftlineConfig, data: TrainingData) -> np.ndarray | None:
    """`recency_weights` of the training rows from ``training.recency`` (None: every row weighs the same)."""
    if data.train_end is None:
        return None
    return recency_weights(data.train[AS_OF], data.train_end, data.onset, cfg.training.recency)


def fit_and_evaluate(cfg: DriftlineConfig, plan: Plan, data: TrainingData) -> FitResult:
    """Fit the configured pipeline on the training split; metrics on both splits and the baseline."""
    task, thr = plan.task, cfg.label.threshold
    x_train = model_frame(data.train, plan.numeric, plan.categorical)
    x_val = model_frame(data.validation, plan.numeric, plan.categorical)
    y_train = ds.check_labels(data.train[ds.LABEL], task, "training")
    y_val = ds.check_labels(data.validation[ds.LABEL], task, "validation")
    if task == "classification" and len(np.unique(y_train)) < 2:
        raise MissingInputError(
            f"training labels: expected both classes 0 and 1, found only {int(y_train[0])}"
        )
    weights = training_weights(cfg, data)
    model = fit_pipeline(build_pipeline(cfg.estimator, plan.numeric, plan.categorical), x_train, y_train, weights)
    s_train = predict_scores(model, x_train, task)
    s_val = predict_scores(model, x_val, task)
    metrics = {
        **prefixed(task_metrics(task, y_val, s_val, thr), "val_"),
        **prefixed(task_metrics(task, y_train, s_train, thr), "train_"),
        **prefixed(task_metrics(task, y_val, baseline_scores(task, y_train, len(y_val)), thr), "baseline_val_"),
    }
    calib = calibration_table(y_val, s_val) if task == "classification" else None
    importance = permutation_importances(model, x_val, y_val, task, cfg.training.importance,
                                         cfg.training.sample_seed)
    if importance:
        top = sorted(importance.items(), key=lambda kv: -kv[1][0])
        log.info("permutation importance (validation, %s): %s", SCORING[task],
                 ", ".join(f"{c}={m:.4g}±{s:.2g}" for c, (m, s) in top))
    return FitResult(model, s_train, s_val, metrics, calib, weights, importance)


# --------------------------------------------------------------------------- the job


def run(ctx: JobContext) -> JobResult:
    """Train, register, profile and gate one model version for the run's single date.

    The result's ``model_version`` is the version registered, or (status ``skipped``) the one already
    trained for this date, config, code version and training rows.
    """
    if len(ctx.dates) != 1:
        raise UsageError(f"train: expected one --date, found a range of {len(ctx.dates)} days")
    cfg = ctx.config
    refuse_monitor_only(cfg, "train")
    plan = plan_training(cfg)
    windows = episode_windows(ctx)
    log.info("train %s for %s: training %s..%s, validation %s..%s%s", cfg.name, windows.date,
             windows.train_start, windows.train_end, windows.validation_start, windows.validation_end,
             f" (drift episode from {windows.onset}: validation on post-onset dates)" if windows.onset else "")

    setup = tracking_setup(cfg.mlflow, ctx.workspace)
    registry = ModelRegistry(setup, cfg.name, cfg.adopt.trust_pickle)
    store = ctx.store
    versions = input_versions(store, plan)
    data = load_training_data(store, cfg, plan, windows, versions)
    done = find_previous_run(registry, windows, ctx.config_hash, ctx.code_version, data.fingerprint)
    if done is not None and not ctx.force:
        log.info("train: version %s already trained for %s with config %s on the same training rows; "
                 "nothing to do (use --force to train again)", done, windows.date, ctx.config_hash)
        return ctx.result("skipped", model_version=done)

    fit = fit_and_evaluate(cfg, plan, data)
    log.info("validation: %s", ", ".join(f"{k}={v:.4f}" for k, v in fit.metrics.items() if k.startswith("val_")))
    record = log_and_register(ctx, registry, plan, windows, data, fit)
    write_reference_profile(ctx, registry, plan, data, fit, record)
    decision = run_gate(registry, cfg, plan, data, fit, record)
    log.info("gate: %s — %s", "passed" if decision.passed else "failed", decision.reason)
    if canary_rollout(cfg, decision):
        canary.start(ctx, windows.date, record.version, str(decision.reference_version))
    return ctx.result(model_version=record.version)


def refuse_monitor_only(cfg: DriftlineConfig, job: str) -> None:
    """`UsageError` when ``cfg`` is a monitor-only model (its versions are adopted from its inference log)."""
    if cfg.sources.inference is not None:
        raise UsageError(f"{job}: model {cfg.name} is monitor-only (sources.inference): expected a model driftline "
                         f"trains, found one whose versions are adopted (driftline models adopt --model {cfg.name} "
                         "--reference-from D1 --reference-to D2)")


def episode_windows(ctx: JobContext) -> ds.Windows:
    """The run's windows, anchored on the drift episode's onset when there is one. A retrain the policy fired
    before two post-onset dates had matured labels (its maximum wait, or a quality trigger) trains on the
    ordinary windows and says so: nothing of the new regime can be validated yet."""
    cfg, date = ctx.config, ctx.dates[0]
    if ctx.onset is not None and ds.usable_post_onset_days(date, cfg.label.horizon_days, cfg.training,
                                                           ctx.onset) < 2:
        log.warning("train %s for %s: the drift episode from %s has fewer than %d post-onset dates with matured "
                    "labels; training on the ordinary windows (nothing of the new regime to validate on yet)",
                    cfg.name, date, ctx.onset, 2 + cfg.training.gap_days)
        return ds.training_windows(date, cfg.label.horizon_days, cfg.training)
    return ds.training_windows(date, cfg.label.horizon_days, cfg.training, ctx.onset)


def find_previous_run(registry: ModelRegistry, windows: ds.Windows, config_hash: str, code_version: str,
                      fingerprint: str) -> str | None:
    """The version already trained (gate run) for this date, config, code and training rows, if any.

    Keyed on the content of the training and validation rows (`training_fingerprint`), not on input
    table versions: rewriting a features partition with the same rows is not new input.
    """
    want = {"driftline.date": windows.date.isoformat(), "driftline.config_hash": config_hash,
            "driftline.code_version": code_version, FINGERPRINT_TAG: fingerprint,
            # the onset changes the weights and the reference rows even when the windows come out the same
            "driftline.onset": windows.onset.isoformat() if windows.onset is not None else None}
    for info in reversed(registry.versions()):
        if all(info.tags.get(k) == v for k, v in want.items()) and "driftline.gate.passed" in info.tags:
            return info.version
    return None


def log_evaluation(params: dict[str, Any], fit: FitResult) -> None:
    """On the active MLflow run: the params, the finite metrics, the permutation importances and the calibration
    table of a version's evaluation (the train job's and an adoption's)."""
    import mlflow

    mlflow.log_params(params)
    mlflow.log_metrics({k: v for k, v in fit.metrics.items() if math.isfinite(v)})
    if fit.importance:
        mlflow.log_metrics(as_metrics(fit.importance))
    if fit.calibration is not None:
        mlflow.log_text(fit.calibration.to_csv(index=False), "evaluation/calibration.csv")


@dataclass(frozen=True)
class Registered:
    version: str
    mlflow_run_id: str
    sha256: str


def run_tags(ctx: JobContext, windows: ds.Windows, data: TrainingData) -> dict[str, str]:
    """Provenance tags shared by the MLflow run and the model version."""
    return {
        "driftline.model_name": ctx.config.name,
        "driftline.run_id": ctx.run_id,
        "driftline.code_version": ctx.code_version,
        "driftline.config_hash": ctx.config_hash,
        **windows.tags(),
        **{f"driftline.table_version.{t}": str(v) for t, v in data.table_versions.items()},
        FINGERPRINT_TAG: data.fingerprint,
        **({"driftline.post_onset_train_rows": str(data.post_onset_train_rows),
            "driftline.post_onset_validation_rows": str(data.post_onset_validation_rows)}
           if windows.onset is not None else {}),
    }


def log_and_register(ctx: JobContext, registry: ModelRegistry, plan: Plan, windows: ds.Windows,
                     data: TrainingData, fit: FitResult) -> Registered:
    """MLflow run (params, metrics, tags, calibration, skops model) and a registered version with its hash."""
    import mlflow
    from mlflow.models import infer_signature

    cfg = ctx.config
    configure(registry.setup)
    experiment_id = ensure_experiment(registry.client, registry.setup)
    tags = run_tags(ctx, windows, data)
    params: dict[str, Any] = {
        "task": plan.task, "estimator": cfg.estimator.type, "scale_numeric": cfg.estimator.scale_numeric,
        "seed": cfg.estimator.seed, "threshold": cfg.label.threshold, "horizon_days": cfg.label.horizon_days,
        "numeric_features": ",".join(plan.numeric), "categorical_features": ",".join(plan.categorical),
        "train_rows": len(data.train), "validation_rows": len(data.validation),
        "sample_cap": cfg.training.sample_cap, "sample_seed": cfg.training.sample_seed,
        "train_capped": data.train_capped, "validation_capped": data.validation_capped,
        "onset": windows.onset.isoformat() if windows.onset is not None else None,
        "post_onset_train_rows": data.post_onset_train_rows,
        "recency.post_onset_weight": cfg.training.recency.post_onset_weight,
        "recency.half_life_days": cfg.training.recency.half_life_days,
        "recency.weighted": fit.sample_weight is not None,
        "reference_rows": cfg.training.reference_rows,
        **{f"estimator.{k}": v for k, v in sorted(estimator_params(cfg.estimator).items())},
    }
    if fit.sample_weight is not None:
        params["recency.weight_min"] = round(float(fit.sample_weight.min()), 6)
        params["recency.weight_max"] = round(float(fit.sample_weight.max()), 6)
    x_val = model_frame(data.validation, plan.numeric, plan.categorical)
    example = model_frame(data.train.head(5), plan.numeric, plan.categorical)
    with mlflow.start_run(experiment_id=experiment_id, run_name=ctx.run_id, tags=tags) as run:
        log_evaluation(params, fit)
        signature = infer_signature(x_val.head(100), fit.validation_scores[:100])
        logged = log_model(registry, fit.model, example, signature)
        mlflow.set_tags({"driftline.artifact_sha256": logged.sha256})
        version = registry.register(logged.model_uri, run.info.run_id, logged.sha256, logged.size, tags)
        mlflow.set_tag("driftline.model_version", version.version)
    log.info("MLflow run %s → %s version %s", run.info.run_id, cfg.name, version.version)
    return Registered(version.version, run.info.run_id, logged.sha256)
