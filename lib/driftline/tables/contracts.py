"""Every table driftline writes, declared once: name, columns (type, nullability, one-line meaning),
partition columns, the key that identifies a row, and the idempotency unit of its writes.

Jobs use the module constants (`FEATURES.table(model)`, `MONITOR_RUNS.schema()`, `.partition_by`,
`.row(...)`) and never spell a table's name or schema themselves. ``docs/table-reference.md`` is
generated from these declarations (`driftline.tables.reference_page`, kept current by a test) and the
catalog comments will come from the same text. Shared column names and the verdict vocabulary live in
`driftline.vocabulary`.

The contract's shape lives in `driftline.tables.contract_base`; the operational tables (``alert_events``,
``champion_rollbacks``) are declared in `driftline.tables.contracts_ops` and re-exported here.

Three tables are per model (``<model>__features``, ``<model>__predictions``, ``<model>__daily_profiles``):
their names carry the model, and their leading columns depend on the model's config (the entity key, the features); the
contract declares the columns every model's table has.
"""

from __future__ import annotations

from pyspark.sql.types import ArrayType, BinaryType, DoubleType, StringType

from driftline import vocabulary as v
from driftline.tables.contract_base import (
    INT,
    TS,
    B,
    Column,
    D,
    F,
    L,
    S,
    TableContract,
    _c,
    _provenance,
)
from driftline.tables.contracts_ops import ALERT_EVENTS, CANARY_STEPS, CHAMPION_ROLLBACKS

__all__ = ["ALERT_EVENTS", "ALL", "CANARY_STEPS", "CHAMPION_ROLLBACKS", "CONTRACT_VERSION", "Column", "STATUS_DOC",
           "TableContract", "contract_of"]

CONTRACT_VERSION = 4  # 1: before the one vocabulary; 2: before drift episodes; 3: before `published` (canary
#                        rollout) in the predictions (see driftline.tables.migrate)


STATUS_DOC = "verdict: ok < insufficient_data < warn < alert (driftline.vocabulary)"

FEATURES = TableContract(
    name="<model>__features",
    doc="One row per (entity, as_of_date): the model's point-in-time features (prepare_features).",
    columns=(
        _c(v.AS_OF, D, "D: the row uses only data before D 00:00 UTC", False),
        *_provenance("the prepare_features run that wrote the partition"),
    ),
    partition_by=(v.AS_OF,),
    key=("<entity_key>", v.AS_OF),
    idempotency="prepare_features replaces the as_of_date partitions of its dates",
    per_model=True,
    model_columns="`<entity_key>` first (the type of the event key), then one column per feature in "
                  "config order after `as_of_date`; a monitor-only model (`sources.inference`): the features as "
                  "logged, `serving_version` (string) when `sources.inference.version` is set, then `logged_score` "
                  "(double), the score the inference log recorded",
)

QUALITY_RESULTS = TableContract(
    name="quality_results",
    doc="One row per (model, as_of_date, check): the data-quality checks of prepare_features.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.AS_OF, D, "the date the check was evaluated for", False),
        _c("check", S, "check name", False),
        _c("kind", S, "schema, contract, input_present, not_null, range, allowed_values, unique, row_count, "
           "freshness", False),
        _c("target", S, "events, entities, features, or inference (a monitor-only model's log)", False),
        _c("column", S, "checked column(s), comma separated; null for table-level checks"),
        _c("severity", S, "error or warn", False),
        _c("status", S, "ok (passed), warn (a warn check failed), alert (an error check failed: only in logs, a "
           "failed run writes nothing), insufficient_data (nothing to evaluate)", False),
        _c("observed", F, "observed value (violating fraction, rows, hours, problems)"),
        _c("lower", F, "lower bound, null when open"),
        _c("upper", F, "upper bound, null when open"),
        _c("bound", S, "the bound in words, e.g. `violating fraction <= 0`", False),
        _c("message", S, "what was expected and what was found", False),
        *_provenance("the prepare_features run"),
    ),
    partition_by=(v.MODEL, v.AS_OF),
    key=(v.MODEL, v.AS_OF, "check"),
    idempotency="prepare_features replaces the (model, as_of_date) partitions of its dates",
    values={"status": STATUS_DOC},
)

QUARANTINE = TableContract(
    name="quarantine",
    doc="One row per (source row, violated row-level check) with the reason (prepare_features).",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.AS_OF, D, "the date (events: the date whose input day holds the event)", False),
        _c("target", S, "events, entities or features", False),
        _c("check", S, "the violated check", False),
        _c("reason", S, "e.g. `amount = -5.0 outside [0, inf]`, `plan is null`"),
        _c("entity_key", S, "the row's entity key"),
        _c("record", S, "the row as JSON (timestamps in UTC; null fields omitted)"),
        *_provenance("the prepare_features run"),
    ),
    partition_by=(v.MODEL, v.AS_OF),
    key=(v.MODEL, v.AS_OF, "target", "check", "entity_key", "record"),
    idempotency="prepare_features replaces the (model, as_of_date) partitions of its dates",
)

PREDICTIONS = TableContract(
    name="<model>__predictions",
    doc="One row per (entity, score_date, role): the scores of the champion (and of the shadow challenger, the "
        "previous champion, the canary). `published` marks the one row per (entity, score_date) BI readers take.",
    columns=(
        _c(v.SCORE, F, "positive-class probability (classification) or predicted value (regression)"),
        _c(v.PREDICTED_LABEL, INT, "1 when score >= label.threshold, else 0 (classification); null for regression"),
        _c(v.MODEL, S, "the model"),
        _c(v.MODEL_VERSION, S, "MLflow model version that produced the row (\"3\")"),
        _c(v.ROLE, S, "champion, challenger (shadow), previous (retrain.rollback) or canary (retrain.canary)"),
        *_provenance("the score run"),
        _c("scored_at", TS, "start time of the score run (UTC), the same for every row of a run"),
        _c(v.SCORE_DATE, D, "the scored as_of_date of the features"),
        _c(v.PUBLISHED, B, "true on the one row per (entity, score_date) that is the published prediction: the "
           "champion's, or during a canary rollout the canary's for its hashed fraction of entities; null on rows "
           "scored before contract 4 (there the champion's row is the published one)"),
    ),
    partition_by=(v.SCORE_DATE,),
    key=("<entity_key>", v.SCORE_DATE, v.ROLE),
    idempotency="score replaces the score_date partition of its date",
    per_model=True,
    model_columns="`<entity_key>` first (the type of the key in the features table)",
    values={v.ROLE: "champion, challenger, previous, canary"},
)

DAILY_PROFILES = TableContract(
    name="<model>__daily_profiles",
    doc="One row per (score_date, role): the scored rows' profile on the version's reference bins, folded by "
        "the score run in the pass that scored them; the monitor merges these instead of re-reading the rows.",
    columns=(
        _c(v.ROLE, S, "champion, challenger (shadow), previous or canary: the version's role in the predictions",
           False),
        _c(v.MODEL_VERSION, S, "the version that scored the rows; its reference's bins are the profile's", False),
        _c("reference_id", S, "<model>/<version> of the reference whose bins the profile uses", False),
        _c("bins_fingerprint", S, "SHA-256 of the profiled columns and their bins: the monitor merges only a "
           "profile whose fingerprint equals its reference's", False),
        _c("profiled_columns", ArrayType(StringType(), False), "the profiled columns in order (features, score, "
           "and the estimation cells' column when the version has a calibration table)", False),
        _c("rows", L, "rows scored by the role on the date", False),
        _c("additive", ArrayType(DoubleType(), False), "the profile's additive slots (rows, null/NaN/inf counts, "
           "bin counts and offset sums, category counts), in driftline.profiling.accumulate's layout", False),
        _c("finite_min", ArrayType(DoubleType(), False), "per numeric column: the smallest finite value", False),
        _c("finite_max", ArrayType(DoubleType(), False), "per numeric column: the largest finite value", False),
        _c("moments", ArrayType(DoubleType(), False), "per numeric column: finite count, mean, M2 (flattened)",
           False),
        _c("sample", BinaryType(), "a uniform sample of the rows (bottom-k of a hash of the entity key, at most "
           "monitoring.report.evidently_rows rows) as an Arrow IPC stream; null when the page is off"),
        _c("sample_rows", L, "rows in the sample", False),
        *_provenance("the score run (the same as the date's predictions)"),
        _c("scored_at", TS, "start time of the score run (UTC)"),
        _c(v.SCORE_DATE, D, "the scored date", False),
    ),
    partition_by=(v.SCORE_DATE,),
    key=(v.SCORE_DATE, v.ROLE),
    idempotency="score replaces the score_date partition of its date, right after the date's predictions",
    per_model=True,
    values={v.ROLE: "champion, challenger, previous, canary"},
)

SCORING_STATS = TableContract(
    name="scoring_stats",
    doc="Long format: one row per (model, score_date, role, column, metric) of a score run.",
    columns=(
        _c(v.MODEL, S, "the model"),
        _c(v.SCORE_DATE, D, "scored date"),
        _c("champion_version", S, "champion version of the run"),
        _c("challenger_version", S, "the second version scored (canary, else the shadow challenger, else previous); "
           "null when the champion alone scored"),
        _c(v.ROLE, S, "champion, challenger, comparison; null for properties of the data"),
        _c("column", S, "feature name for per-feature metrics, else null"),
        _c("metric", S, "see docs/scoring.md"),
        _c("value", F, "the value (counts as doubles; null where undefined)"),
        *_provenance("the score run"),
        _c("scored_at", TS, "start time of the score run (UTC)"),
    ),
    partition_by=(v.MODEL, v.SCORE_DATE),
    key=(v.MODEL, v.SCORE_DATE, v.ROLE, "column", "metric"),
    idempotency="score replaces the (model, score_date) partition of its date",
)

REFERENCE_PROFILES = TableContract(
    name="reference_profiles",
    doc="The reference profile of each model version (train): bins, counts, moments, quantiles, calibration.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.MODEL_VERSION, S, "the registered version", False),
        _c("column", S, "feature name, or `score`", False),
        _c(v.ROLE, S, "feature or score", False),
        _c("kind", S, "numeric or categorical", False),
        _c("stat", S, "which statistic (see docs/training.md)", False),
        _c("bin", INT, "cell index for per-cell statistics"),
        _c("lower", F, "cell lower edge (numeric)"),
        _c("upper", F, "cell upper edge (numeric)"),
        _c("category", S, "category of a categorical cell"),
        _c("quantile", F, "probability of a quantile row"),
        _c("value", F, "the statistic; null when undefined (never NaN or ±inf)"),
        _c("mlflow_run_id", S, "the MLflow run of the version", False),
        *_provenance("the train run"),
        _c("created_at", TS, "when the profile was written (UTC)", False),
    ),
    partition_by=(v.MODEL, v.MODEL_VERSION),
    key=(v.MODEL, v.MODEL_VERSION, "column", "stat", "bin", "category", "quantile"),
    idempotency="train replaces the (model, model_version) partition of the version it registered",
    values={v.ROLE: "feature, score"},
)

MONITOR_METRICS = TableContract(
    name="monitor_metrics",
    doc="Long format: one row per (run_date, model, version, window, slice, baseline, column, metric).",
    columns=(
        _c(v.RUN_DATE, D, "the --date of the monitor run", False),
        _c(v.MODEL, S, "the model", False),
        _c(v.MODEL_VERSION, S, "the version whose predictions and reference are monitored", False),
        _c("reference_id", S, "which reference profile was compared (`<model>/<version>`)", False),
        _c("window_start", D, "first day of the window (inclusive)", False),
        _c("window_end", D, "last day of the window (inclusive)", False),
        _c("slice", S, "__all__, or `<segment column>=<value>` (`=__null__` for nulls, `=__other__` for the values "
           "outside a column's top segments in drift rows per segment), or `<protected column>` for the fairness gaps "
           "across its groups", False),
        _c("baseline", S, "reference or previous_window", False),
        _c("column", S, "feature or `score`; __dataset__ for dataset rows, __performance__ for late-label "
           "performance rows, __multivariate__ for the domain classifier (metric domain_auc), __custom__ and "
           "__custom_change__ for custom metrics (metric = the metric's name), __fairness__ for protected groups",
           False),
        _c("metric", S, "see docs/monitoring.md", False),
        _c("value", F, "the measured value; null when not computable (never NaN or ±inf)"),
        _c("threshold", F, "the threshold status was judged against; null for descriptive metrics"),
        _c("status", S, STATUS_DOC, False),
        _c("method", S, "the column's decision method (wasserstein, psi, js, ks, chi2)"),
        _c("reason", S, "why a verdict is insufficient_data"),
        _c("n_reference", L, "non-missing values compared on the reference side"),
        _c("n_current", L, "non-missing values compared on the current side"),
        *_provenance("the monitor run that wrote the row"),
        _c("created_at", TS, "when the row was written (UTC)", False),
    ),
    partition_by=(v.MODEL, v.RUN_DATE),
    key=(v.RUN_DATE, v.MODEL, v.MODEL_VERSION, "window_start", "window_end", "slice", "baseline", "column",
         "metric"),
    idempotency="monitor replaces the (model, run_date) partition of its date",
    values={"status": STATUS_DOC},
)

MONITOR_RUNS = TableContract(
    name="monitor_runs",
    doc="One verdict row per (model, run_date) of the monitor job.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.MODEL_VERSION, S, "the version whose predictions were monitored", False),
        _c(v.RUN_DATE, D, "the --date", False),
        _c("window_start", D, "first day of the current window", False),
        _c("window_end", D, "last day of the current window", False),
        _c("rows", L, "champion predictions of that version in the window", False),
        _c("columns_evaluated", INT, "columns with enough data", False),
        _c("columns_drifted", INT, "of those, drifted vs the reference (after FDR)", False),
        _c("drift_share", F, "drifted / evaluated; null when no column could be evaluated"),
        _c("dataset_drift", B, "drift share >= monitoring.drift.dataset_drift_share, or a multivariate alert when "
           "monitoring.multivariate.dataset_drift is true (the retrain policy's drift input)", False),
        _c("status", S, "drift verdict vs the reference: the per-column verdict, raised by a multivariate warn or "
           "alert; " + STATUS_DOC, False),
        _c("quality_status", S, "worst data-quality status (insufficient_data for an empty window)", False),
        _c("performance_status", S, "insufficient_data if any performance row is (or no labels), else ok", False),
        _c("report_path", S, "absolute path of the HTML report"),
        *_provenance("the monitor run"),
        _c("started_at", TS, "when the run started (UTC)", False),
    ),
    partition_by=(v.MODEL, v.RUN_DATE),
    key=(v.MODEL, v.RUN_DATE),
    idempotency="monitor replaces the (model, run_date) partition of its date",
    values={"status": STATUS_DOC, "quality_status": STATUS_DOC, "performance_status": STATUS_DOC},
)

RETRAIN_DECISIONS = TableContract(
    name="retrain_decisions",
    doc="One row per (model, decision_date): the retrain policy's decision and what training produced.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.DECISION_DATE, D, "the --date D", False),
        _c("fired", B, "the policy fired (a retrain was started)", False),
        _c("status", S, "fired, armed (an episode waits for labels), no_trigger, cooldown, cap or disabled", False),
        _c("reasons", S, "why, one clause per triggered rule and suppression, `; `-separated", False),
        _c("rules_triggered", S, "comma-separated names of the triggered rules; empty when none", False),
        _c("windows_considered", INT, "monitored windows the policy looked at", False),
        _c("windows_drifted", INT, "of those, windows with dataset_drift", False),
        _c("first_window", D, "run_date of the oldest window considered"),
        _c("last_window", D, "run_date of the newest window considered"),
        _c("performance_value", F, "the performance rule's metric value on the window it judged"),
        _c("labelled_rows", F, "matured labels behind that value"),
        _c("last_retrain_date", D, "the last earlier decision date that trained a version"),
        _c("retrains_in_period", INT, "retrains in retrain.max_per_period.period_days before D", False),
        _c("episode_id", S, "the drift episode of the decision (`ep-<date it was armed>`); null outside one "
           "(retrain.wait_for_labels off, no labels source, no episode) and on rows of contract 2"),
        _c("onset_date", D, "the episode's onset: first window of the run of windows that triggered it; a fired "
           "retrain's training is anchored on it"),
        _c("armed_date", D, "the decision date that opened (armed) the episode"),
        _c("episode_status", S, "open, or ended (a retrain of it was promoted: on that row; no rule triggers any "
           "more: on the first row without a trigger)"),
        _c("labels_available", L, "matured labels (timestamp < D 00:00 UTC) with an as-of date on/after the onset"),
        _c("labels_needed", L, "labels the fire needs: retrain.wait_for_labels.min_new_labels, after a losing fire "
           "that many more than it had"),
        _c("label_days_available", INT, "as-of dates on/after the onset with at least one matured label"),
        _c("label_days_needed", INT, "retrain.wait_for_labels.min_new_days"),
        _c("waited_days", INT, "days from the armed date to D"),
        _c("wait_reason", S, "why it did not fire, comma-separated: labels, label_days, cooldown, cap; max_wait when "
           "it fired without the labels; null otherwise"),
        _c("inputs_json", S, "the inputs considered (windows, performance values, last retrain, count)", False),
        _c("rules_json", S, "each rule: rule, status, value, threshold, detail", False),
        _c("train_status", S, "not_run, running, trained, reused, failed, or monitor_only (fired for a monitor-only "
           "model: nothing trained; adopt its next version)", False),
        _c("train_run_id", S, "the driftline run id of the train run"),
        _c("trained_version", S, "the registered version"),
        _c("gate_passed", B, "the promotion gate's verdict (true: champion moved to the new version)"),
        _c("gate_metric", S, "gate metric (training.gate.metric)"),
        _c("gate_challenger", F, "gate metric of the new version on the validation window"),
        _c("gate_reference", F, "gate metric of the champion (or baseline) on the same window"),
        _c("gate_reference_kind", S, "champion or baseline"),
        _c("gate_reference_version", S, "the champion version compared"),
        _c("gate_reason", S, "the gate's one-line reason"),
        _c("champion_version", S, "the champion after the gate"),
        _c("train_error", S, "one-line error of a failed training"),
        *_provenance("the retrain run that wrote the row"),
        _c("started_at", TS, "when the retrain run started (UTC)", False),
    ),
    partition_by=(v.MODEL, v.DECISION_DATE),
    key=(v.MODEL, v.DECISION_DATE),
    idempotency="retrain replaces the (model, decision_date) partition of its date",
    values={"status": "fired, armed, no_trigger, cooldown, cap, disabled (a decision, not a verdict)",
            "train_status": "not_run, running, trained, reused, failed, monitor_only",
            "episode_status": "open, ended",
            "wait_reason": "labels, label_days, cooldown, cap (comma-separated), max_wait"},
)

PIPELINE_RUNS = TableContract(
    name="pipeline_runs",
    doc="One row per (model, run_date) whose four pipeline steps all completed.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.RUN_DATE, D, "the date whose steps all completed", False),
        _c("status", S, "completed", False),
        _c("steps", S, "the steps run, in order (prepare_features,score,monitor,retrain)", False),
        *_provenance("the pipeline run"),
        _c("elapsed_seconds", F, "wall time of the four steps", False),
        _c("completed_at", TS, "when the date completed (UTC)", False),
    ),
    partition_by=(v.MODEL, v.RUN_DATE),
    key=(v.MODEL, v.RUN_DATE),
    idempotency="pipeline replaces the (model, run_date) partition of its date; a date is skipped when "
                "completed under the same config_hash",
    values={"status": "completed"},
)

ALL: tuple[TableContract, ...] = (
    FEATURES, QUALITY_RESULTS, QUARANTINE, PREDICTIONS, DAILY_PROFILES, SCORING_STATS, REFERENCE_PROFILES,
    MONITOR_METRICS, MONITOR_RUNS, RETRAIN_DECISIONS, PIPELINE_RUNS, ALERT_EVENTS, CHAMPION_ROLLBACKS, CANARY_STEPS,
)


def contract_of(table: str) -> TableContract | None:
    """The contract a table name follows (``churn__features`` → FEATURES), None for a table driftline
    does not write (a source table)."""
    for c in ALL:
        if c.per_model:
            suffix = c.name.removeprefix("<model>")
            if table.endswith(suffix) and len(table) > len(suffix):
                return c
        elif c.name == table:
            return c
    return None
