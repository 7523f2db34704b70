"""``driftline models adopt``: turn a model trained outside driftline (an MLflow model URI) into a driftline version.

In order, nothing registered before every check passed:

1. the model is downloaded and read the safe way its ``MLmodel`` file allows (`driftline.registry.adopted`: a
   pickled model only with ``adopt.trust_pickle``), its task must be the config's ``label.task``;
2. its input columns must be features of the config with the same kind (numeric / categorical), and the features
   table must carry them (`driftline.scoring.signature.validate_features`);
3. the reference window (``--reference-from`` … ``--reference-to``): the feature rows of those as-of dates with a
   label known before the run's date, scored by the model, are its evaluation rows and its reference rows;
4. an MLflow run (tags ``driftline.adopted_*``: the source URI, flavor and how it was stored; params: the model's
   input columns and task, read by scoring) holds the driftline artifact; the version is registered with its
   SHA-256; the reference profile is written exactly as the train job writes one (`write_reference_profile`);
5. the promotion gate of the train job runs on the reference window (`run_gate`); ``--promote`` makes the version
   champion even when the gate did not pass, recorded on the version (``driftline.promotion_reason``).

A rerun with the same model bytes, window, config, code and rows finds the version it adopted (``--force`` adopts
again); with ``--promote`` it then makes that version champion if it is not.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from driftline.errors import InputContractError, MissingInputError, UsageError
from driftline.jobs import canary
from driftline.jobs.train import (
    FINGERPRINT_TAG,
    FitResult,
    Plan,
    Registered,
    TrainingData,
    log_evaluation,
    plan_training,
)
from driftline.jobs.train_data import input_versions, labelled_window, model_columns
from driftline.jobs.train_gate import canary_rollout, run_gate
from driftline.jobs.train_reference import write_reference_profile
from driftline.registry.adopted import ADOPTED_FILE, Candidate, logged_model, pack
from driftline.registry.adopted_read import read_model_uri
from driftline.registry.artifact import sha256_bytes
from driftline.registry.client import TAG_SHA256, ModelRegistry, configure, ensure_experiment, tracking_setup
from driftline.scoring.signature import ModelSignature, validate_features
from driftline.training import dataset as ds
from driftline.training.evaluate import baseline_scores, calibration_table, prefixed, task_metrics
from driftline.training.importance import permutation_importances
from driftline.training.pipeline import model_frame, predict_scores
from driftline.vocabulary import CHAMPION, LOGGED_SCORE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.config.schema import DriftlineConfig
    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext
    from driftline.tables import TableStore

log = logging.getLogger(__name__)

SOURCE_TAG = "driftline.adopted_from"


@dataclass(frozen=True)
class Request:
    """What ``driftline models adopt`` was asked."""

    model_uri: str | None            # None: a monitor-only model's version (its inference log's scores)
    reference_from: dt.date
    reference_to: dt.date
    promote: bool = False
    reference_table: str | None = None   # a table of labelled reference rows instead of features + labels
    label_column: str = ds.LABEL         # its label column

    @property
    def window(self) -> str:
        return f"{self.reference_from}..{self.reference_to}"

    def source(self, cfg: DriftlineConfig) -> str:
        """Where the version comes from: the model URI, or ``inference:<table>`` for a monitor-only model."""
        return self.model_uri or f"inference:{cfg.sources.inference.table if cfg.sources.inference else '?'}"

    def named(self, cfg: DriftlineConfig) -> str:
        """The source as an error message names it: ``--model-uri URI`` or ``sources.inference TABLE``."""
        if self.model_uri:
            return f"--model-uri {self.model_uri}"
        return f"sources.inference {cfg.sources.inference.table if cfg.sources.inference else '?'}"


def check(cfg: DriftlineConfig, request: Request, date: dt.date) -> tuple[Plan, Candidate, ModelSignature]:
    """Everything that can be checked without Spark: the dates, the config's training slices, the model (read the
    safe way) and its inputs against the config's features."""
    if request.reference_to < request.reference_from:
        raise UsageError(f"--reference-to: expected a date on or after --reference-from {request.reference_from}, "
                         f"found {request.reference_to}")
    if request.reference_to >= date and request.reference_table is None:
        raise UsageError(f"--reference-to: expected a date before the run's date {date} (labels known before "
                         f"it are used), found {request.reference_to}")
    plan = plan_training(cfg)
    if request.reference_table is not None and request.label_column in plan.features:
        raise UsageError(f"--label-column: expected the reference table's label column, found {request.label_column}, "
                         "a feature of the config")
    if cfg.sources.inference is not None:
        return plan, *monitor_only_candidate(cfg, plan, request)
    if request.model_uri is None:
        raise UsageError("--model-uri: expected the MLflow model to adopt (models:/name/3, runs:/…), found none "
                         "(only a monitor-only model, with sources.inference, is adopted without one)")
    candidate = read_model_uri(tracking_setup(cfg.mlflow, cfg.workspace), request.model_uri, cfg.adopt.trust_pickle,
                               cfg.label.task)
    return plan, candidate, model_signature(candidate, plan, cfg.label.task, request.model_uri)


def run(ctx: JobContext, request: Request, checked: tuple[Plan, Candidate, ModelSignature] | None = None
        ) -> JobResult:
    """Adopt ``request.model_uri`` as a new version of the config's model; the result names the version.
    ``checked``: what `check` returned for this request (it runs here otherwise)."""
    cfg = ctx.config
    plan, candidate, signature = checked or check(cfg, request, ctx.dates[0])
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name, cfg.adopt.trust_pickle)
    store = ctx.store
    versions = input_versions(store, plan)
    validate_features(store.read(plan.features_table, version=versions[plan.features_table]).schema,
                      cfg.entity_key, [(request.source(cfg), signature)], plan.features_table)
    data = reference_data(ctx, plan, versions, request, inputs_beyond(signature, plan))
    artifact = pack(candidate.model.kind, candidate.payload, candidate.model.columns, candidate.model.task)
    done = find_previous(registry, request, ctx.config_hash, ctx.code_version, data.fingerprint,
                         sha256_bytes(artifact))
    if done is not None and not ctx.force:
        log.info("adopt: %s is already version %s for reference window %s with config %s on the same rows; nothing "
                 "to do (use --force to adopt again)", request.source(cfg), done, request.window, ctx.config_hash)
        champion = registry.alias(CHAMPION)
        if request.promote and (champion is None or champion.version != done):
            tags = registry.get(done).tags
            passed = "passed" if tags.get("driftline.gate.passed") == "true" else "failed"
            manual_promotion(registry, done, f"gate: {passed}, {tags.get('driftline.gate.reason', '')}; on a rerun")
        return ctx.result("skipped", model_version=done)
    fit = evaluate(ctx, plan, data, candidate, request.named(cfg))
    log.info("reference window %s: %s", request.window,
             ", ".join(f"{k}={v:.4f}" for k, v in fit.metrics.items() if k.startswith("val_")))
    record = register(ctx, registry, plan, request, data, fit, candidate, signature, artifact)
    write_reference_profile(ctx, registry, plan, data, fit, record)
    decision = run_gate(registry, cfg, plan, data, fit, record)
    log.info("gate: %s — %s", "passed" if decision.passed else "failed", decision.reason)
    canary_instead = canary_rollout(cfg, decision)       # a passed gate starts a canary rollout instead
    if request.promote and (canary_instead or not decision.passed):
        manual_promotion(registry, record.version, f"gate: {'passed' if decision.passed else 'failed'}, "
                                                   f"{decision.reason}")
    elif canary_instead:
        canary.start(ctx, ctx.dates[0], record.version, str(decision.reference_version))
    return ctx.result(model_version=record.version)


def monitor_only_candidate(cfg: DriftlineConfig, plan: Plan, request: Request) -> tuple[Candidate, ModelSignature]:
    """A monitor-only model's version: no model file; its input is every feature (profiled while "scoring") and the
    logged score (its prediction)."""
    if request.model_uri is not None:
        raise UsageError(f"--model-uri: model {cfg.name} is monitor-only (sources.inference): its versions are the "
                         f"scores logged in {cfg.sources.inference.table if cfg.sources.inference else '?'}; "
                         f"expected no --model-uri, found {request.model_uri}")
    candidate = Candidate(logged_model(cfg.label.task), b"", "inference_log", "none", None)
    return candidate, ModelSignature((*plan.numeric, LOGGED_SCORE), tuple(plan.categorical), cfg.label.task)


def manual_promotion(registry: ModelRegistry, version: str, why: str) -> None:
    """``--promote``: make ``version`` champion whatever the gate said; the reason and who did it on the version."""
    registry.promote(version, f"manual: driftline models adopt --promote ({why})")
    registry.set_tags(version, {"driftline.promoted_by": "driftline models adopt --promote"})
    log.warning("adopt: %s v%s made champion by --promote (%s)", registry.name, version, why)


def model_signature(candidate: Candidate, plan: Plan, task: str, uri: str) -> ModelSignature:
    """The model's inputs split like the config's features; `InputContractError` naming what does not fit."""
    model = candidate.model
    if model.task != task:
        raise InputContractError(f"--model-uri {uri}: expected a {task} model (label.task), found a {model.task} model")
    unknown = [c for c in model.columns if c not in plan.features]
    if unknown:
        raise InputContractError(
            f"--model-uri {uri}: expected input columns among the config's features ({', '.join(plan.features)}), "
            f"found {', '.join(unknown)}")
    categorical = tuple(c for c in model.columns if c in plan.categorical)
    if categorical and model.kind in ("xgboost", "lightgbm"):
        raise InputContractError(
            f"--model-uri {uri}: expected numeric inputs for a {model.kind} model, found categorical features "
            f"{', '.join(categorical)} (encode them in the model, or adopt a scikit-learn pipeline that does)")
    return ModelSignature(tuple(c for c in model.columns if c in plan.numeric), categorical, task)


def inputs_beyond(signature: ModelSignature, plan: Plan) -> tuple[str, ...]:
    """The model's input columns that are not features of the config (a monitor-only model's logged score)."""
    return tuple(c for c in signature.features if c not in plan.features)


def reference_data(ctx: JobContext, plan: Plan, versions: dict[str, int], request: Request,
                   keep: tuple[str, ...] = ()) -> TrainingData:
    """The labelled rows of the reference window (capped like a validation split), as the validation split of a
    `TrainingData` without training rows: what the train job's reference profile and gate read. ``keep``: model
    inputs beyond the features, read with them."""
    cfg, tcfg = ctx.config, ctx.config.training
    if request.reference_table is None:
        rows = labelled_window(ctx.store, cfg, plan, versions, request.reference_from, request.reference_to,
                               ctx.dates[0], keep)
        where = f"with labels known before {ctx.dates[0]}"
    else:
        rows, versions = reference_table_rows(ctx.store, cfg, plan, versions, request, keep)
        where = f"of {request.reference_table} with a label in {request.label_column}"
    pdf, capped = ds.collect_sample(rows, cfg.entity_key, tcfg.sample_cap, tcfg.sample_seed)
    ds.check_rows(len(pdf), tcfg.min_validation_rows, "reference", request.window, "min_validation_rows")
    log.info("reference set: %d rows %s%s", len(pdf), where,
             f" (capped at training.sample_cap={tcfg.sample_cap})" if capped else "")
    return TrainingData(pdf.iloc[:0], pdf, False, capped, versions)


def reference_table_rows(store: TableStore, cfg: DriftlineConfig, plan: Plan, versions: dict[str, int],
                         request: Request, keep: tuple[str, ...] = ()) -> tuple[DataFrame, dict[str, int]]:
    """``--reference-table``: its rows of the reference window with a non-null label (`model_columns` and ``label``),
    and the table versions read (its own added)."""
    from pyspark.sql import functions as F

    table = str(request.reference_table)
    if not store.exists(table):
        raise MissingInputError(f"--reference-table: expected table {table} to exist, found none")
    versions = {**versions, table: store.version(table)}
    rows, _ = model_columns(store.read(table, version=versions[table]), cfg, plan, table,
                            keep=(request.label_column, *keep))
    label = F.col(request.label_column).cast("double")
    rows = ds.filter_window(rows, request.reference_from, request.reference_to)
    rows = rows.withColumn("_label", label).drop(request.label_column).withColumnRenamed("_label", ds.LABEL)
    return rows.filter(F.col(ds.LABEL).isNotNull()), versions


def evaluate(ctx: JobContext, plan: Plan, data: TrainingData, candidate: Candidate, source: str) -> FitResult:
    """The model's scores and metrics on the reference rows; the baseline predicts their own label mean. ``source``:
    the model as errors name it (`Request.named`)."""
    cfg = ctx.config
    logged = candidate.model.kind == "logged"
    x = model_frame(data.validation, [*plan.numeric, *([LOGGED_SCORE] if logged else [])], plan.categorical)
    y = ds.check_labels(data.validation[ds.LABEL], plan.task, "reference")
    try:
        scores = predict_scores(candidate.model, x, plan.task)
    except Exception as exc:   # e.g. a python_function model that does not take these columns
        raise InputContractError(f"{source}: expected the model to score the reference rows, found "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    low, high = (float(np.min(scores)), float(np.max(scores))) if len(scores) else (0.0, 0.0)
    if not np.isfinite(scores).all() or (plan.task == "classification" and (low < 0 or high > 1)):
        raise InputContractError(f"{source}: expected finite scores"
                                 f"{' (probabilities in [0, 1])' if plan.task == 'classification' else ''} on the "
                                 f"reference rows, found {low:.6g}..{high:.6g}"
                                 f"{'' if np.isfinite(scores).all() else ' and non-finite values'}")
    thr = cfg.label.threshold
    metrics = {**prefixed(task_metrics(plan.task, y, scores, thr), "val_"),
               **prefixed(task_metrics(plan.task, y, baseline_scores(plan.task, y, len(y)), thr), "baseline_val_")}
    calib = calibration_table(y, scores) if plan.task == "classification" else None
    # the logged scores do not change when a feature is permuted: a monitor-only version has no importance (and no
    # importance drift)
    importance = {} if logged else permutation_importances(candidate.model, x, y, plan.task, cfg.training.importance,
                                                            cfg.training.sample_seed)
    return FitResult(candidate.model, np.empty(0), scores, metrics, calib, None, importance)


def adoption_tags(ctx: JobContext, request: Request, data: TrainingData, candidate: Candidate) -> dict[str, str]:
    """Provenance of an adopted version (the MLflow run and the registered version carry the same)."""
    return {
        "driftline.model_name": ctx.config.name,
        "driftline.run_id": ctx.run_id,
        "driftline.code_version": ctx.code_version,
        "driftline.config_hash": ctx.config_hash,
        "driftline.date": ctx.dates[0].isoformat(),
        "driftline.validation_window": request.window,
        "driftline.reference_window": request.window,
        **({"driftline.reference_table": request.reference_table} if request.reference_table else {}),
        SOURCE_TAG: request.source(ctx.config),
        "driftline.adopted_flavor": candidate.flavor,
        "driftline.adopted_serialization": candidate.serialization,
        "driftline.adopted_kind": candidate.model.kind,
        **{f"driftline.table_version.{t}": str(v) for t, v in data.table_versions.items()},
        FINGERPRINT_TAG: data.fingerprint,
    }


def find_previous(registry: ModelRegistry, request: Request, config_hash: str, code_version: str, fingerprint: str,
                  sha256: str) -> str | None:
    """The version already adopted (gate run) from the same model bytes (whatever the URI points at today), window,
    config, code and rows, if any."""
    want = {TAG_SHA256: sha256, "driftline.reference_window": request.window,
            "driftline.reference_table": request.reference_table,
            "driftline.config_hash": config_hash, "driftline.code_version": code_version, FINGERPRINT_TAG: fingerprint}
    for info in reversed(registry.versions()):
        if all(info.tags.get(k) == v for k, v in want.items()) and "driftline.gate.passed" in info.tags:
            return info.version
    return None


def register(ctx: JobContext, registry: ModelRegistry, plan: Plan, request: Request, data: TrainingData,
             fit: FitResult, candidate: Candidate, signature: ModelSignature, payload: bytes) -> Registered:
    """MLflow run (params, metrics, provenance tags, the driftline artifact) and a registered version with its hash."""
    import mlflow

    cfg = ctx.config
    configure(registry.setup)
    experiment_id = ensure_experiment(registry.client, registry.setup)
    tags = adoption_tags(ctx, request, data, candidate)
    sha = sha256_bytes(payload)
    params = {"task": plan.task, "numeric_features": ",".join(signature.numeric),
              "categorical_features": ",".join(signature.categorical), "model_columns": ",".join(signature.features),
              "threshold": cfg.label.threshold, "horizon_days": cfg.label.horizon_days,
              "validation_rows": len(data.validation), "validation_capped": data.validation_capped,
              "reference_rows": "validation", "adopted_from": request.source(cfg)}
    with mlflow.start_run(experiment_id=experiment_id, run_name=ctx.run_id, tags=tags) as run:
        log_evaluation(params, fit)
        with tempfile.TemporaryDirectory(prefix="driftline-adopt-") as tmp:
            path = Path(tmp) / ADOPTED_FILE
            path.write_bytes(payload)
            mlflow.log_artifact(str(path), "model")
        mlflow.set_tags({"driftline.artifact_sha256": sha})
        source = mlflow.get_artifact_uri("model")
        version = registry.register(source, run.info.run_id, sha, len(payload), tags, file=ADOPTED_FILE)
        mlflow.set_tag("driftline.model_version", version.version)
    log.info("MLflow run %s → %s version %s (adopted from %s)", run.info.run_id, cfg.name, version.version,
             request.source(cfg))
    return Registered(version.version, run.info.run_id, sha)
