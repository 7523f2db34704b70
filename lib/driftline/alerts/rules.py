"""Alert rules over a run's verdicts (pure: no I/O).

A run is described by its `Facts` (a monitor run, a retrain decision or a job failure). `evaluate` applies
the rules of the run's kind to the current facts and the facts of the runs before it (k of n), against the
``alert_events`` rows already recorded (dedupe by (model, rule, window), cooldown per rule), and returns
one `Firing` per rule that fired: what to say, and which channels still have to hear it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftline.alerts.spec import AlertRule
from driftline.vocabulary import ALERT, STATUSES, WARN

SENT, PARTIAL, FAILED, SUPPRESSED = "sent", "partial", "failed", "suppressed"
DELIVERED_STATUSES = (SENT, PARTIAL)


@dataclass(frozen=True)
class Facts:
    """What one run found; the fields a kind does not use stay at their defaults."""

    job: str
    run_date: dt.date
    window: str
    report: str | None = None
    drift_status: str | None = None
    drift_share: float | None = None
    drift_threshold: float | None = None
    drifted: tuple[str, ...] = ()
    multivariate: tuple[str, float | None, float | None] | None = None   # (status, domain AUC, its threshold)
    quality_status: str | None = None
    quality_failed: tuple[str, ...] = ()
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    decision: str | None = None            # retrain: fired, armed, no_trigger, ...
    decision_reasons: str | None = None
    promoted_version: str | None = None
    previous_champion: str | None = None
    rolled_back: tuple[str, str] | None = None   # rollback: (from version, to version)
    canary: tuple[str, str, float, float] | None = None   # canary: (status, version, fraction before, after)
    error: str | None = None               # job_failed: the one-line error


@dataclass(frozen=True)
class Hit:
    value: float | None
    threshold: float | None
    reason: str


@dataclass(frozen=True)
class Firing:
    """A rule that fired for ``facts``: send to ``pending`` (the channels that have not taken this alert yet);
    ``suppressed`` names the cooldown that holds it back (then nothing is sent)."""

    rule: AlertRule
    facts: Facts
    hit: Hit
    pending: tuple[str, ...]
    previous: Mapping[str, Any] | None = None      # the alert_events row of the same key, when there is one
    suppressed: str | None = None

    @property
    def window(self) -> str:
        return self.facts.window


def _reached(status: str | None, level: str) -> bool:
    order = {s: i for i, s in enumerate(STATUSES)}
    return status is not None and order.get(status, -1) >= order[ALERT if level == "alert" else WARN]


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def hit(rule: AlertRule, f: Facts) -> Hit | None:
    """Whether ``f`` meets ``rule``'s condition, with the value, the threshold and the reason."""
    kind = rule.when
    if kind == "dataset_drift":
        if not _reached(f.drift_status, rule.level):
            return None
        cols = f" ({', '.join(f.drifted)})" if f.drifted else ""
        share = f.drift_share is not None and f.drift_threshold is not None and f.drift_share >= f.drift_threshold
        if not share and f.multivariate is not None and f.multivariate[0] == f.drift_status:
            # the run's status came from the domain classifier, not from the share of drifted columns
            _, auc, bound = f.multivariate
            return Hit(auc, bound, f"dataset drift {f.drift_status}: multivariate domain classifier AUC {_num(auc)} "
                                   f"> {_num(bound)} (drift share {_num(f.drift_share)}){cols}")
        return Hit(f.drift_share, f.drift_threshold,
                   f"dataset drift {f.drift_status}: drift share {_num(f.drift_share)} "
                   f"{'>=' if share else '<'} {_num(f.drift_threshold)}{cols}")
    if kind == "column_drift":
        cols = [c for c in f.drifted if not rule.columns or c in rule.columns]
        if len(cols) < rule.min_columns:
            return None
        return Hit(float(len(cols)), float(rule.min_columns),
                   f"{len(cols)} column(s) drifted: {', '.join(cols)} (rule: at least {rule.min_columns})")
    if kind == "quality":
        if not _reached(f.quality_status, rule.level):
            return None
        failed = f" ({', '.join(f.quality_failed)})" if f.quality_failed else ""
        return Hit(None, None, f"data quality {f.quality_status}{failed}")
    if kind == "performance":
        value = f.metrics.get(rule.metric or "")
        if value is None or not math.isfinite(value):
            return None
        bound = float(rule.bound) if rule.bound is not None else math.nan
        breached = value < bound if rule.direction == "below" else value > bound
        if not breached:
            return None
        return Hit(value, bound, f"{rule.metric} = {_num(value)} is {rule.direction} the bound {_num(bound)}")
    if kind == "retrain":
        if f.decision not in rule.decisions:
            return None
        return Hit(None, None, f"retrain {f.decision}: {f.decision_reasons or 'no reason recorded'}")
    if kind == "promotion":
        if not f.promoted_version:
            return None
        return Hit(None, None, f"version {f.promoted_version} promoted to champion (was "
                               f"{f.previous_champion or 'none'})")
    if kind == "rollback":
        if f.rolled_back is None:
            return None
        return Hit(None, None, f"champion rolled back from v{f.rolled_back[0]} to v{f.rolled_back[1]}: "
                               f"{f.decision_reasons or 'no reason recorded'}")
    if kind == "canary":
        if f.canary is None or f.canary[0] not in rule.outcomes:
            return None
        status, version, before, after = f.canary
        return Hit(after, None, f"canary v{version} {status.replace('_', ' ')} ({before:.0%} → {after:.0%} of the "
                                f"entities published): {f.decision_reasons or 'no reason recorded'}")
    if kind == "job_failed":
        if f.error is None or (rule.jobs and f.job not in rule.jobs):
            return None
        return Hit(None, None, f"{f.job} failed: {f.error}")
    raise ValueError(f"unknown rule kind {kind!r}")


def evaluate(rules: Sequence[AlertRule], current: Facts, before: Sequence[Facts],
             events: Sequence[Mapping[str, Any]]) -> list[Firing]:
    """The rules that fire for ``current``. ``before``: the facts of the runs before it, newest first (for k of
    n); ``events``: ``alert_events`` rows of the model (those of the same key and, for the cooldown, the
    rule's earlier ones)."""
    out = []
    for rule in rules:
        h = hit(rule, current)
        if h is None:
            continue
        if rule.n > 1:
            hits = 1 + sum(hit(rule, f) is not None for f in before[: rule.n - 1])
            if hits < rule.k:
                continue
            h = Hit(h.value, h.threshold, f"{h.reason}; {hits} of the last {min(rule.n, 1 + len(before))} runs")
        same = next((e for e in events if e["rule"] == rule.name and e["window"] == current.window), None)
        delivered = set(filter(None, (same or {}).get("delivered", "").split(",")))
        pending = tuple(c for c in rule.channels if c not in delivered)
        suppressed = None
        if same is None and rule.cooldown_days:
            since = current.run_date - dt.timedelta(days=rule.cooldown_days)
            recent = sorted((e for e in events if e["rule"] == rule.name and e["status"] in DELIVERED_STATUSES
                             and since <= e["run_date"] < current.run_date), key=lambda e: e["run_date"])
            if recent:
                last = recent[-1]
                suppressed = (f"cooldown: sent for {last['window']} on {last['run_date']}, within "
                              f"{rule.cooldown_days} day(s)")
        elif same is not None and same["status"] == SUPPRESSED:
            suppressed = same.get("errors") or "cooldown"
        out.append(Firing(rule, current, h, pending, same, suppressed))
    return out


def title(model: str, firing: Firing) -> str:
    """The message's one-line title."""
    what = {"dataset_drift": "dataset drift", "column_drift": "column drift", "quality": "data quality",
            "performance": f"{firing.rule.metric} {firing.rule.direction} {_num(firing.rule.bound)}",
            "retrain": "retrain", "promotion": "new champion",
            "rollback": "champion rolled back",
            "canary": f"canary {(firing.facts.canary or ('step',))[0].replace('_', ' ')}",
            "job_failed": f"{firing.facts.job} failed"}
    return f"[driftline] {model}: {what[firing.rule.when]} ({firing.rule.name}) for {firing.window}"
