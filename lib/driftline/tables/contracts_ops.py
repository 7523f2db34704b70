"""The operational tables, declared like the others (`driftline.tables.contracts` re-exports them): the alerts
sent (``alert_events``), the automatic rollbacks of a champion (``champion_rollbacks``) and the steps of a canary
rollout (``canary_steps``)."""

from __future__ import annotations

from driftline import vocabulary as v
from driftline.tables.contract_base import INT, TS, D, F, L, S, TableContract, _c, _provenance

ALERT_EVENTS = TableContract(
    name="alert_events",
    doc="One row per alert (model, rule, window): what an alert rule found, where it was sent and whether it "
        "arrived. A rerun or backfill of the same window never sends it again; `driftline alerts resend` does.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c("job", S, "the job whose run raised it (monitor, retrain, or the job that failed)", False),
        _c(v.RUN_DATE, D, "the --date D of that run", False),
        _c("rule", S, "the rule's name (alerts.rules[].name)", False),
        _c("kind", S, "what the rule watches (alerts.rules[].when)", False),
        _c("window", S, "what the alert is about: the monitor window `start..end`, the decision date, or "
           "`<job>@<date>` for a job failure", False),
        _c("severity", S, "critical, warning or info", False),
        _c("status", S, "sent (every channel took it), partial (some did), failed (none did), suppressed "
           "(cooldown: the rule was sent for an earlier window within alerts.rules[].cooldown_days)", False),
        _c("title", S, "the message's one-line title", False),
        _c("reason", S, "why it fired: the measure, the threshold, and k of n runs", False),
        _c("value", F, "the measured value (drift share, drifted columns, metric, ...)"),
        _c("threshold", F, "the threshold the value crossed"),
        _c("report", S, "the HTML report of the run (path or URL)"),
        _c("dedup_key", S, "`driftline/<model>/<rule>/<window>`: the PagerDuty dedup key and webhook id", False),
        _c("channels", S, "the rule's channels, comma-separated", False),
        _c("delivered", S, "the channels that took it, comma-separated (empty: none)", False),
        _c("errors", S, "per failed channel `name: cause` (secrets masked), `; `-separated; null when none"),
        _c("attempts", INT, "send attempts over all channels and runs", False),
        _c("resends", INT, "times `driftline alerts resend` sent it again", False),
        _c("first_sent_at", TS, "when it was first sent (UTC); null while no channel took it"),
        _c("updated_at", TS, "when the row was last written (UTC)", False),
        *_provenance("the run that last wrote the row"),
    ),
    partition_by=(v.MODEL, "job", v.RUN_DATE),
    key=(v.MODEL, "rule", "window"),
    idempotency="a job replaces its (model, job, run_date) partition with the rows it had plus what this run "
                "sent; a delivered channel is never sent to again for the same key",
    values={"status": "sent, partial, failed, suppressed", "severity": "critical, warning, info",
            "kind": "dataset_drift, column_drift, quality, performance, retrain, promotion, rollback, canary, "
                    "job_failed"},
)

CHAMPION_ROLLBACKS = TableContract(
    name="champion_rollbacks",
    doc="One row per (model, decision_date) with retrain.rollback on and a `previous` version to compare with: "
        "the newly promoted champion against its predecessor on the same labelled rows, and whether the champion "
        "alias moved back.",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c(v.DECISION_DATE, D, "the retrain run's --date D", False),
        _c("status", S, "rolled_back, held (not worse by more than the margin, or already rolled back once), "
           "insufficient_data (too few matured labels: never rolls back)", False),
        _c("champion_version", S, "the champion compared (before a rollback)", False),
        _c("previous_version", S, "the version holding the `previous` alias", False),
        _c("metric", S, "retrain.rollback.metric", False),
        _c("champion_value", F, "the metric of the champion on the compared rows"),
        _c("previous_value", F, "the metric of the previous version on the same rows"),
        _c("margin", F, "retrain.rollback.margin", False),
        _c("labelled_rows", L, "rows both versions scored whose label matured before D", False),
        _c("first_date", D, "first score_date compared"),
        _c("last_date", D, "last score_date compared"),
        _c("estimated_value", F, "the champion's latest estimated metric (with retrain.rollback.estimated_min)"),
        _c("reason", S, "why, one line", False),
        _c("champion_after", S, "the champion after the decision", False),
        *_provenance("the retrain run that wrote the row"),
        _c("started_at", TS, "when the retrain run started (UTC)", False),
    ),
    partition_by=(v.MODEL, v.DECISION_DATE),
    key=(v.MODEL, v.DECISION_DATE),
    idempotency="retrain replaces the (model, decision_date) partition of its date; a version is rolled back at "
                "most once",
    values={"status": "rolled_back, held, insufficient_data"},
)

CANARY_STEPS = TableContract(
    name="canary_steps",
    doc="One row per canary decision (retrain.canary): its start by the train job whose version passed the gate, "
        "and each retrain date's comparison of the canary with the champion on the same rows, with the published "
        "fraction before and after (widened, held, promoted or rolled back).",
    columns=(
        _c(v.MODEL, S, "the model", False),
        _c("job", S, "train (the start) or retrain (a step decision)", False),
        _c(v.DECISION_DATE, D, "the run's --date D", False),
        _c("status", S, "started, widened, held (not yet min_days at the step), insufficient_data (too few matured "
           "labels: never widens), promoted (the canary became the champion), rolled_back", False),
        _c("canary_version", S, "the version holding the `canary` alias", False),
        _c("champion_version", S, "the champion it is compared with", False),
        _c("fraction_before", F, "the fraction of entities whose published prediction was the canary's, before",
           False),
        _c("fraction_after", F, "the fraction after the decision (0 after a rollback, 1 after a promotion)", False),
        _c("days_at_step", INT, "score dates scored at fraction_before before D", False),
        _c("metric", S, "retrain.canary.metric", False),
        _c("canary_value", F, "the metric of the canary on the compared labelled rows"),
        _c("champion_value", F, "the metric of the champion on the same rows"),
        _c("margin", F, "retrain.canary.margin", False),
        _c("labelled_rows", L, "rows both versions scored, at the step, whose label matured before D", False),
        _c("prediction_psi", F, "PSI of the canary's scores against the champion's on the same rows (10 bins at "
           "the champion's deciles)"),
        _c("first_date", D, "first score_date compared"),
        _c("last_date", D, "last score_date compared"),
        _c("reason", S, "why, one line", False),
        _c("champion_after", S, "the champion after the decision", False),
        *_provenance("the run that wrote the row"),
        _c("started_at", TS, "when the run started (UTC)", False),
    ),
    partition_by=(v.MODEL, "job", v.DECISION_DATE),
    key=(v.MODEL, "job", v.DECISION_DATE),
    idempotency="train (start) and retrain (step) replace the (model, job, decision_date) partition of their date",
    values={"status": "started, widened, held, insufficient_data, promoted, rolled_back"},
)
