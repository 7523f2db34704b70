"""The retrain policy as a pure function of the monitoring history (no Spark, no clock, no I/O).

`evaluate` takes the ``monitor_runs`` rows, the late-label performance rows and the per-feature
drift verdicts of ``monitor_metrics`` and the past ``retrain_decisions`` of one model and returns a
`Decision`: which rules triggered, on which windows and values, whether the retrain fires and why
(or why not).

Hysteresis, so the decision does not flap:

- only windows monitored *after* the last retrain count (the older ones judged the previous state);
- ``cooldown_days``: no retrain within that many days after the last one;
- ``max_per_period``: at most ``count`` retrains in any ``period_days`` days.

A retrain is a past decision row with a ``trained_version`` (or, for a monitor-only model, that fired:
``train_status = monitor_only``: it counts for the cooldown and the cap, but its model did not change, so the
windows before it still count) on a date before the decision date (a rerun of the same date is the job's
business: R23).

With ``retrain.wait_for_labels.enabled`` and label availability (``labels``: matured labels per as-of
date), triggers open drift episodes that arm and fire once post-onset labels matured
(`driftline.retrain.episodes`); the cooldown then applies between the fires of one episode.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from driftline.retrain import episodes
from driftline.retrain.episodes import ARMED, Episode, acted
from driftline.retrain.spec import RetrainConfig
from driftline.vocabulary import finite_or_none

TRIGGERED, OK, INSUFFICIENT, DISABLED = "triggered", "ok", "insufficient_data", "disabled"
FIRED, NO_TRIGGER, COOLDOWN, CAP = "fired", "no_trigger", "cooldown", "cap"
STATUSES = (FIRED, ARMED, NO_TRIGGER, COOLDOWN, CAP, DISABLED)
PERFORMANCE_COLUMN = "__performance__"
LABELLED_ROWS = "labelled_rows"


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict: ``status`` is triggered, ok, insufficient_data or disabled."""

    rule: str
    status: str
    value: float | None
    threshold: str
    detail: str

    @property
    def triggered(self) -> bool:
        return self.status == TRIGGERED


@dataclass(frozen=True)
class Window:
    """One monitored window as the policy saw it (a ``monitor_runs`` row)."""

    run_date: dt.date
    model_version: str | None
    dataset_drift: bool
    drift_share: float | None
    quality_status: str | None
    drift_score: float | None = None
    estimated_performance: float | None = None


@dataclass(frozen=True)
class Decision:
    """Outcome of one evaluation, with everything it was based on."""

    date: dt.date
    fired: bool
    status: str
    reasons: tuple[str, ...]
    rules: tuple[RuleResult, ...]
    windows: tuple[Window, ...]
    performance: dict[str, Any] = field(default_factory=dict)
    last_retrain: dt.date | None = None
    retrains_in_period: int = 0
    episode: Episode | None = None     # the drift episode (episode mode only)
    weights: dict[str, float] = field(default_factory=dict)   # drift_score: each evaluated feature's weight

    def rule(self, name: str) -> RuleResult:
        return next(r for r in self.rules if r.rule == name)

    @property
    def onset(self) -> dt.date | None:
        """The onset a fired retrain's training is anchored on (None outside an episode)."""
        return self.episode.onset if self.episode is not None else None

    def inputs_json(self) -> str:
        """The inputs considered (windows with their values, performance, past retrains, episode) as JSON."""
        return json.dumps({
            "windows": [{**asdict(w), "run_date": w.run_date.isoformat()} for w in self.windows],
            "performance": self.performance,
            "last_retrain": self.last_retrain.isoformat() if self.last_retrain else None,
            "retrains_in_period": self.retrains_in_period,
            "episode": self.episode.summary() if self.episode is not None else None,
            "drift_score_weights": self.weights or None,
        }, sort_keys=True)

    def rules_json(self) -> str:
        """Every rule's result as a JSON list."""
        return json.dumps([asdict(r) for r in self.rules], sort_keys=True)


# --------------------------------------------------------------------------- evaluation


def evaluate(policy: RetrainConfig, date: dt.date, runs: Sequence[Mapping[str, Any]],
             metrics: Sequence[Mapping[str, Any]] = (), decisions: Sequence[Mapping[str, Any]] = (),
             column_drift: Sequence[Mapping[str, Any]] = (), estimated: Sequence[Mapping[str, Any]] = (),
             labels: Mapping[dt.date, int] | None = None, importance: Mapping[str, float] | None = None) -> Decision:
    """Evaluate ``policy`` for ``date`` on one model's history.

    ``runs``: ``monitor_runs`` rows (``run_date``, ``dataset_drift``, ``drift_share``, ``quality_status``,
    ``model_version``); ``metrics``: ``monitor_metrics`` rows of column ``__performance__``, baseline
    reference (``run_date``, ``metric``, ``value``, ``window_end``: the run's own window when absent,
    ``window_start``); ``decisions``: ``retrain_decisions`` rows (``decision_date``, ``trained_version``
    and, for episodes, ``episode_id``, ``episode_status``, ``onset_date``, ``armed_date``,
    ``labels_available``, ``gate_passed``, ``champion_version``); ``column_drift``: the features' ``drift``
    verdict rows of ``monitor_metrics``, baseline reference (``run_date``, ``column``, ``value`` 1/0, None
    when insufficient); ``estimated``: the ``estimated_<metric>`` rows of the runs' own windows
    (``run_date``, ``value``); ``labels``: matured labels (timestamp before ``date`` 00:00 UTC) per as-of
    date, None when the model has no labels source (no episode can be armed: every trigger fires at
    once); ``importance``: the champion's permutation importance per feature (the ``drift_score`` weights of
    features without an explicit one). Rows dated after ``date`` are ignored; decision rows of ``date`` itself
    too.
    """
    retrains = sorted({d["decision_date"] for d in decisions if acted(d) and d["decision_date"] < date})
    last = retrains[-1] if retrains else None
    cap = policy.max_per_period
    in_period = sum(1 for d in retrains if (date - d).days < cap.period_days)
    # the windows judged: those after the last change of model (a monitor-only fire changed nothing: its windows
    # still judge the model in use)
    changes = [d["decision_date"] for d in decisions if d.get("trained_version") and d["decision_date"] < date]
    changed = max(changes) if changes else None

    scores = drift_scores(policy, column_drift, importance) if policy.drift_score.enabled else {}
    estimates = _estimates(policy, estimated)
    history = sorted((_window(r, scores, estimates) for r in runs
                      if r["run_date"] <= date and (changed is None or r["run_date"] > changed)),
                     key=lambda w: w.run_date, reverse=True)
    perf, perf_values = _performance(policy, date, history, metrics, changed)
    rules = (_drift(policy, history), _drift_score(policy, history), perf, _estimated(policy, history),
             _quality(policy, history))
    depth = max(policy.drift.n if policy.drift.enabled else 0, policy.quality.n if policy.quality.enabled else 0,
                policy.drift_score.n if policy.drift_score.enabled else 0,
                policy.estimated_performance.n if policy.estimated_performance.enabled else 0,
                1 if policy.performance.enabled else 0)
    considered = tuple(history[:depth])
    triggered = [r for r in rules if r.triggered]
    weights = ({c: policy.drift_score.weight(c, importance) for c in sorted({r["column"] for r in column_drift})}
               if policy.drift_score.enabled else {})

    def done(fired: bool, status: str, reasons: list[str], episode: Episode | None = None) -> Decision:
        return Decision(date, fired, status, tuple(reasons), rules, considered, perf_values, last, in_period,
                        episode, weights)

    if not policy.enabled:
        return done(False, DISABLED, ["retrain.enabled is false"])
    why = [f"{r.rule}: {r.detail}" for r in triggered]
    if policy.wait_for_labels.enabled and labels is not None:
        verdict = episodes.decide(policy, date, [r.rule for r in triggered],
                                  onset_of(policy, history, [r.rule for r in triggered], perf_values),
                                  decisions, labels, in_period, len(history), max(depth, 1))
        reasons = [*why, *verdict.reasons] if triggered else list(verdict.reasons)
        return done(verdict.fired, verdict.status, reasons, verdict.episode)
    if not triggered:
        return done(False, NO_TRIGGER, ["no rule triggered"])
    if last is not None and (date - last).days < policy.cooldown_days:
        return done(False, COOLDOWN, [*why, f"suppressed: last retrain on {last}, {(date - last).days} days ago; "
                                            f"expected at least retrain.cooldown_days={policy.cooldown_days}"])
    if in_period >= cap.count:
        return done(False, CAP, [*why, f"suppressed: {in_period} retrains in the last {cap.period_days} days; "
                                       f"expected fewer than retrain.max_per_period.count={cap.count}"])
    return done(True, FIRED, why)


def onset_of(policy: RetrainConfig, history: Sequence[Window], triggered: Sequence[str],
             performance: Mapping[str, Any]) -> dt.date | None:
    """The onset of the triggered rules: the earliest, over them, of the first window of the run of hit windows.

    Per k-of-n rule: its oldest hit among its last ``n`` windows, extended back over the contiguous
    hit windows before it (windows after the last retrain only). ``performance``: the start of the
    judged window (its end when the start is unknown).
    """
    hit: dict[str, Any] = {
        "drift": lambda w: w.dataset_drift,
        "drift_score": lambda w: w.drift_score is not None and w.drift_score >= policy.drift_score.threshold,
        "estimated_performance": lambda w: _outside(policy.estimated_performance.min,
                                                    policy.estimated_performance.max, w.estimated_performance),
        "quality": lambda w: w.quality_status in policy.quality.statuses,
    }
    sizes = {"drift": policy.drift.n, "drift_score": policy.drift_score.n,
             "estimated_performance": policy.estimated_performance.n, "quality": policy.quality.n}
    onsets: list[dt.date] = []
    for rule in triggered:
        if rule == "performance":
            start = performance.get("window_start") or performance.get("window_end")
            if start:
                onsets.append(dt.date.fromisoformat(start))
            continue
        idx = [i for i, w in enumerate(history[: sizes[rule]]) if hit[rule](w)]
        if not idx:
            continue
        i = idx[-1]
        while i + 1 < len(history) and hit[rule](history[i + 1]):
            i += 1
        onsets.append(history[i].run_date)
    return min(onsets) if onsets else None


def _outside(low: float | None, high: float | None, value: float | None) -> bool:
    return value is not None and ((low is not None and value < low) or (high is not None and value > high))


def _estimates(policy: RetrainConfig, rows: Sequence[Mapping[str, Any]]) -> dict[dt.date, float | None]:
    """The estimate of each run's own window (rows of another metric or an earlier window are ignored)."""
    rule = policy.estimated_performance
    if not rule.enabled:
        return {}
    return {r["run_date"]: finite_or_none(r.get("value")) for r in rows
            if r.get("metric", rule.metric_name) == rule.metric_name
            and (r.get("window_end") or r["run_date"]) == r["run_date"]}


def _window(row: Mapping[str, Any], scores: Mapping[dt.date, float | None],
            estimates: Mapping[dt.date, float | None]) -> Window:
    share = row.get("drift_share")
    return Window(row["run_date"], row.get("model_version"), bool(row.get("dataset_drift")),
                  finite_or_none(share), row.get("quality_status"),
                  scores.get(row["run_date"]), estimates.get(row["run_date"]))


def drift_scores(policy: RetrainConfig, column_drift: Sequence[Mapping[str, Any]],
                 importance: Mapping[str, float] | None = None) -> dict[dt.date, float | None]:
    """Drift-weighted score per window: sum(weight * drift) / sum(weight) over the evaluated features
    (`DriftScoreRule.weight`: explicit, else the champion's permutation ``importance``, else the default).

    ``drift`` is the column's verdict (1 drifted, 0 not); a column without a verdict (None/NaN:
    insufficient data) is left out of both sums. None when no evaluated feature has a positive weight.
    """
    rule = policy.drift_score
    sums: dict[dt.date, list[float]] = {}
    for row in column_drift:
        weighted = sums.setdefault(row["run_date"], [0.0, 0.0])
        drift, weight = finite_or_none(row.get("value")), rule.weight(row["column"], importance)
        if drift is None or weight == 0:
            continue
        weighted[0] += weight * (1.0 if drift > 0 else 0.0)
        weighted[1] += weight
    return {day: (num / den if den > 0 else None) for day, (num, den) in sums.items()}


def _k_of_n(rule: str, hits: Sequence[Window], seen: Sequence[Window], k: int, n: int, what: str) -> RuleResult:
    dates = ", ".join(str(w.run_date) for w in sorted(hits, key=lambda w: w.run_date)) or "none"
    detail = f"{what} in {len(hits)} of the last {len(seen)} windows ({dates}); expected at least {k} of {n} to fire"
    return RuleResult(rule, TRIGGERED if len(hits) >= k else OK, float(len(hits)), f">= {k} of {n}", detail)


def _drift(policy: RetrainConfig, history: Sequence[Window]) -> RuleResult:
    rule = policy.drift
    if not rule.enabled:
        return RuleResult("drift", DISABLED, None, "", "retrain.drift.enabled is false")
    seen = history[: rule.n]
    return _k_of_n("drift", [w for w in seen if w.dataset_drift], seen, rule.k, rule.n, "dataset drift")


def _drift_score(policy: RetrainConfig, history: Sequence[Window]) -> RuleResult:
    rule = policy.drift_score
    if not rule.enabled:
        return RuleResult("drift_score", DISABLED, None, "", "retrain.drift_score.enabled is false")
    seen = history[: rule.n]
    if not any(w.drift_score is not None for w in seen):
        detail = (f"expected a drift score (a feature with a drift verdict and a positive weight) in the last "
                  f"{rule.n} windows, found none")
        return RuleResult("drift_score", INSUFFICIENT, None, f">= {rule.threshold:g} in {rule.k} of {rule.n}", detail)
    hits = [w for w in seen if w.drift_score is not None and w.drift_score >= rule.threshold]
    scores = ", ".join(f"{w.run_date}: {'none' if w.drift_score is None else f'{w.drift_score:.3g}'}"
                       for w in sorted(seen, key=lambda w: w.run_date))
    detail = (f"weighted drift score >= {rule.threshold:g} in {len(hits)} of the last {len(seen)} windows "
              f"({scores}); expected at least {rule.k} of {rule.n} to fire")
    return RuleResult("drift_score", TRIGGERED if len(hits) >= rule.k else OK, float(len(hits)),
                      f">= {rule.threshold:g} in {rule.k} of {rule.n}", detail)


def _estimated(policy: RetrainConfig, history: Sequence[Window]) -> RuleResult:
    rule = policy.estimated_performance
    if not rule.enabled:
        return RuleResult("estimated_performance", DISABLED, None, "", "retrain.estimated_performance.enabled is false")
    bound = " and ".join(b for b in (f">= {rule.min}" if rule.min is not None else "",
                                     f"<= {rule.max}" if rule.max is not None else "") if b)
    threshold = f"outside [{bound}] in {rule.k} of {rule.n}"
    seen = history[: rule.n]
    if not any(w.estimated_performance is not None for w in seen):
        detail = (f"expected an {rule.metric_name} value (monitor_metrics, column {PERFORMANCE_COLUMN}) in the last "
                  f"{rule.n} windows, found none")
        return RuleResult("estimated_performance", INSUFFICIENT, None, threshold, detail)
    hits = [w for w in seen if _outside(rule.min, rule.max, w.estimated_performance)]
    values = ", ".join(f"{w.run_date}: " + ("none" if w.estimated_performance is None
                                             else f"{w.estimated_performance:.4g}")
                       for w in sorted(seen, key=lambda w: w.run_date))
    detail = (f"{rule.metric_name} outside the bound ({bound}) in {len(hits)} of the last {len(seen)} windows "
              f"({values}); expected at least {rule.k} of {rule.n} to fire")
    return RuleResult("estimated_performance", TRIGGERED if len(hits) >= rule.k else OK, float(len(hits)),
                      threshold, detail)


def _quality(policy: RetrainConfig, history: Sequence[Window]) -> RuleResult:
    rule = policy.quality
    if not rule.enabled:
        return RuleResult("quality", DISABLED, None, "", "retrain.quality.enabled is false")
    seen = history[: rule.n]
    hits = [w for w in seen if w.quality_status in rule.statuses]
    return _k_of_n("quality", hits, seen, rule.k, rule.n, f"quality status in ({', '.join(rule.statuses)})")


def _performance(policy: RetrainConfig, date: dt.date, history: Sequence[Window],
                 metrics: Sequence[Mapping[str, Any]], last: dt.date | None) -> tuple[RuleResult, dict[str, Any]]:
    rule = policy.performance
    if not rule.enabled:
        return RuleResult("performance", DISABLED, None, "", "retrain.performance.enabled is false"), {}
    bound = " and ".join(b for b in (f">= {rule.min}" if rule.min is not None else "",
                                     f"<= {rule.max}" if rule.max is not None else "") if b)
    if not history:
        return RuleResult("performance", INSUFFICIENT, None, bound, f"no monitored window up to {date}"), {}
    latest = history[0].run_date
    # the latest run's windows: its own (window_end = run_date) and the earlier ones it recomputed on matured
    # labels; the freshest window with enough labels decides. Only windows that ended after the last retrain
    # judge the model in use; without a retrain every one does, even one that ended before monitoring began
    # (the only fully matured windows end label.horizon_days + 1 days before the run)
    windows: dict[dt.date, dict[str, Any]] = {}
    for m in metrics:
        end = m.get("window_end") or m["run_date"]
        if m["run_date"] == latest and (end == latest or last is None or end > last):
            windows.setdefault(end, {})[m["metric"]] = m.get("value")
    ready = [end for end, at in sorted(windows.items(), reverse=True)
             if (finite_or_none(at.get(LABELLED_ROWS)) or 0) >= rule.min_labels
             and finite_or_none(at.get(rule.metric)) is not None]
    end = ready[0] if ready else latest
    at = windows.get(end, {})
    value, labels = finite_or_none(at.get(rule.metric)), finite_or_none(at.get(LABELLED_ROWS))
    start = next((m.get("window_start") for m in metrics
                  if m["run_date"] == latest and (m.get("window_end") or m["run_date"]) == end
                  and m.get("window_start") is not None), None)
    seen = {"run_date": latest.isoformat(), "window_end": end.isoformat(), "metric": rule.metric, "value": value,
            "labelled_rows": labels, **({"window_start": start.isoformat()} if start is not None else {})}
    if labels is None or labels < rule.min_labels:
        detail = (f"{rule.metric} of window {latest}: expected at least retrain.performance.min_labels="
                  f"{rule.min_labels} matured labels, found {0 if labels is None else int(labels)}"
                  + (f" (nor in the {len(windows) - 1} earlier window(s) recomputed that day)"
                     if len(windows) > 1 else ""))
        return RuleResult("performance", INSUFFICIENT, value, bound, detail), seen
    if value is None:
        detail = f"{rule.metric} of window {latest}: expected a value, found none"
        return RuleResult("performance", INSUFFICIENT, None, bound, detail), seen
    breached = (rule.min is not None and value < rule.min) or (rule.max is not None and value > rule.max)
    where = f"window {latest}" if end == latest else f"window ending {end} (labels matured by {latest})"
    detail = (f"{rule.metric}={value:.6g} on {where} ({int(labels)} labels); expected {bound}"
              + (" — outside the bound" if breached else ""))
    return RuleResult("performance", TRIGGERED if breached else OK, value, bound, detail), seen



