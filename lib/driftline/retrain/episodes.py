"""Drift episodes of the retrain policy (pure: no Spark, no clock, no I/O).

With ``retrain.wait_for_labels.enabled`` and a labels source, a label-free trigger (``drift``,
``drift_score``, ``estimated_performance``) does not retrain at once: it opens an **episode** with an
**onset** (the first window of the run of windows that triggered) and **arms** the retrain, which
**fires** once labels of the new regime matured — at least ``min_new_labels`` labels with an as-of
date on/after the onset, on at least ``min_new_days`` such as-of dates — or, without them,
``max_wait_days`` after the onset. A ``performance`` (realized, on matured labels) or ``quality``
trigger fires without waiting (inside an open episode as part of it, else in a new episode).

An episode is reconstructed from the **earlier** ``retrain_decisions`` rows only (never from the row
of D itself, so a rerun of D decides the same): it is open on D when the latest row dated before D
says ``episode_status = open``. It ends when a retrain fired in it was promoted (the job writes
``ended`` on that row), or when no rule triggers any more — before its first fire, or after a losing
fire once the rules have seen their ``n`` windows monitored since it. After a losing fire the episode
stays open and the next fire waits for ``cooldown_days`` and for ``min_new_labels`` more post-onset
labels than the losing fire had (so it does not retrain on the same data); ``max_wait_days`` only
forces the first fire. ``max_per_period`` caps every fire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.retrain.spec import RetrainConfig

MONITOR_ONLY = "monitor_only"   # train_status of a decision that fired for a monitor-only model (nothing trained)


def acted(decision: Mapping[str, Any]) -> bool:
    """Whether a past decision row counts as a retrain: it trained a version, or it fired for a monitor-only model
    (the retrain happens where the model lives; cooldown, cap and episodes count it all the same)."""
    return bool(decision.get("trained_version")) or decision.get("train_status") == MONITOR_ONLY

OPEN, ENDED = "open", "ended"
ARMED = "armed"
ARMING_RULES = ("drift", "drift_score", "estimated_performance")     # label-free: arm, wait for labels
IMMEDIATE_RULES = ("performance", "quality")                           # fire without waiting for labels
# wait_reason codes (comma-separated when several conditions are unmet)
LABELS, LABEL_DAYS, COOLDOWN_WAIT, CAP_WAIT, MAX_WAIT = "labels", "label_days", "cooldown", "cap", "max_wait"


@dataclass(frozen=True)
class Episode:
    """A drift episode as the decision of one date sees it (the episode columns of ``retrain_decisions``)."""

    id: str
    onset: dt.date
    armed: dt.date
    status: str = OPEN
    labels_available: int | None = None
    labels_needed: int | None = None
    label_days_available: int | None = None
    label_days_needed: int | None = None
    waited_days: int | None = None
    wait_reason: str | None = None
    fires: int = 0                          # retrains fired in it before D
    last_fire: dt.date | None = None
    labels_at_last_fire: int | None = None

    def summary(self) -> dict[str, Any]:
        """For ``inputs_json``: what the episode was before D."""
        return {"id": self.id, "onset": self.onset.isoformat(), "armed": self.armed.isoformat(),
                "fires_before": self.fires, "last_fire": self.last_fire.isoformat() if self.last_fire else None,
                "labels_at_last_fire": self.labels_at_last_fire}


@dataclass(frozen=True)
class Verdict:
    """The episode part of a decision: status, the clauses after the triggered rules', the episode."""

    fired: bool
    status: str
    reasons: tuple[str, ...]
    episode: Episode | None


def promoted(row: Mapping[str, Any]) -> bool:
    """A decision row whose retrain became the champion (the gate passed and the alias moved)."""
    trained = row.get("trained_version")
    return bool(trained) and (row.get("gate_passed") is True or row.get("champion_version") == trained)


def open_episode(decisions: Sequence[Mapping[str, Any]], date: dt.date) -> Episode | None:
    """The episode open before ``date``: the latest decision row dated before it says ``open``.

    Its fires are the rows of the episode (dated before ``date``) that trained a version (or fired for a monitor-only
    model: `acted`); one of them
    promoted ends it (also when the row itself still says open).
    """
    earlier = [d for d in decisions if d["decision_date"] < date]
    if not earlier:
        return None
    prev = max(earlier, key=lambda d: d["decision_date"])
    if prev.get("episode_status") != OPEN or not prev.get("episode_id") or prev.get("onset_date") is None:
        return None
    eid = prev["episode_id"]
    rows = sorted((d for d in earlier if d.get("episode_id") == eid), key=lambda d: d["decision_date"])
    fired = [d for d in rows if acted(d)]
    if any(promoted(d) for d in fired):
        return None
    armed = prev.get("armed_date") or rows[0]["decision_date"]
    last = fired[-1] if fired else None
    return Episode(eid, prev["onset_date"], armed, fires=len(fired),
                   last_fire=last["decision_date"] if last else None,
                   labels_at_last_fire=int(last.get("labels_available") or 0) if last else None)


def label_supply(labels: Mapping[dt.date, int], onset: dt.date, date: dt.date) -> tuple[int, int]:
    """(matured labels, as-of dates with at least one) over as-of dates in [onset, date)."""
    counts = [int(n) for day, n in labels.items() if onset <= day < date and n and n > 0]
    return sum(counts), len(counts)


def decide(policy: RetrainConfig, date: dt.date, triggered: Sequence[str], onset: dt.date | None,
           decisions: Sequence[Mapping[str, Any]], labels: Mapping[dt.date, int], retrains_in_period: int,
           windows_since_retrain: int, depth: int) -> Verdict:
    """The decision of ``date`` in episode mode, given the triggered rules and the onset of their windows.

    ``windows_since_retrain``: windows monitored after the last retrain (the history the rules saw);
    ``depth``: the largest ``n`` of the enabled rules.
    """
    wait, cap = policy.wait_for_labels, policy.max_per_period
    past = open_episode(decisions, date)
    if not triggered:
        if past is None:
            return Verdict(False, "no_trigger", ("no rule triggered",), None)
        ended = past.fires == 0 or windows_since_retrain >= depth
        episode = _with_supply(past, date, labels, _needed(policy, past), wait.min_new_days,
                               status=ENDED if ended else OPEN)
        if ended:
            why = ("before a retrain fired" if past.fires == 0 else
                   f"in the {windows_since_retrain} windows monitored since the retrain on {past.last_fire}")
            return Verdict(False, "no_trigger", ("no rule triggered", f"episode {past.id} (onset {past.onset}) "
                                                 f"ended: no rule triggers any more {why} (drift cleared)"), episode)
        return Verdict(False, "no_trigger", (
            "no rule triggered", f"episode {past.id} (onset {past.onset}) stays open: {windows_since_retrain} of "
            f"{depth} windows monitored since its retrain on {past.last_fire}"), episode)

    if past is None:
        if onset is None:   # a trigger always has windows; defensive
            onset = date
        past = Episode(f"ep-{date.isoformat()}", onset, date)
    first = past.fires == 0
    need_labels = _needed(policy, past)
    episode = _with_supply(past, date, labels, need_labels, wait.min_new_days)
    have, days = episode.labels_available or 0, episode.label_days_available or 0
    immediate = sorted(set(triggered) & set(IMMEDIATE_RULES))
    where = f"episode {past.id} (onset {past.onset}, armed {past.armed})"

    unmet: list[str] = []
    notes: list[str] = []
    supply = (f"{have} of {need_labels} labels with an as-of date on/after {past.onset} matured, on {days} of "
              f"{wait.min_new_days} as-of dates")
    if first and immediate:
        notes.append(f"{where}: {', '.join(immediate)} fires without waiting for labels ({supply})")
    else:
        short = [code for code, bad in ((LABELS, have < need_labels), (LABEL_DAYS, days < wait.min_new_days)) if bad]
        deadline = past.onset + dt.timedelta(days=wait.max_wait_days)
        if short and first and date >= deadline:
            notes.append(f"{where}: fired at max wait, {(date - past.onset).days} days after the onset "
                         f"(retrain.wait_for_labels.max_wait_days={wait.max_wait_days}), with only {supply}")
            episode = _replace(episode, wait_reason=MAX_WAIT)
        elif short:
            unmet += short
            expected = (f"retrain.wait_for_labels.min_new_labels={wait.min_new_labels} and "
                        f"min_new_days={wait.min_new_days}" if first else
                        f"the {past.labels_at_last_fire} of the retrain on {past.last_fire} plus "
                        f"retrain.wait_for_labels.min_new_labels={wait.min_new_labels}")
            by = (f"; fires on {deadline} at the latest (retrain.wait_for_labels.max_wait_days={wait.max_wait_days})"
                  if first else "")
            notes.append(f"armed: {where}: {supply}; expected {expected}{by}")
        else:
            notes.append(f"{where}: {supply}")
    if not first and past.last_fire is not None and (date - past.last_fire).days < policy.cooldown_days:
        unmet.append(COOLDOWN_WAIT)
        notes.append(f"suppressed: last retrain of episode {past.id} on {past.last_fire}, "
                     f"{(date - past.last_fire).days} days ago; expected at least "
                     f"retrain.cooldown_days={policy.cooldown_days}")
    if retrains_in_period >= cap.count:
        unmet.append(CAP_WAIT)
        notes.append(f"suppressed: {retrains_in_period} retrains in the last {cap.period_days} days; expected "
                     f"fewer than retrain.max_per_period.count={cap.count}")
    if unmet:
        status = ARMED if {LABELS, LABEL_DAYS} & set(unmet) else ("cooldown" if COOLDOWN_WAIT in unmet else "cap")
        return Verdict(False, status, tuple(notes), _replace(episode, wait_reason=",".join(unmet)))
    return Verdict(True, "fired", tuple(notes), episode)


def _needed(policy: RetrainConfig, past: Episode) -> int:
    """Post-onset labels the next fire needs: ``min_new_labels``, after a losing fire that many more than it had."""
    more = policy.wait_for_labels.min_new_labels
    return more if past.fires == 0 else (past.labels_at_last_fire or 0) + more


def _with_supply(past: Episode, date: dt.date, labels: Mapping[dt.date, int], need_labels: int, need_days: int,
                 status: str = OPEN) -> Episode:
    have, days = label_supply(labels, past.onset, date)
    return _replace(past, status=status, labels_available=have, labels_needed=need_labels,
                    label_days_available=days, label_days_needed=need_days, waited_days=(date - past.armed).days)


def _replace(episode: Episode, **changes: Any) -> Episode:
    import dataclasses

    return dataclasses.replace(episode, **changes)
