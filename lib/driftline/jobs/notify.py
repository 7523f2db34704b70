"""Alerts of a job run: evaluate ``alerts.rules`` on what the run found, send through ``alerts.channels``, record
each alert as an ``alert_events`` row (the rules themselves: `driftline.alerts.rules`; the channels:
`driftline.alerts.channels`).

Called by the monitor job after its tables are written (`notify_monitor`), by the retrain job after its decision
is recorded (`notify_retrain`) and by `driftline.jobs.run` when a job fails (`notify_failure`). Sending never
fails the job: a channel that is down is recorded (``failed`` / ``partial``, with the cause) and logged, and the
next run of the same window tries that channel again; a channel that took an alert is never sent it again for the
same (model, rule, window) — reruns, backfills and ``--force`` included. ``driftline alerts resend`` (`resend`)
sends again on purpose. With ``alerts.dry_run`` the messages are logged, nothing is sent or recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from driftline.alerts.rules import FAILED, PARTIAL, SENT, SUPPRESSED, Facts, Firing, evaluate, title
from driftline.alerts.spec import FAILURE_KIND, MONITOR_KINDS, RETRAIN_KINDS
from driftline.monitoring.drift import DATASET
from driftline.monitoring.multivariate import MULTIVARIATE
from driftline.monitoring.performance import PERFORMANCE
from driftline.tables.contracts import ALERT_EVENTS, MONITOR_RUNS
from driftline.vocabulary import ALERT, MODEL, RUN_DATE

if TYPE_CHECKING:
    from driftline.alerts.channels import Message, SendResult
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- facts of a run


def monitor_facts(run_date: dt.date, window: tuple[dt.date, dt.date], run: Mapping[str, Any],
                  rows: Sequence[Mapping[str, Any]], report: str | None, quality_failed: Sequence[str] = ()) -> Facts:
    """A monitor run's facts from its ``monitor_runs`` row and its whole-window reference-baseline metric rows."""
    threshold = next((r["threshold"] for r in rows if r["column"] == DATASET and r["metric"] == "drift_share"), None)
    joint = next(((r["status"], r["value"], r["threshold"]) for r in rows if r["column"] == MULTIVARIATE), None)
    return Facts(
        job="monitor", run_date=run_date, window=f"{window[0]}..{window[1]}", report=report,
        drift_status=run["status"], drift_share=run["drift_share"], drift_threshold=threshold,
        drifted=tuple(sorted(r["column"] for r in rows if r["metric"] == "drift" and r["status"] == ALERT
                             and not r["column"].startswith("__"))),
        multivariate=joint, quality_status=run["quality_status"], quality_failed=tuple(quality_failed),
        metrics={r["metric"]: r["value"] for r in rows if r["column"] == PERFORMANCE},
    )


def earlier_monitor_facts(ctx: JobContext, date: dt.date, history: Sequence[Mapping[str, Any]],
                          runs_needed: int) -> list[Facts]:
    """The facts of the ``runs_needed`` monitor runs before ``date``, newest first (``history``: the run's
    `recent_metrics` rows)."""
    if runs_needed <= 0 or not ctx.store.exists(MONITOR_RUNS.table()):
        return []
    from pyspark.sql import functions as F

    runs = [r.asDict() for r in ctx.store.read(MONITOR_RUNS.table(), partitions={MODEL: [ctx.config.name]})
            .filter(F.col(RUN_DATE) < F.lit(date)).orderBy(F.col(RUN_DATE).desc()).limit(runs_needed).collect()]
    out = []
    for run in runs:
        d = run[RUN_DATE]
        own = [r for r in history if r[RUN_DATE] == d and r["window_end"] == d]
        out.append(monitor_facts(d, (run["window_start"], run["window_end"]), run, own, run.get("report_path")))
    return out


# --------------------------------------------------------------------------- the three entry points


def notify_monitor(ctx: JobContext, current: Facts, history: Sequence[Mapping[str, Any]]) -> None:
    rules = ctx.config.alerts.rules_for(MONITOR_KINDS)
    if rules:
        before = earlier_monitor_facts(ctx, current.run_date, history, max(r.n for r in rules) - 1)
        _notify(ctx, rules, current, before)


def notify_retrain(ctx: JobContext, current: Facts) -> None:
    rules = ctx.config.alerts.rules_for(RETRAIN_KINDS)
    if rules:
        _notify(ctx, rules, current, [])


def notify_failure(ctx: JobContext, error: BaseException) -> None:
    """A failed job's alert (rules ``when: job_failed``); anything going wrong here is logged, never raised over
    the job's own error."""
    rules = ctx.config.alerts.rules_for((FAILURE_KIND,))
    if not rules:
        return
    date = ctx.dates[0]
    text = " ".join(str(error).split())[:500] or type(error).__name__
    facts = Facts(job=ctx.job, run_date=date, window=f"{ctx.job}@{date}", error=text)
    try:
        _notify(ctx, rules, facts, [])
    except Exception as exc:  # noqa: BLE001 - the job's failure is what the user must see
        log.warning("alerts: the job_failed alert of %s %s could not be recorded: %s", ctx.job, date,
                    " ".join(str(exc).split())[:300])


def _notify(ctx: JobContext, rules: Sequence[Any], current: Facts, before: Sequence[Facts]) -> None:
    cfg = ctx.config
    events = read_events(ctx, current.run_date, max(r.cooldown_days for r in rules))
    firings = evaluate(rules, current, before, events)
    if not firings:
        return
    if cfg.alerts.dry_run:
        from driftline.alerts.channels import describe

        for f in firings:
            state = f"suppressed ({f.suppressed})" if f.suppressed else (
                f"would send to {', '.join(f.pending)}" if f.pending else "already delivered everywhere")
            log.info("alerts (dry run): %s — %s", title(cfg.name, f), state)
            for name in () if f.suppressed else f.pending:
                log.info("alerts (dry run): %s", describe(name, cfg.alerts.channels[name], message(cfg.name, f)))
        return
    rows = [event_row(ctx, f, deliver(ctx, f)) for f in firings]
    write_events(ctx, current, events, rows)


def deliver(ctx: JobContext, f: Firing) -> list[SendResult]:
    """Send ``f`` to its pending channels (none when suppressed or already delivered everywhere)."""
    if f.suppressed or not f.pending:
        return []
    from driftline.alerts.channels import send_all

    cfg = ctx.config
    results = send_all(cfg.alerts.channels, f.pending, message(cfg.name, f))
    for r in results:
        if r.ok:
            log.info("alerts: %s sent to %s (%d attempt(s))", title(cfg.name, f), r.channel, r.attempts)
        else:
            log.warning("alerts: %s not sent to %s after %d attempt(s): %s", title(cfg.name, f), r.channel,
                        r.attempts, r.error)
    return results


def message(model: str, f: Firing) -> Message:
    from driftline.alerts.channels import Message

    details: dict[str, Any] = {"kind": f.rule.when, "job": f.facts.job, "run_date": f.facts.run_date.isoformat()}
    if f.facts.drifted:
        details["drifted_columns"] = list(f.facts.drifted)
    if f.facts.quality_failed:
        details["quality_failed"] = list(f.facts.quality_failed)
    return Message(model=model, rule=f.rule.name, window=f.window, severity=f.rule.severity, status="firing",
                   title=title(model, f), reason=f.hit.reason, value=f.hit.value, threshold=f.hit.threshold,
                   report=f.facts.report, dedup_key=dedup_key(model, f.rule.name, f.window), details=details)


def dedup_key(model: str, rule: str, window: str) -> str:
    return f"driftline/{model}/{rule}/{window}"


# --------------------------------------------------------------------------- alert_events


def read_events(ctx: JobContext, date: dt.date, cooldown_days: int) -> list[dict[str, Any]]:
    """The model's ``alert_events`` rows of ``date`` and of the ``cooldown_days`` before it."""
    table = ALERT_EVENTS.table()
    if not ctx.store.exists(table):
        return []
    dates = [date - dt.timedelta(days=i) for i in range(cooldown_days + 1)]
    return [r.asDict() for r in ctx.store.read(table, partitions={MODEL: [ctx.config.name], RUN_DATE: dates})
            .collect()]


def event_row(ctx: JobContext, f: Firing, results: Sequence[SendResult]) -> dict[str, Any]:
    """The ``alert_events`` row of ``f`` after this run's sends, merged with the row of the same key."""
    prev = dict(f.previous or {})
    merged = after_sends(prev, results, f.rule.channels, ctx)
    if f.suppressed:
        merged["status"] = SUPPRESSED
    reason = f.hit.reason if not f.suppressed else f"{f.hit.reason}; not sent: {f.suppressed}"
    return _row(
        model=ctx.config.name, job=f.facts.job, run_date=f.facts.run_date, rule=f.rule.name, kind=f.rule.when,
        window=f.window, severity=f.rule.severity, title=title(ctx.config.name, f), reason=reason,
        value=f.hit.value, threshold=f.hit.threshold, report=f.facts.report,
        dedup_key=dedup_key(ctx.config.name, f.rule.name, f.window), channels=",".join(f.rule.channels),
        resends=int(prev.get("resends") or 0), **merged)


def after_sends(prev: Mapping[str, Any], results: Sequence[SendResult], wanted: Sequence[str],
                ctx: JobContext) -> dict[str, Any]:
    """The delivery columns of an alert after ``results`` (``prev``: its row before, {} for a new one): the
    channels that took it so far, the status against the ``wanted`` channels, this run's errors, the counts and
    times, the provenance of this run."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    delivered = [c for c in (prev.get("delivered") or "").split(",") if c]
    delivered += [r.channel for r in results if r.ok and r.channel not in delivered]
    errors = "; ".join(f"{r.channel}: {r.error}" for r in results if not r.ok) or None
    status = SENT if all(c in delivered for c in wanted) else PARTIAL if delivered else FAILED
    return {"delivered": ",".join(delivered), "status": status,
            "errors": errors or (prev.get("errors") if status != SENT and not results else None),
            "attempts": int(prev.get("attempts") or 0) + sum(r.attempts for r in results),
            "first_sent_at": prev.get("first_sent_at") or (now if any(r.ok for r in results) else None),
            "updated_at": now, "run_id": ctx.run_id, "code_version": ctx.code_version,
            "config_hash": ctx.config_hash}


def _row(**values: Any) -> dict[str, Any]:
    return dict(zip(ALERT_EVENTS.names, ALERT_EVENTS.row(**values), strict=True))


def write_events(ctx: JobContext, current: Facts, events: Sequence[Mapping[str, Any]],
                 rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace the (model, job, run_date) partition with its earlier rows (other rules, earlier failures) and
    ``rows``."""
    keys = {(r["rule"], r["window"]) for r in rows}
    kept = [e for e in events if e["job"] == current.job and e[RUN_DATE] == current.run_date
            and (e["rule"], e["window"]) not in keys]
    write_partition(ctx, current.job, current.run_date, [*kept, *rows])


def write_partition(ctx: JobContext, job: str, date: dt.date, rows: Sequence[Mapping[str, Any]]) -> None:
    model = ctx.config.name
    df = ctx.spark.createDataFrame([tuple(r[c] for c in ALERT_EVENTS.names) for r in rows],
                                   schema=ALERT_EVENTS.schema())
    commit = ctx.commit_info(f"{model}@{job}@{date}")
    ctx.store.replace_partitions(ALERT_EVENTS.table(), df, ALERT_EVENTS.partition_by, commit,
                                 partitions=[{MODEL: model, "job": job, RUN_DATE: date}])



# --------------------------------------------------------------------------- driftline alerts resend


def resend(ctx: JobContext, rule_name: str, window: str, channels: Sequence[str] = ()) -> list[SendResult]:
    """Send the recorded alert (model, ``rule_name``, ``window``) again — to ``channels`` (default: the rule's
    channels in the current config), delivered or not — and record it (``resends`` + 1). With ``alerts.dry_run``
    only say what would be sent."""
    from driftline.alerts.channels import Message, describe, send_all
    from driftline.errors import ConfigError, MissingInputError

    cfg = ctx.config
    rule = next((r for r in cfg.alerts.rules if r.name == rule_name), None)
    if rule is None:
        raise ConfigError(f"alerts resend: expected a rule of alerts.rules "
                          f"({', '.join(r.name for r in cfg.alerts.rules) or 'none configured'}), found {rule_name!r}")
    targets = tuple(channels) or rule.channels
    unknown = [c for c in targets if c not in cfg.alerts.channels]
    if unknown:
        raise ConfigError(f"alerts resend: expected channels of alerts.channels ({', '.join(cfg.alerts.channels)}), "
                          f"found {', '.join(unknown)}")
    table = ALERT_EVENTS.table()
    rows = [] if not ctx.store.exists(table) else [   # the model's alerts: a small table, read once
        r.asDict() for r in ctx.store.read(table, partitions={MODEL: [cfg.name]}).collect()]
    found = [r for r in rows if r["rule"] == rule_name and r["window"] == window]
    if not found:
        raise MissingInputError(f"alerts resend: expected an alert_events row of model {cfg.name}, rule {rule_name}, "
                                f"window {window}, found none (driftline alerts list --model {cfg.name} shows them)")
    row = found[0]
    msg = Message(model=cfg.name, rule=rule_name, window=window, severity=row["severity"], status="firing",
                  title=row["title"], reason=row["reason"], value=row["value"], threshold=row["threshold"],
                  report=row["report"], dedup_key=row["dedup_key"],
                  details={"kind": row["kind"], "job": row["job"], "run_date": row[RUN_DATE].isoformat(),
                           "resend": int(row["resends"]) + 1})
    if cfg.alerts.dry_run:
        for name in targets:
            log.info("alerts (dry run): %s", describe(name, cfg.alerts.channels[name], msg))
        return []
    results = send_all(cfg.alerts.channels, targets, msg)
    updated = {**row, **after_sends(row, results, row["channels"].split(","), ctx), "resends": int(row["resends"]) + 1}
    same_partition = [updated if r is row else r for r in rows
                      if (r["job"], r[RUN_DATE]) == (row["job"], row[RUN_DATE])]
    write_partition(ctx, row["job"], row[RUN_DATE], same_partition)
    return results
