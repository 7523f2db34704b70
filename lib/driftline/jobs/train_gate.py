"""The train job's promotion gate: the challenger against the champion (or, for a first model, the baseline)
on the same validation rows; the ``champion`` alias moves only when it passes (`driftline.training.gate`) — or,
with ``retrain.canary`` on, a passed version starts a canary rollout instead (`driftline.jobs.canary`); with
``monitoring.fairness.gate`` a version whose validation rows show a fairness gap at alert is not promoted."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from driftline.errors import ArtifactIntegrityError
from driftline.registry.client import CHAMPION
from driftline.training import dataset as ds
from driftline.training.evaluate import task_metrics
from driftline.training.gate import GateDecision, decide
from driftline.training.pipeline import model_frame, predict_scores
from driftline.vocabulary import ALERT

if TYPE_CHECKING:
    from driftline.config.schema import DriftlineConfig
    from driftline.jobs.train import FitResult, Plan, Registered, TrainingData
    from driftline.registry.client import ModelRegistry

log = logging.getLogger(__name__)


def run_gate(registry: ModelRegistry, cfg: DriftlineConfig, plan: Plan, data: TrainingData, fit: FitResult,
             record: Registered) -> GateDecision:
    """Challenger vs champion (or the baseline for a first model, and for every version of a monitor-only model) on
    the same validation window (inside a drift episode: post-onset rows only, see `ds.training_windows`)."""
    import mlflow

    gate = cfg.training.gate
    challenger = fit.metrics[f"val_{plan.gate_metric}"]
    champion = registry.alias(CHAMPION)
    failure: ArtifactIntegrityError | None = None
    # a monitor-only model's versions all predict the logged score: on the same rows a new one never differs from
    # the champion; each is judged against the baseline (a new version is a new reference, not a better model)
    if champion is None or cfg.sources.inference is not None:
        reference = fit.metrics[f"baseline_val_{plan.gate_metric}"]
        decision = decide(challenger, reference, gate, metric=plan.gate_metric, direction=plan.gate_direction,
                          reference_kind="baseline")
    else:
        try:
            reference = champion_metric(registry, champion.version, cfg, plan, data)
            decision = decide(challenger, reference, gate, metric=plan.gate_metric, direction=plan.gate_direction,
                              reference_kind="champion", reference_version=champion.version)
        except ArtifactIntegrityError as exc:
            failure = exc
            decision = _not_compared(plan, challenger, champion.version, f"champion artifact refused: {exc}")
        except Exception as exc:  # e.g. the champion expects features this config no longer has
            decision = _not_compared(plan, challenger, champion.version,
                                     f"champion v{champion.version} could not score the validation window: "
                                     f"{type(exc).__name__}: {exc}")
    metrics, unfair = validation_fairness(cfg, plan, data, fit)
    if unfair and cfg.monitoring.fairness.gate and decision.passed:
        decision = replace(decision, passed=False, reason=f"{decision.reason}; refused by the fairness gate "
                                                          f"(monitoring.fairness.gate): {'; '.join(unfair)}")
    tags = decision.tags()
    registry.set_tags(record.version, tags)
    with mlflow.start_run(run_id=record.mlflow_run_id):
        mlflow.set_tags(tags)
        if metrics:
            mlflow.log_metrics(metrics)
    if decision.passed and not canary_rollout(cfg, decision):
        registry.promote(record.version, f"gate: {decision.reason}")
    if failure is not None:
        raise failure
    return decision


def validation_fairness(cfg: DriftlineConfig, plan: Plan, data: TrainingData, fit: FitResult
                        ) -> tuple[dict[str, float], list[str]]:
    """The fairness of the challenger on the validation window (`driftline.monitoring.fairness`, binary
    classification, each ``monitoring.fairness.protected`` column the validation rows hold): the across-group
    values as MLflow metrics ``fairness.<column>.<metric>``, and a line per gap at alert."""
    from driftline.monitoring.fairness import counts_of, fairness_rows
    from driftline.training.dataset import LABEL

    fcfg = cfg.monitoring.fairness
    if plan.task != "classification" or not fcfg.protected:
        return {}, []
    metrics: dict[str, float] = {}
    unfair: list[str] = []
    labels = data.validation[LABEL].to_numpy(dtype="float64")
    for column in fcfg.protected:
        if column not in data.validation.columns:
            log.warning("monitoring.fairness.protected: %s is not a column of the training rows; not checked at "
                        "train time", column)
            continue
        _, across = fairness_rows(column, counts_of(fit.validation_scores, labels, data.validation[column].tolist(),
                                                    cfg.label.threshold), fcfg)
        for r in across:
            if r["value"] is not None:
                metrics[f"fairness.{column}.{r['metric']}"] = float(r["value"])
            if r["status"] == ALERT:
                unfair.append(f"{column} {r['metric']} {r['value']:.4g} (bound {r['threshold']:g}; {r['reason']})")
    for line in unfair:
        log.warning("fairness on the validation window: %s", line)
    return metrics, unfair


def canary_rollout(cfg: DriftlineConfig, decision: GateDecision) -> bool:
    """A passed version goes through a canary rollout (`driftline.jobs.canary`) instead of a promotion: with
    ``retrain.canary`` on and a champion it was compared with (a first model is promoted directly)."""
    return decision.passed and cfg.retrain.canary.enabled and decision.reference_kind == "champion"


def _not_compared(plan: Plan, challenger: float, version: str, reason: str) -> GateDecision:
    return GateDecision(False, reason, plan.gate_metric, plan.gate_direction, float(challenger), math.nan,
                        "champion", version, math.nan, math.nan)


def champion_metric(registry: ModelRegistry, version: str, cfg: DriftlineConfig, plan: Plan,
                    data: TrainingData) -> float:
    """The champion's gate metric on this run's validation rows (artifact verified before loading)."""
    model = registry.load(version)
    x_val = model_frame(data.validation, plan.numeric, plan.categorical)
    y_val = ds.check_labels(data.validation[ds.LABEL], plan.task, "validation")
    scores = predict_scores(model, x_val, plan.task)
    return task_metrics(plan.task, y_val, scores, cfg.label.threshold)[plan.gate_metric]
