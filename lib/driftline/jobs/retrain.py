"""The retrain job: evaluate the policy on the monitoring history, record the decision, train when it fires.

Per date D (in order):

1. read ``retrain_decisions`` of (model, D): if that row already records a trained version, do
   nothing unless ``--force`` (R23: at most one retrain per (model, window), even when re-run);
2. read the model's ``monitor_runs`` up to D, the late-label performance rows, the estimated
   performance rows and (for the ``drift_score`` rule) the features' drift verdicts of
   ``monitor_metrics``, the past decisions and — with ``retrain.wait_for_labels`` and a labels source —
   the matured labels per as-of date (`label_counts`: one grouped read of the labels table), and
   evaluate the policy (`driftline.retrain.policy.evaluate`, pure);
3. replace the (model, D) partition of ``retrain_decisions`` with the decision row;
4. when it fired for a monitor-only model (``sources.inference``): record ``train_status = monitor_only`` (the
   decision alerts like any other; nothing is trained: the model is retrained where it lives, then adopted);
   when it fired otherwise: run the train job for D in this process (same config, session and store; inside a
   drift episode with its onset, `JobContext.onset`) — fit, register, reference profile, promotion
   gate — and replace the row again with the outcome (the version from the train job's `JobResult`,
   its gate numbers, champion after; ``episode_status = ended`` when it became the champion). A
   failed training is recorded (``train_status = failed``) and its error raised, so the job exits
   with the training's code.

A ``retrain_decisions`` table of an earlier contract (no episode columns) is refused before anything
is read or written: run ``driftline migrate`` (`InputContractError`, exit 2).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from driftline.alerts.rules import Facts
from driftline.errors import ConfigError, DriftlineError, MissingInputError
from driftline.jobs import canary, rollback
from driftline.jobs.notify import notify_retrain
from driftline.monitoring.metrics import ALL_ROWS
from driftline.retrain.episodes import ENDED, MONITOR_ONLY
from driftline.retrain.policy import LABELLED_ROWS, PERFORMANCE_COLUMN, Decision, evaluate
from driftline.tables.contracts import MONITOR_METRICS, MONITOR_RUNS, RETRAIN_DECISIONS
from driftline.vocabulary import AS_OF, DECISION_DATE, MODEL, RUN_DATE, finite_or_none

if TYPE_CHECKING:

    from driftline.config.schema import DriftlineConfig
    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

NOT_RUN, RUNNING, TRAINED, REUSED, FAILED = "not_run", "running", "trained", "reused", "failed"
LABEL_LOOKBACK_DAYS = 366   # label_counts: the as-of dates [D - 366, D) (retrain.wait_for_labels.max_wait_days <= 366)
DECISION_COLUMNS = ("decision_date", "status", "trained_version", "train_status", "gate_passed", "champion_version",
                    "episode_id", "episode_status", "onset_date", "armed_date", "labels_available")


@dataclass(frozen=True)
class Outcome:
    """What the training of a fired decision produced (all None while not trained)."""

    train_status: str = NOT_RUN
    train_run_id: str | None = None
    trained_version: str | None = None
    gate: Mapping[str, str] | None = None
    champion_version: str | None = None
    error: str | None = None


def decision_row(model: str, decision: Decision, outcome: Outcome, run_id: str, config_hash: str,
                 code_version: str, started_at: dt.datetime) -> tuple[Any, ...]:
    """One ``retrain_decisions`` row in schema order (pure)."""
    gate = outcome.gate or {}

    def num(key: str) -> float | None:
        text = gate.get(key)
        return None if text is None else finite_or_none(float(text))

    passed = gate.get("driftline.gate.passed")
    windows = sorted(w.run_date for w in decision.windows)
    e = decision.episode
    promoted = outcome.trained_version is not None and outcome.champion_version == outcome.trained_version
    return RETRAIN_DECISIONS.row(
        model=model, decision_date=decision.date, fired=decision.fired, status=decision.status,
        reasons="; ".join(decision.reasons), rules_triggered=",".join(r.rule for r in decision.rules if r.triggered),
        windows_considered=len(decision.windows),
        windows_drifted=sum(1 for w in decision.windows if w.dataset_drift),
        first_window=windows[0] if windows else None, last_window=windows[-1] if windows else None,
        performance_value=decision.performance.get("value"), labelled_rows=decision.performance.get("labelled_rows"),
        last_retrain_date=decision.last_retrain, retrains_in_period=decision.retrains_in_period,
        episode_id=e.id if e else None, onset_date=e.onset if e else None, armed_date=e.armed if e else None,
        episode_status=(ENDED if promoted else e.status) if e else None,
        labels_available=e.labels_available if e else None, labels_needed=e.labels_needed if e else None,
        label_days_available=e.label_days_available if e else None,
        label_days_needed=e.label_days_needed if e else None, waited_days=e.waited_days if e else None,
        wait_reason=e.wait_reason if e else None,
        inputs_json=decision.inputs_json(), rules_json=decision.rules_json(),
        train_status=outcome.train_status, train_run_id=outcome.train_run_id, trained_version=outcome.trained_version,
        gate_passed=None if passed is None else passed == "true", gate_metric=gate.get("driftline.gate.metric"),
        gate_challenger=num("driftline.gate.challenger"), gate_reference=num("driftline.gate.reference"),
        gate_reference_kind=gate.get("driftline.gate.reference_kind"),
        gate_reference_version=gate.get("driftline.gate.reference_version"),
        gate_reason=gate.get("driftline.gate.reason"), champion_version=outcome.champion_version,
        train_error=outcome.error, run_id=run_id, code_version=code_version, config_hash=config_hash,
        started_at=started_at.astimezone(dt.UTC).replace(tzinfo=None),
    )


# --------------------------------------------------------------------------- reading the history


def _rows(ctx: JobContext, table: str, *conditions: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    if not ctx.store.exists(table):
        return []
    df = ctx.store.read(table)
    for cond in conditions:
        df = df.filter(cond)
    return [r.asDict() for r in df.select(*columns).collect()]


@dataclass(frozen=True)
class History:
    """What the policy reads for one model up to the decision date (lists of row dicts)."""

    runs: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    column_drift: list[dict[str, Any]]
    estimated: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[dt.date, int] | None = None
    importance: dict[str, float] | None = None   # the champion's permutation importance (drift_score weights)


def check_weights(cfg: DriftlineConfig) -> None:
    """``retrain.drift_score.weights`` must name features of the model (`ConfigError`, exit 2)."""
    features = {f.name for f in cfg.features}
    unknown = sorted(set(cfg.retrain.drift_score.weights) - features)
    if unknown:
        raise ConfigError(f"retrain.drift_score.weights: expected features of {cfg.name} "
                          f"({', '.join(sorted(features))}), found {', '.join(unknown)}")


def label_counts(ctx: JobContext, date: dt.date) -> dict[dt.date, int] | None:
    """Matured labels per as-of date for the as-of dates in [D - LABEL_LOOKBACK_DAYS, D): one per (key, as-of
    date), known before D 00:00 UTC (`matured_labels`), in one grouped read. None when the wait for labels is
    off or the model has no labels source (no episode can be armed); {} when its table does not exist yet."""
    from pyspark.sql import functions as F

    from driftline.training.dataset import matured_labels

    cfg = ctx.config
    source = cfg.sources.labels
    if not cfg.retrain.wait_for_labels.enabled or source is None:
        return None
    if not ctx.store.exists(source.table):
        log.warning("retrain %s %s: labels table %s not found; counting no matured labels", cfg.name, date,
                    source.table)
        return {}
    as_of = source.as_of
    start = date - dt.timedelta(days=LABEL_LOOKBACK_DAYS)
    table = ctx.store.read(source.table).filter(
        F.col(as_of).cast("date").between(F.lit(start), F.lit(date - dt.timedelta(days=1))))
    counts = matured_labels(table, source, as_of, date).groupBy(AS_OF).count().collect()
    return {r[AS_OF]: int(r["count"]) for r in counts}


def read_history(ctx: JobContext, date: dt.date) -> History:
    """monitor_runs rows, performance metric rows (realized and estimated), retrain decisions, feature drift
    verdicts up to ``date`` and the matured labels per as-of date (episodes)."""
    from pyspark.sql import functions as F

    cfg = ctx.config
    runs = _rows(ctx, MONITOR_RUNS.table(), F.col(MODEL) == cfg.name, F.col(RUN_DATE) <= F.lit(date),
                 columns=("run_date", "model_version", "dataset_drift", "drift_share", "quality_status", "status"))
    if not runs:
        raise MissingInputError(
            f"table {MONITOR_RUNS.name}: expected monitoring windows of {cfg.name} up to {date}, found none "
            f"(run driftline monitor --model {cfg.name} --date {date})"
        )
    metrics: list[dict[str, Any]] = []
    if cfg.retrain.performance.enabled:
        metrics = _rows(ctx, MONITOR_METRICS.table(), F.col(MODEL) == cfg.name, F.col(RUN_DATE) <= F.lit(date),
                        F.col("column") == PERFORMANCE_COLUMN, F.col("baseline") == "reference",
                        F.col("slice") == ALL_ROWS,
                        F.col("metric").isin(cfg.retrain.performance.metric, LABELLED_ROWS),
                        columns=("run_date", "window_start", "window_end", "metric", "value"))
    estimated: list[dict[str, Any]] = []
    rule = cfg.retrain.estimated_performance
    if rule.enabled:   # the estimate of each run's own window
        estimated = _rows(ctx, MONITOR_METRICS.table(), F.col(MODEL) == cfg.name, F.col(RUN_DATE) <= F.lit(date),
                          F.col("column") == PERFORMANCE_COLUMN, F.col("baseline") == "reference",
                          F.col("slice") == ALL_ROWS, F.col("window_end") == F.col("run_date"),
                          F.col("metric") == rule.metric_name, columns=("run_date", "window_end", "metric", "value"))
    decisions = _rows(ctx, RETRAIN_DECISIONS.table(), F.col(MODEL) == cfg.name, F.col("decision_date") <= F.lit(date),
                      columns=DECISION_COLUMNS)
    column_drift: list[dict[str, Any]] = []
    if cfg.retrain.drift_score.enabled:
        # the features' drift verdicts (1/0, null when insufficient) vs the reference, whole population
        column_drift = _rows(ctx, MONITOR_METRICS.table(), F.col(MODEL) == cfg.name, F.col(RUN_DATE) <= F.lit(date),
                             F.col("baseline") == "reference", F.col("slice") == ALL_ROWS,
                             F.col("window_end") == F.col("run_date"), F.col("metric") == "drift",
                             F.col("column").isin([f.name for f in cfg.features]),
                             columns=("run_date", "column", "value"))
    importance = champion_importance(ctx) if rule_uses_importance(cfg) else None
    return History(runs, metrics, decisions, column_drift, estimated, label_counts(ctx, date), importance)


def rule_uses_importance(cfg: DriftlineConfig) -> bool:
    rule = cfg.retrain.drift_score
    return rule.enabled and rule.importance_weights


def champion_importance(ctx: JobContext) -> dict[str, float] | None:
    """The champion version's permutation importance per feature (MLflow metrics of its training run); None when
    there is no champion or it was trained without them."""
    from driftline.registry.client import ModelRegistry, tracking_setup
    from driftline.training.importance import of_run
    from driftline.vocabulary import CHAMPION

    cfg = ctx.config
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
    champion = registry.alias(CHAMPION)
    if champion is None:
        return None
    found = of_run(registry.client, champion.run_id)
    if not found:
        log.info("retrain %s: champion v%s has no stored permutation importance; drift_score weights from the "
                 "config", cfg.name, champion.version)
    return found or None


# --------------------------------------------------------------------------- the job


def run(ctx: JobContext) -> JobResult:
    """Evaluate the retrain policy for every date of the run, in order (see the module docstring).

    The result's ``model_version`` is the last version trained (or found trained) for one of the dates.
    """
    ctx.store.check_current(RETRAIN_DECISIONS.table())
    outcomes = [retrain_date(ctx, date) for date in ctx.dates]
    versions = [o.trained_version for o in outcomes if o.trained_version is not None]
    return ctx.result(model_version=versions[-1] if versions else None)


def retrain_date(ctx: JobContext, date: dt.date) -> Outcome:
    """Decide (and maybe train) for one date; returns the recorded outcome."""
    cfg = ctx.config
    check_weights(cfg)
    rolled = rollback.check(ctx, date)
    if rolled is not None and rolled["status"] == rollback.ROLLED_BACK:
        notify_retrain(ctx, Facts(job="retrain", run_date=date, window=date.isoformat(),
                                  rolled_back=(rolled["champion_version"], rolled["champion_after"]),
                                  decision_reasons=rolled["reason"]))
    canary.check(ctx, date)
    history = read_history(ctx, date)
    done = [d for d in history.decisions if d["decision_date"] == date and d.get("trained_version")]
    if done and not ctx.force:
        log.info("retrain %s %s: version %s was already trained for this date; nothing to do (R23; use --force to "
                 "train again)", cfg.name, date, done[0]["trained_version"])
        return Outcome(REUSED, trained_version=done[0]["trained_version"])
    decision = evaluate(cfg.retrain, date, history.runs, history.metrics, history.decisions, history.column_drift,
                        history.estimated, history.labels, history.importance)
    log.info("retrain %s %s: %s — %s", cfg.name, date, decision.status, "; ".join(decision.reasons))
    if not decision.fired or cfg.sources.inference is not None:
        outcome = Outcome(MONITOR_ONLY if decision.fired else NOT_RUN)
        if decision.fired:
            log.warning("retrain %s %s: fired, but %s is monitor-only (sources.inference): nothing trained; retrain "
                        "the model where it lives, then adopt the new version (driftline models adopt)", cfg.name,
                        date, cfg.name)
        _write(ctx, decision, outcome)
        notify_retrain(ctx, retrain_facts(decision, outcome))
        return outcome
    _write(ctx, decision, Outcome(RUNNING))
    try:
        outcome = train_challenger(ctx, date, decision.onset)
    except Exception as exc:
        _write(ctx, decision, Outcome(FAILED, error=" ".join(f"{type(exc).__name__}: {exc}".split())))
        raise
    _write(ctx, decision, outcome)
    notify_retrain(ctx, retrain_facts(decision, outcome))
    gate = outcome.gate or {}
    log.info("retrain %s %s: version %s trained; gate %s (%s); champion v%s", cfg.name, date, outcome.trained_version,
             "passed" if gate.get("driftline.gate.passed") == "true" else "failed", gate.get("driftline.gate.reason"),
             outcome.champion_version)
    return outcome


def retrain_facts(decision: Decision, outcome: Outcome) -> Facts:
    """What the alert rules of the retrain kinds see of a decision and its training."""
    promoted = outcome.trained_version is not None and outcome.champion_version == outcome.trained_version
    return Facts(job="retrain", run_date=decision.date, window=decision.date.isoformat(), decision=decision.status,
                 decision_reasons="; ".join(decision.reasons),
                 promoted_version=outcome.trained_version if promoted and outcome.train_status == TRAINED else None,
                 previous_champion=(outcome.gate or {}).get("driftline.gate.reference_version"))


def _write(ctx: JobContext, decision: Decision, outcome: Outcome) -> None:
    cfg = ctx.config
    row = decision_row(cfg.name, decision, outcome, ctx.run_id, ctx.config_hash, ctx.code_version, ctx.started_at)
    df = ctx.spark.createDataFrame([row], schema=RETRAIN_DECISIONS.schema())
    commit = ctx.commit_info(f"{cfg.name}@{decision.date}")
    ctx.store.replace_partitions(RETRAIN_DECISIONS.table(), df, RETRAIN_DECISIONS.partition_by, commit,
                                 partitions=[{MODEL: cfg.name, DECISION_DATE: decision.date}])


def train_challenger(ctx: JobContext, date: dt.date, onset: dt.date | None = None) -> Outcome:
    """Run the train job for ``date`` in this process; its result names the version, the registry its gate.

    ``onset``: the drift episode's onset the training is anchored on (None outside an episode). When the
    train job found a version already trained for this date, config and training rows (and so trained
    nothing, status ``skipped``), that version is the outcome (`REUSED`).
    """
    from driftline.jobs import SKIPPED, run_child
    from driftline.registry.client import ModelRegistry, tracking_setup
    from driftline.vocabulary import CHAMPION

    anchored = {"onset": onset} if onset is not None else {}
    trained = run_child(ctx, "train", (date,), force=ctx.force, **anchored)
    cfg = ctx.config
    if trained.model_version is None:
        raise DriftlineError(f"train {cfg.name} {date}: expected a model version from training, found none")
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
    tags = registry.get(trained.model_version).tags
    gate = {k: v for k, v in tags.items() if k.startswith("driftline.gate.")}
    champion = registry.alias(CHAMPION)
    reused = trained.status == SKIPPED
    return Outcome(REUSED if reused else TRAINED, tags.get("driftline.run_id") if reused else trained.run_id,
                   trained.model_version, gate, champion.version if champion else None)
