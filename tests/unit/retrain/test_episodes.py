"""Truth table of drift episodes: arm, wait for post-onset labels, fire, max wait, cooldown between the fires of one
episode, end on promotion or when drift clears; the estimated-performance rule; a model without labels."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from driftline.retrain.episodes import label_supply, open_episode
from driftline.retrain.policy import Decision, evaluate
from driftline.retrain.spec import RetrainConfig
from tests.unit.retrain.test_policy import D, day, runs

LABELS = {"enabled": True, "min_new_labels": 100, "min_new_days": 3, "max_wait_days": 20}


def policy(**kw: Any) -> RetrainConfig:
    base: dict[str, Any] = {"drift": {"k": 2, "n": 3}, "cooldown_days": 5,
                            "max_per_period": {"count": 2, "period_days": 30}, "wait_for_labels": LABELS}
    for key, value in kw.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return RetrainConfig.model_validate(base)


def labels(per_day: int, *days_before: int) -> dict[dt.date, int]:
    """``per_day`` matured labels for each as-of date ``days_before`` days before D."""
    return {day(n): per_day for n in days_before}


def row(d: Decision, trained: str | None = None, promoted: bool = False) -> dict[str, Any]:
    """The ``retrain_decisions`` row the job writes for ``d`` (after training when ``trained``)."""
    e = d.episode
    return {"decision_date": d.date, "status": d.status, "fired": d.fired, "trained_version": trained,
            "gate_passed": promoted if trained else None, "champion_version": trained if promoted else "1",
            "episode_id": e.id if e else None, "onset_date": e.onset if e else None, "armed_date": e.armed if e else None,
            "episode_status": ("ended" if promoted else e.status) if e else None,
            "labels_available": e.labels_available if e else None}


def replay(p: RetrainConfig, history: list[dict], lab: dict[dt.date, int], start: int,
           trained: dict[int, tuple[str, bool]] | None = None) -> tuple[Decision, list[dict]]:
    """Decide every day from ``start`` days before D up to D as the job does (each day sees the earlier rows; labels
    as matured by that day); ``trained[n]``: the version trained and whether it was promoted when day(n) fired."""
    rows: list[dict] = []
    decision = None
    for n in range(start, -1, -1):
        today = day(n)
        seen = {k: v for k, v in lab.items() if k < today}
        decision = evaluate(p, today, history, decisions=rows, labels=seen)
        version, promoted = (trained or {}).get(n, (None, False))
        rows.append(row(decision, version if decision.fired else None, promoted and decision.fired))
    assert decision is not None
    return decision, rows


# --------------------------------------------------------------------------- arming and firing


def test_drift_arms_an_episode_while_post_onset_labels_are_missing() -> None:
    d = evaluate(policy(), D, runs(False, True, True), labels=labels(500, 5, 4, 3))   # labels before the onset only
    assert (d.fired, d.status, d.onset) == (False, "armed", day(1))
    e = d.episode
    assert e is not None
    assert (e.id, e.armed, e.status, e.labels_available, e.labels_needed, e.label_days_available,
            e.label_days_needed, e.waited_days, e.wait_reason) == (
        "ep-2026-03-10", D, "open", 0, 100, 0, 3, 0, "labels,label_days")
    assert d.reasons == (
        "drift: dataset drift in 2 of the last 3 windows (2026-03-09, 2026-03-10); expected at least 2 of 3 to fire",
        "armed: episode ep-2026-03-10 (onset 2026-03-09, armed 2026-03-10): 0 of 100 labels with an as-of date "
        "on/after 2026-03-09 matured, on 0 of 3 as-of dates; expected retrain.wait_for_labels.min_new_labels=100 "
        "and min_new_days=3; fires on 2026-03-29 at the latest (retrain.wait_for_labels.max_wait_days=20)")


@pytest.mark.parametrize(("lab", "status", "reason", "available", "days"), [
    (labels(500, 6), "armed", "label_days", 500, 1),           # enough labels, on one post-onset day only
    (labels(30, 6, 5, 4), "armed", "labels", 90, 3),           # three days, too few labels
    (labels(10, 6, 5), "armed", "labels,label_days", 20, 2),
    (labels(34, 6, 5, 4), "fired", None, 102, 3),
    ({**labels(1000, 9, 8, 7), **labels(40, 6, 5, 4)}, "fired", None, 120, 3),   # pre-onset labels do not count
])
def test_an_armed_episode_fires_once_enough_post_onset_labels_on_enough_days_matured(
        lab, status, reason, available, days) -> None:
    history = runs(False, False, False, True, True, True, True, True, True, True)   # drift from day(6) on
    armed = evaluate(policy(), day(6) + dt.timedelta(days=1), history, labels={})
    assert (armed.status, armed.onset) == ("armed", day(6))
    d = evaluate(policy(), D, history, decisions=[row(armed)], labels=lab)
    assert (d.status, d.fired, d.onset) == (status, status == "fired", day(6))
    e = d.episode
    assert e is not None
    assert (e.id, e.wait_reason, e.labels_available, e.label_days_available, e.waited_days) == (
        "ep-2026-03-05", reason, available, days, 5)


def test_day_by_day_armed_until_max_wait_then_cooldown_between_fires() -> None:
    history = runs(*([False] * 5), *([True] * 25))                  # drift from day(24) on
    d, rows = replay(policy(), history, labels(4, *range(25)), start=23)
    # armed from day(23) (onset day(24)); 4 labels a day never reach 100 before the max wait, onset + 20 = day(4)
    assert [r["status"] for r in rows] == ["armed"] * 19 + ["fired"] * 5
    fired = rows[19]
    assert (fired["decision_date"], fired["onset_date"], fired["episode_id"]) == (day(4), day(24), "ep-2026-02-15")
    assert {r["episode_id"] for r in rows} == {"ep-2026-02-15"} and {r["episode_status"] for r in rows} == {"open"}
    # a fire that trained no version (a failed training) is no retrain: the next day fires again (still the first
    # fire of the episode, past the max wait); one that trained and lost waits for the cooldown and new labels
    d, rows = replay(policy(), history, labels(4, *range(25)), start=23, trained={4: ("2", False)})
    assert [r["status"] for r in rows][19:] == ["fired", "no_trigger", "armed", "armed", "armed"]   # 1 window < k
    assert (d.episode.wait_reason, d.episode.labels_needed, d.episode.fires) == ("labels,cooldown", 180, 1)


def test_max_wait_fire_reason() -> None:
    history = runs(*([True] * 21))                                   # onset day(20)
    prior = evaluate(policy(), day(1), history, labels={})
    d = evaluate(policy(), D, history, decisions=[row(prior)], labels=labels(10, 3, 2))
    assert (d.status, d.fired, d.onset, d.episode.wait_reason) == ("fired", True, day(20), "max_wait")
    assert d.reasons[-1] == ("episode ep-2026-03-09 (onset 2026-02-18, armed 2026-03-09): fired at max wait, 20 days "
                             "after the onset (retrain.wait_for_labels.max_wait_days=20), with only 20 of 100 labels "
                             "with an as-of date on/after 2026-02-18 matured, on 2 of 3 as-of dates")


# --------------------------------------------------------------------------- cooldown, cap and the end of an episode


def lost_fire(fired_days_before: int, labels_then: int) -> tuple[list[dict], list[dict]]:
    """Drift from day(21) on; an episode armed on day(20) (onset day(21)) fired and lost on day(n)."""
    history = runs(*([False] * 9), *([True] * 22))
    armed = evaluate(policy(), day(20), history, labels={})
    fire_day = day(fired_days_before)
    fired = {**row(armed), "decision_date": fire_day, "status": "fired", "fired": True, "trained_version": "2",
             "gate_passed": False, "champion_version": "1", "labels_available": labels_then}
    return history, [row(armed), fired]


@pytest.mark.parametrize(("fired_before", "post_onset", "status", "reason"), [
    (3, 300, "cooldown", "cooldown"),      # enough new labels, within the cooldown of the episode's last fire
    (3, 200, "armed", "labels,cooldown"),  # neither
    (5, 300, "fired", None),               # exactly cooldown_days later, 300 >= 150 + 100
    (5, 249, "armed", "labels"),           # the losing fire's 150 plus min_new_labels=100 needed
])
def test_after_a_losing_fire_the_next_waits_for_the_cooldown_and_new_labels(fired_before, post_onset, status,
                                                                            reason) -> None:
    history, rows = lost_fire(fired_before, 150)
    lab = {day(21): post_onset - 20, day(19): 10, day(18): 10}
    d = evaluate(policy(), D, history, decisions=rows, labels=lab)
    e = d.episode
    assert e is not None
    assert (d.status, e.id, e.status, e.wait_reason, e.labels_needed, e.labels_available) == (
        status, "ep-2026-02-18", "open", reason, 250, post_onset)
    assert (e.fires, e.last_fire, e.labels_at_last_fire) == (1, day(fired_before), 150)
    if status == "cooldown":
        assert d.reasons[-1] == ("suppressed: last retrain of episode ep-2026-02-18 on 2026-03-07, 3 days ago; "
                                 "expected at least retrain.cooldown_days=5")


def test_arming_is_not_subject_to_the_cooldown_of_an_earlier_episode() -> None:
    # an episode's retrain was promoted 2 days ago (the job wrote ended); drift again after it arms a new episode
    history = runs(True, True, True, True, True)
    armed = evaluate(policy(), day(4), history, labels={})
    promoted = {**row(armed), "decision_date": day(2), "status": "fired", "fired": True, "trained_version": "2",
                "gate_passed": True, "champion_version": "2", "episode_status": "ended"}
    d = evaluate(policy(), D, history, decisions=[row(armed), promoted], labels={})
    assert (d.status, d.episode.id, d.onset, d.episode.wait_reason) == ("armed", "ep-2026-03-10", day(1),
                                                                        "labels,label_days")
    # labels there (synthetic): the new episode's first fire does not wait for the cooldown either
    d = evaluate(policy(), D, history, decisions=[row(armed), promoted], labels=labels(50, 1, 0))
    assert d.status == "armed" and d.episode.wait_reason == "labels,label_days"   # as-of dates before D only
    assert label_supply(labels(50, 2, 1, 0), day(1), D) == (50, 1)
    quick = policy(wait_for_labels={"min_new_labels": 50, "min_new_days": 1})
    d = evaluate(quick, D, history, decisions=[row(armed), promoted], labels=labels(50, 1) | labels(60, 2))
    assert (d.status, d.episode.labels_available, d.last_retrain) == ("fired", 50, day(2))   # 2 < cooldown_days


def test_a_promotion_ends_the_episode_even_when_the_row_says_open() -> None:
    history, rows = lost_fire(3, 150)
    rows[-1] = {**rows[-1], "gate_passed": True, "champion_version": "2"}          # episode_status still open
    assert open_episode(rows, D) is None
    d = evaluate(policy(), D, history, decisions=rows, labels={})
    assert d.episode is not None and d.episode.id == "ep-2026-03-10" and d.onset == day(2)


def test_an_episode_ends_when_drift_clears_before_it_fired() -> None:
    history = runs(False, False, True, True, False, False, False, True, True)  # drift day(6), day(5), day(1), D
    d, rows = replay(policy(), history, {}, start=5)
    assert [(r["status"], r["episode_id"], r["episode_status"]) for r in rows] == [
        ("armed", "ep-2026-03-05", "open"), ("armed", "ep-2026-03-05", "open"),   # day(4): 2 of the last 3 still
        ("no_trigger", "ep-2026-03-05", "ended"), ("no_trigger", None, None), ("no_trigger", None, None),
        ("armed", "ep-2026-03-10", "open")]                                      # the next drift: a new episode
    assert rows[2]["onset_date"] == day(6) and d.onset == day(1)
    ended = evaluate(policy(), day(3), history, decisions=rows[:2], labels={})
    assert ended.reasons == ("no rule triggered", "episode ep-2026-03-05 (onset 2026-03-04) ended: no rule triggers "
                                                  "any more before a retrain fired (drift cleared)")


def test_a_losing_fire_keeps_the_episode_open_until_the_rules_saw_n_clean_windows() -> None:
    history, rows = lost_fire(3, 150)
    clean = [{**r, "dataset_drift": r["dataset_drift"] and r["run_date"] <= day(3)} for r in history]
    for n in (2, 1, 0):
        d = evaluate(policy(), day(n), clean, decisions=rows, labels={})
        assert d.status == "no_trigger"
        rows = [*rows, row(d)]
    assert [r["episode_status"] for r in rows[2:]] == ["open", "open", "ended"]
    assert d.reasons == ("no rule triggered", "episode ep-2026-02-18 (onset 2026-02-17) ended: no rule triggers any "
                                              "more in the 3 windows monitored since the retrain on 2026-03-07 "
                                              "(drift cleared)")
    # still drifting after the losing fire: it stays open (and waits for the cooldown and new labels)
    d = evaluate(policy(), day(1), history, decisions=rows[:2], labels={})
    assert (d.status, d.episode.id, d.episode.status, d.episode.wait_reason) == (
        "armed", "ep-2026-02-18", "open", "labels,label_days,cooldown")


def test_the_cap_applies_to_fires() -> None:
    history, rows = lost_fire(10, 150)
    rows = [*rows, {"decision_date": day(25), "trained_version": "9"}]              # another retrain in the period
    d = evaluate(policy(), D, history, decisions=rows, labels=labels(100, 19, 18, 17))
    assert (d.status, d.episode.wait_reason) == ("cap", "cap")
    assert d.reasons[-1] == ("suppressed: 2 retrains in the last 30 days; expected fewer than "
                             "retrain.max_per_period.count=2")


# --------------------------------------------------------------------------- onset, reruns, immediate triggers


@pytest.mark.parametrize(("drift", "onset"), [
    ((False, True, True, True), 2),
    ((True, True, True, True, True), 4),           # the run of drifted windows reaches back beyond n
    ((True, False, True, False, True), 2),          # 2 of 3: the first hit in the last 3; day(3) is clean
    ((False, True, False, True), 2),
])
def test_onset_is_the_first_drifted_window_of_the_run_that_triggered(drift, onset) -> None:
    d = evaluate(policy(), D, runs(*drift), labels={})
    assert (d.status, d.onset) == ("armed", day(onset))


def test_a_rerun_decides_the_same_from_the_same_rows() -> None:
    history, rows = lost_fire(5, 150)
    lab = {day(21): 300, day(19): 10, day(18): 10}
    first = evaluate(policy(), D, history, decisions=rows, labels=lab)
    # the row the first run wrote for D (and its training outcome) is not an input of the rerun
    again = evaluate(policy(), D, history, decisions=[*rows, {**row(first, "3", True)}], labels=lab)
    assert first == again and first.status == "fired"
    assert json.loads(first.inputs_json())["episode"] == {"id": "ep-2026-02-18", "onset": "2026-02-17",
                                                          "armed": "2026-02-18", "fires_before": 1,
                                                          "last_fire": "2026-03-05", "labels_at_last_fire": 150}


def perf(value: float, labels_: float, start: dt.date, end: dt.date) -> list[dict]:
    return [{"run_date": D, "window_start": start, "window_end": end, "metric": "auc", "value": value},
            {"run_date": D, "window_start": start, "window_end": end, "metric": "labelled_rows", "value": labels_}]


def test_a_realized_performance_trigger_fires_at_once_with_the_judged_window_as_onset() -> None:
    p = policy(drift={"enabled": False}, performance={"enabled": True, "min": 0.7, "min_labels": 10})
    d = evaluate(p, D, runs(False, False), perf(0.6, 50, day(20), day(16)), labels=labels(5, 17, 16))
    assert (d.status, d.fired, d.onset, d.episode.id, d.episode.wait_reason) == (
        "fired", True, day(20), "ep-2026-03-10", None)
    assert d.reasons[-1] == ("episode ep-2026-03-10 (onset 2026-02-18, armed 2026-03-10): performance fires without "
                             "waiting for labels (10 of 100 labels with an as-of date on/after 2026-02-18 matured, "
                             "on 2 of 3 as-of dates)")


def test_a_realized_performance_trigger_inside_an_armed_episode_fires_as_part_of_it() -> None:
    p = policy(performance={"enabled": True, "min": 0.7, "min_labels": 10})
    history = runs(False, True, True, True)
    armed = evaluate(p, day(1), history, labels={})
    assert armed.status == "armed"
    d = evaluate(p, D, history, perf(0.6, 50, day(20), day(16)), decisions=[row(armed)], labels={})
    assert (d.status, d.episode.id, d.onset) == ("fired", "ep-2026-03-09", day(2))


def test_a_quality_trigger_fires_at_once_from_its_first_window() -> None:
    p = policy(drift={"enabled": False}, quality={"enabled": True, "k": 1, "n": 2})
    d = evaluate(p, D, runs(False, False, False, quality=("ok", "warn", "warn")), labels={})
    assert (d.status, d.onset) == ("fired", day(1))


def test_a_model_without_labels_source_fires_as_before() -> None:
    d = evaluate(policy(), D, runs(False, True, True), labels=None)
    assert (d.status, d.fired, d.episode, d.onset) == ("fired", True, None, None)
    # and with the wait off, labels are not looked at
    off = evaluate(policy(wait_for_labels={"enabled": False}), D, runs(False, True, True), labels={})
    assert (off.status, off.episode) == ("fired", None)
    assert off.reasons == d.reasons


def test_a_disabled_policy_records_no_episode() -> None:
    d = evaluate(policy(enabled=False), D, runs(True, True, True), labels={})
    assert (d.status, d.episode) == ("disabled", None)


# --------------------------------------------------------------------------- estimated performance


def estimates(*values: float | None, metric: str = "estimated_auc") -> list[dict]:
    """``values[i]`` for the window ``len - 1 - i`` days before D (the run's own window)."""
    return [{"run_date": day(len(values) - 1 - i), "window_end": day(len(values) - 1 - i), "metric": metric,
             "value": v} for i, v in enumerate(values)]


@pytest.mark.parametrize(("values", "k", "n", "status", "hits"), [
    ((0.8, 0.8, 0.8), 1, 1, "ok", 0),
    ((0.8, 0.8, 0.6), 1, 1, "triggered", 1),
    ((0.6, 0.8, 0.7), 1, 1, "ok", 0),                      # on the bound: not outside
    ((0.6, 0.6, 0.8), 2, 3, "triggered", 2),
    ((0.6, 0.8, 0.8), 2, 3, "ok", 1),
    ((0.6, None, 0.6), 2, 3, "triggered", 2),              # a window without an estimate is no hit
    ((0.6, 0.6, 0.8, 0.8), 2, 2, "ok", 0),                 # too old
    ((None, None), 1, 2, "insufficient_data", None),
    ((float("nan"),), 1, 1, "insufficient_data", None),
])
def test_estimated_performance_k_of_n(values, k, n, status, hits) -> None:
    p = policy(drift={"enabled": False}, wait_for_labels={"enabled": False},
               estimated_performance={"enabled": True, "min": 0.7, "k": k, "n": n})
    d = evaluate(p, D, runs(*([False] * len(values))), estimated=estimates(*values))
    rule = d.rule("estimated_performance")
    assert (rule.status, rule.value, d.fired) == (status, hits, status == "triggered")
    assert rule.threshold == f"outside [>= 0.7] in {k} of {n}"


def test_estimated_performance_arms_an_episode_and_reads_only_its_metric_and_own_window() -> None:
    p = policy(drift={"enabled": False}, estimated_performance={"enabled": True, "metric": "f1", "max": 0.9, "k": 2,
                                                                "n": 3})
    rows = [*estimates(0.5, 0.95, 0.97, metric="estimated_f1"), *estimates(0.99, 0.99, 0.99, metric="estimated_auc"),
            {"run_date": D, "window_end": day(5), "metric": "estimated_f1", "value": 0.1}]   # an earlier window
    d = evaluate(p, D, runs(False, False, False), estimated=rows, labels={})
    assert (d.status, d.onset) == ("armed", day(1))
    assert d.rule("estimated_performance").detail == (
        "estimated_f1 outside the bound (<= 0.9) in 2 of the last 3 windows (2026-03-08: 0.5, 2026-03-09: 0.95, "
        "2026-03-10: 0.97); expected at least 2 of 3 to fire")
    assert [w.estimated_performance for w in d.windows] == [0.97, 0.95, 0.5]
