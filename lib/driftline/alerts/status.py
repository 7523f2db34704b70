"""One screen for a person on call: where a model stands (``driftline status``).

`gather` reads the workspace without starting Spark: the tables through delta-rs (either backend's
tables; partition-pruned to the model) and the registry through MLflow. It returns plain data (the
``--json`` output); `render` turns it into the screen; `exit_code` is 3 when the latest verdict is
an alert, so a shell check can page on it.

The latest verdict is the worst of the latest monitor run's drift, quality and performance statuses
(``ok < insufficient_data < warn < alert``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from driftline.errors import MissingInputError
from driftline.monitoring.drift import DATASET
from driftline.monitoring.metrics import ALL_ROWS
from driftline.monitoring.performance import PERFORMANCE
from driftline.tables.contracts import (
    ALERT_EVENTS,
    CANARY_STEPS,
    CHAMPION_ROLLBACKS,
    FEATURES,
    MONITOR_METRICS,
    MONITOR_RUNS,
    PIPELINE_RUNS,
    PREDICTIONS,
    QUALITY_RESULTS,
    RETRAIN_DECISIONS,
)
from driftline.tables.driver_read import DriverTables
from driftline.tables.names import resolve_location
from driftline.vocabulary import ALERT, CANARY, CHALLENGER, CHAMPION, OK, PREVIOUS, WARN, worst

if TYPE_CHECKING:
    from driftline.registry.spec import MlflowConfig
    from driftline.tables.spec import StorageConfig

ALERT_EXIT = 3  # `exit_code` when the latest verdict is an alert
RECENT_DAYS = 14  # the recent alerts listed: monitor runs of the days before the latest one
SENT_SHOWN = 5   # the last alert_events rows shown


def gather(model: str, workspace: str, storage: StorageConfig, mlflow: MlflowConfig,
           date: dt.date | None = None) -> dict[str, Any]:
    """Where ``model`` stands on ``date`` (None: its latest monitor run); see the module doc."""
    tables = DriverTables(storage, workspace)
    if not any(tables.exists(t) for t in (FEATURES.table(model), PREDICTIONS.table(model), MONITOR_RUNS.table())):
        root = resolve_location(FEATURES.table(model), storage, workspace).uri.rsplit("/", 1)[0]
        raise MissingInputError(f"status of {model}: expected its tables under {root}, found none "
                                f"(run driftline pipeline --model {model} first)")
    runs = _until(tables.rows(MONITOR_RUNS.table(), model=model), "run_date", date)
    latest = runs[-1] if runs else None
    out: dict[str, Any] = {
        "model": model,
        "workspace": str(workspace),
        "as_of": (date or (latest["run_date"] if latest else None)),
        "versions": None,   # read last: a Delta read after MLflow's start aborted the process at exit (see below)
        "jobs": None,
        "monitor": None,
        "quality_failures": [],
        "retrain": None,
        "recent_alerts": [],
        "sent_alerts": [],
        "rollback": None,
        "canary": None,
        "verdict": None,
    }
    if latest is not None:
        run_date = latest["run_date"]
        metrics = tables.rows(MONITOR_METRICS.table(), model=model, run_date=run_date)
        out["monitor"] = _monitor(latest, metrics)
        out["quality_failures"] = [
            {k: r[k] for k in ("check", "column", "severity", "status", "observed", "bound", "message")}
            for r in tables.rows(QUALITY_RESULTS.table(), model=model, as_of_date=latest["window_end"])
            if r["status"] != OK
        ]
        out["verdict"] = worst([latest["status"], latest["quality_status"], latest["performance_status"]])
        since = run_date - dt.timedelta(days=RECENT_DAYS)
        out["recent_alerts"] = [
            {"run_date": r["run_date"], "status": r["status"], "dataset_drift": r["dataset_drift"],
             "columns_drifted": r["columns_drifted"], "quality_status": r["quality_status"],
             "performance_status": r["performance_status"], "report_path": r["report_path"]}
            for r in reversed(runs[:-1])
            if r["run_date"] >= since and ALERT in (r["status"], r["quality_status"], r["performance_status"])
        ]
    events = _until(tables.rows(ALERT_EVENTS.table(), model=model), "run_date", date)
    out["sent_alerts"] = [{k: e[k] for k in ("run_date", "job", "rule", "window", "severity", "status", "delivered",
                                             "errors", "title")} for e in events[-SENT_SHOWN:][::-1]]
    rollbacks = _until(tables.rows(CHAMPION_ROLLBACKS.table(), model=model), "decision_date", date)
    if rollbacks:
        out["rollback"] = {k: rollbacks[-1][k] for k in ("decision_date", "status", "champion_version",
                                                         "previous_version", "champion_after", "reason")}
    steps = _until(tables.rows(CANARY_STEPS.table(), model=model), "decision_date", date)
    if steps:
        last = max(steps, key=lambda r: (r["decision_date"], r["job"] != "train"))
        out["canary"] = {k: last[k] for k in ("decision_date", "job", "status", "canary_version", "fraction_before",
                                              "fraction_after", "reason")}
    decisions = _until(tables.rows(RETRAIN_DECISIONS.table(), model=model), "decision_date", date)
    out["jobs"] = _jobs(tables, model, date, runs, decisions)
    if decisions:
        d = decisions[-1]
        out["retrain"] = {k: d.get(k) for k in (
            "decision_date", "status", "fired", "reasons", "episode_id", "episode_status", "onset_date", "armed_date",
            "waited_days", "wait_reason", "train_status", "trained_version", "gate_passed", "gate_reason",
            "champion_version", "train_error")}
    # The registry after every table: with MLflow (SQLAlchemy) started first, a delta-rs read made the interpreter
    # abort at exit ("terminate called without an active exception", exit 134) in 4-7 runs of 8; never this way.
    out["versions"] = _versions(model, mlflow, workspace)
    return out


def _until(rows: list[dict[str, Any]], column: str, date: dt.date | None) -> list[dict[str, Any]]:
    """``rows`` up to ``date`` (all when None), oldest first."""
    return sorted((r for r in rows if date is None or r[column] <= date), key=lambda r: r[column])


def _versions(model: str, mlflow: MlflowConfig, workspace: str) -> dict[str, Any]:
    from driftline.registry.client import ModelRegistry, tracking_setup

    registry = ModelRegistry(tracking_setup(mlflow, workspace), model)
    if not registry.exists():
        return {CHAMPION: None, CHALLENGER: None, PREVIOUS: None, CANARY: None, "latest": None,
                "latest_created": None}
    versions = registry.versions()
    out: dict[str, Any] = {alias: None for alias in (CHAMPION, CHALLENGER, PREVIOUS, CANARY)}
    for v in versions:
        for alias in v.aliases:
            if alias in out:
                out[alias] = v.version
    newest = max(versions, key=lambda v: int(v.version)) if versions else None
    out["latest"] = newest.version if newest else None
    out["latest_created"] = newest.created if newest else None
    return out


def _jobs(tables: DriverTables, model: str, date: dt.date | None, runs: list[dict[str, Any]],
          decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last run of each job: its last write (features, predictions) or its own row (monitor, retrain, pipeline;
    ``runs`` and ``decisions`` are the rows `gather` read, up to ``date``)."""
    out = []
    for job, table in (("prepare_features", FEATURES.table(model)), ("score", PREDICTIONS.table(model))):
        last = tables.last_write(table)
        out.append({"job": job, "date": last["date"] if last else None, "status": "written" if last else None,
                    "at": last["committed_at"] if last else None, "run_id": last["run_id"] if last else None})
    pipeline = _until(tables.rows(PIPELINE_RUNS.table(), model=model), "run_date", date)
    for job, rows, day, when in (("monitor", runs, "run_date", "started_at"),
                                 ("retrain", decisions, "decision_date", "started_at"),
                                 ("pipeline", pipeline, "run_date", "completed_at")):
        last = rows[-1] if rows else None
        out.append({"job": job, "date": last[day] if last else None, "status": last["status"] if last else None,
                    "at": last[when] if last else None, "run_id": last["run_id"] if last else None})
    return out


def _monitor(run: dict[str, Any], metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The latest monitor run and, from its whole-window rows against the reference, what alerted and why."""
    own = [m for m in metrics if m["slice"] == ALL_ROWS and m["baseline"] == "reference"
           and m["window_end"] == run["run_date"]]
    flagged: dict[str, dict[str, Any]] = {}
    for m in own:
        if m["column"] in (DATASET, PERFORMANCE) or m["metric"] != "drift" or m["status"] not in (WARN, ALERT):
            continue
        flagged[m["column"]] = {"column": m["column"], "status": m["status"], "because": []}
    for m in own:
        column = flagged.get(m["column"])
        if column is not None and m["metric"] != "drift" and m["status"] == column["status"]:
            column["because"].append(_metric(m))   # the measures that reached the column's verdict
    performance = [_metric(m) for m in own if m["column"] == PERFORMANCE and m["value"] is not None]
    keep = ("run_date", "model_version", "window_start", "window_end", "rows", "columns_evaluated", "columns_drifted",
            "drift_share", "dataset_drift", "status", "quality_status", "performance_status", "report_path",
            "started_at", "run_id")
    return {**{k: run[k] for k in keep},
            "alerted_columns": sorted(flagged.values(), key=lambda c: (c["status"] != ALERT, c["column"])),
            "performance": performance}


def _metric(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("metric", "value", "threshold", "status", "method")}


def exit_code(status: dict[str, Any]) -> int:
    """`ALERT_EXIT` when the latest verdict is an alert, else 0."""
    return ALERT_EXIT if status["verdict"] == ALERT else 0


def to_json(status: dict[str, Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return value.astimezone(dt.UTC).isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)

    return json.dumps(status, default=plain, indent=2, sort_keys=False)


def render(status: dict[str, Any]) -> str:
    """The screen: verdict, versions, last runs, what alerted and why, retrain, recent alerts, report."""
    lines = []
    day = status["as_of"]
    verdict = status["verdict"]
    lines.append(f"{status['model']} — status {'on ' + str(day) if day else '(no monitor run yet)'} "
                 f"(workspace {status['workspace']})")
    mon = status["monitor"]
    if mon is not None:
        lines.append(f"verdict: {str(verdict).upper()}  (drift {mon['status']} · quality {mon['quality_status']} · "
                     f"performance {mon['performance_status']})")
    else:
        lines.append("verdict: none (no monitor run yet)")
    v = status["versions"]
    latest = (f"; latest registered v{v['latest']}, {_when(v['latest_created'])}" if v.get("latest") else
              "; no registered version")
    canary = f" · canary {_v(v[CANARY])}" if v.get(CANARY) else ""
    lines.append(f"versions: champion {_v(v[CHAMPION])} · challenger {_v(v[CHALLENGER])} · "
                 f"previous {_v(v[PREVIOUS])}{canary}{latest}")
    lines.append("last runs:")
    for j in status["jobs"]:
        if j["date"] is None:
            lines.append(f"  {j['job']:<17} never")
            continue
        lines.append(f"  {j['job']:<17} {j['date']}  {j['status'] or '-':<17} {_when(j['at'])}  {j['run_id'] or ''}"
                     .rstrip())
    if mon is not None:
        lines.append(f"drift: {mon['columns_drifted']} of {mon['columns_evaluated']} columns drifted "
                     f"(share {_num(mon['drift_share'])}, dataset drift {'yes' if mon['dataset_drift'] else 'no'}) "
                     f"in {mon['window_start']}..{mon['window_end']}, {mon['rows'] or 0:,} rows, "
                     f"v{mon['model_version']}")
        for c in mon["alerted_columns"]:
            why = ", ".join(f"{b['metric']} {_num(b['value'])} (threshold {_num(b['threshold'])})"
                            for b in c["because"][:4])
            lines.append(f"  {c['column']:<28} {c['status']:<6} {why}".rstrip())
        if mon["performance"]:
            lines.append("performance:")
            for p in mon["performance"]:
                method = f", {p['method']}" if p["method"] else ""
                lines.append(f"  {p['metric']:<28} {_num(p['value']):<10} {p['status']:<17} "
                             f"(threshold {_num(p['threshold'])}{method})")
    for q in status["quality_failures"]:
        lines.append(f"quality: {q['check']} {q['status']} ({q['severity']}): {q['message']}")
    r = status["retrain"]
    if r is not None:
        what = "fired" if r["fired"] else "not fired"
        episode = (f"; episode {r['episode_id']} {r['episode_status']} since {r['onset_date']}"
                   if r.get("episode_id") else "")
        wait = f"; waiting: {r['wait_reason']}" if r.get("wait_reason") else ""
        trained = (f"; trained v{r['trained_version']}, gate {'passed' if r['gate_passed'] else 'failed'}"
                   if r.get("trained_version") else "")
        lines.append(f"retrain ({r['decision_date']}): {r['status']}, {what}{episode}{wait}{trained}")
    if status["recent_alerts"]:
        lines.append(f"alerts in the {RECENT_DAYS} days before:")
        for a in status["recent_alerts"]:
            lines.append(f"  {a['run_date']}  drift {a['status']} ({a['columns_drifted']} columns) · quality "
                         f"{a['quality_status']} · performance {a['performance_status']}")
    if status["rollback"]:
        rb = status["rollback"]
        lines.append(f"rollback check ({rb['decision_date']}): {rb['status']} — {rb['reason']}")
    if status["canary"]:
        c = status["canary"]
        lines.append(f"canary ({c['decision_date']}): v{c['canary_version']} {c['status']}, published "
                     f"{c['fraction_before']:.0%} → {c['fraction_after']:.0%} — {c['reason']}")
    if status["sent_alerts"]:
        lines.append("last alerts (alert_events):")
        for a in status["sent_alerts"]:
            lines.append(f"  {a['run_date']}  {a['rule']} [{a['severity']}] {a['status']}"
                         f"{' to ' + a['delivered'] if a['delivered'] else ''} — {a['title']}")
    if mon is not None and mon.get("report_path"):
        lines.append(f"report: {mon['report_path']}")
    return "\n".join(lines)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "-"


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"
