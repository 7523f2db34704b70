"""Truth table of the retrain policy: K-of-N, performance bound with min labels, quality, cooldown, cap."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from driftline.retrain.policy import Window, drift_scores, evaluate
from driftline.retrain.spec import RetrainConfig

D = dt.date(2026, 3, 10)


def day(n: int) -> dt.date:
    """``n`` days before D (0 → D)."""
    return D - dt.timedelta(days=n)


def runs(*drift: bool, quality: tuple[str, ...] = ()) -> list[dict]:
    """Monitor runs ending at D, newest last: ``drift[i]`` for the window ``len - 1 - i`` days before D."""
    out = []
    for i, flag in enumerate(drift):
        q = quality[i] if quality else "ok"
        out.append({"run_date": day(len(drift) - 1 - i), "dataset_drift": flag, "drift_share": 0.5 if flag else 0.0,
                    "quality_status": q, "model_version": "1", "status": "alert" if flag else "ok"})
    return out


def policy(**kw) -> RetrainConfig:
    base = {"drift": {"k": 2, "n": 3}, "cooldown_days": 5, "max_per_period": {"count": 2, "period_days": 30}}
    for key, value in kw.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return RetrainConfig.model_validate(base)


def retrained(*days_before: int) -> list[dict]:
    return [{"decision_date": day(n), "trained_version": str(i + 2)} for i, n in enumerate(days_before)]


@pytest.mark.parametrize(("drift", "fired", "hits"), [
    ((False, False, False), False, 0),
    ((True, False, False), False, 1),
    ((False, False, True), False, 1),
    ((True, False, True), True, 2),
    ((False, True, True), True, 2),
    ((True, True, True), True, 3),
    ((True, True, False, False, False), False, 0),   # drift older than the last 3 windows does not count
    ((True,), False, 1),                              # fewer windows than k
])
def test_k_of_n_dataset_drift(drift, fired, hits) -> None:
    d = evaluate(policy(), D, runs(*drift))
    assert (d.fired, d.status) == (fired, "fired" if fired else "no_trigger")
    assert d.rule("drift").value == hits and d.rule("drift").threshold == ">= 2 of 3"
    assert [w.run_date for w in d.windows] == [day(i) for i in range(min(3, len(drift)))]


def test_fired_decision_exactly() -> None:
    d = evaluate(policy(), D, runs(False, True, True))
    assert d.fired and d.status == "fired"
    assert d.reasons == ("drift: dataset drift in 2 of the last 3 windows (2026-03-09, 2026-03-10); "
                         "expected at least 2 of 3 to fire",)
    assert d.windows == (Window(day(0), "1", True, 0.5, "ok"), Window(day(1), "1", True, 0.5, "ok"),
                         Window(day(2), "1", False, 0.0, "ok"))
    assert [(r.rule, r.status) for r in d.rules] == [("drift", "triggered"), ("drift_score", "disabled"),
                                                      ("performance", "disabled"),
                                                      ("estimated_performance", "disabled"), ("quality", "disabled")]
    inputs = json.loads(d.inputs_json())
    assert inputs["windows"][0] == {"run_date": "2026-03-10", "model_version": "1", "dataset_drift": True,
                                    "drift_share": 0.5, "quality_status": "ok", "drift_score": None,
                                    "estimated_performance": None}
    assert (inputs["last_retrain"], inputs["retrains_in_period"], inputs["episode"]) == (None, 0, None)
    assert [r["rule"] for r in json.loads(d.rules_json())] == ["drift", "drift_score", "performance",
                                                               "estimated_performance", "quality"]
    assert (d.episode, d.onset) == (None, None)


def test_rows_after_the_date_are_ignored() -> None:
    later = [{"run_date": D + dt.timedelta(days=1), "dataset_drift": True, "drift_share": 1.0,
              "quality_status": "ok", "model_version": "1"}]
    assert not evaluate(policy(), D, [*runs(False, False, True), *later]).fired


@pytest.mark.parametrize(("past", "fired", "status", "last", "count"), [
    ((), True, "fired", None, 0),
    ((6,), True, "fired", day(6), 1),      # windows after the retrain on day(6) still hold 2 drifts
    ((5,), True, "fired", day(5), 1),      # exactly cooldown_days ago: allowed
    ((4,), False, "cooldown", day(4), 1),
    ((0,), True, "fired", None, 0),        # the same date (a rerun) is not a past retrain
    ((29, 20), False, "cap", day(20), 2),  # two in 30 days: capped
    ((30, 20), True, "fired", day(20), 1),  # the older one left the period
])
def test_cooldown_and_cap(past, fired, status, last, count) -> None:
    d = evaluate(policy(), D, runs(True, True, True, True, True, True, True), decisions=retrained(*past))
    assert (d.fired, d.status, d.last_retrain, d.retrains_in_period) == (fired, status, last, count)
    if status == "cooldown":
        assert d.reasons[-1] == ("suppressed: last retrain on 2026-03-06, 4 days ago; expected at least "
                                 "retrain.cooldown_days=5")
    if status == "cap":
        assert d.reasons[-1] == ("suppressed: 2 retrains in the last 30 days; expected fewer than "
                                 "retrain.max_per_period.count=2")


def test_windows_before_the_last_retrain_do_not_count() -> None:
    # drift on day(4..2), retrain on day(2): only day(1), day(0) are after it, both clean
    d = evaluate(policy(cooldown_days=0), D, runs(True, True, True, False, False), decisions=retrained(2))
    assert (d.fired, d.status) == (False, "no_trigger")
    assert [w.run_date for w in d.windows] == [day(0), day(1)]


def test_decision_without_a_trained_version_is_not_a_retrain() -> None:
    past = [{"decision_date": day(1), "trained_version": None}]
    d = evaluate(policy(), D, runs(True, True, True), decisions=past)
    assert (d.fired, d.last_retrain) == (True, None)


def test_a_monitor_only_fire_counts_for_the_cooldown_and_the_cap_but_keeps_its_windows() -> None:
    """A fired decision of a monitor-only model (nothing trained) suppresses the next ones like a retrain, but the
    model in use did not change: the windows before it still count."""
    fire = [{"decision_date": day(2), "trained_version": None, "train_status": "monitor_only"}]
    drifting = runs(True, True, True, True, False)   # drift on day(4..1), none on D
    d = evaluate(policy(), D, drifting, decisions=fire)
    assert (d.status, d.last_retrain, d.retrains_in_period) == ("cooldown", day(2), 1)
    d = evaluate(policy(cooldown_days=0), D, drifting, decisions=fire)
    assert (d.status, [w.run_date for w in d.windows]) == ("fired", [day(0), day(1), day(2)])
    # with a trained version on the same day those windows would judge the previous model: not counted
    assert evaluate(policy(cooldown_days=0), D, drifting, decisions=retrained(2)).status == "no_trigger"
    capped = [{**fire[0], "decision_date": day(n)} for n in (20, 10)]
    assert evaluate(policy(cooldown_days=0), D, runs(True, True, True), decisions=capped).status == "cap"


def perf_rows(value: float | None, labels: int | None, when: dt.date = D) -> list[dict]:
    rows = [{"run_date": when, "metric": "auc", "value": value}]
    if labels is not None:
        rows.append({"run_date": when, "metric": "labelled_rows", "value": float(labels)})
    return rows


@pytest.mark.parametrize(("value", "labels", "status", "fired"), [
    (0.60, 150, "triggered", True),
    (0.70, 150, "ok", False),          # on the bound: not below it
    (0.75, 150, "ok", False),
    (0.60, 99, "insufficient_data", False),   # below min_labels: never fires
    (0.60, None, "insufficient_data", False),
    (None, 150, "insufficient_data", False),
    (float("nan"), 150, "insufficient_data", False),
])
def test_performance_bound_needs_min_labels(value, labels, status, fired) -> None:
    p = policy(drift={"enabled": False}, performance={"enabled": True, "metric": "auc", "min": 0.7, "min_labels": 100})
    d = evaluate(p, D, runs(False, False), perf_rows(value, labels))
    assert (d.rule("performance").status, d.fired) == (status, fired)
    assert d.rule("drift").status == "disabled"
    if status == "insufficient_data" and labels != 150:
        assert d.rule("performance").detail == (f"auc of window 2026-03-10: expected at least "
                                                f"retrain.performance.min_labels=100 matured labels, found "
                                                f"{labels or 0}")


def test_performance_uses_the_latest_window_only() -> None:
    p = policy(drift={"enabled": False}, performance={"enabled": True, "metric": "log_loss", "max": 0.5,
                                                      "min_labels": 10})
    old = [{"run_date": day(1), "metric": "log_loss", "value": 0.9}, {"run_date": day(1), "metric": "labelled_rows",
                                                                      "value": 50.0}]
    now = [{"run_date": D, "metric": "log_loss", "value": 0.4}, {"run_date": D, "metric": "labelled_rows",
                                                                 "value": 50.0}]
    d = evaluate(p, D, runs(False, False), [*old, *now])
    assert (d.fired, d.rule("performance").value, d.performance["run_date"]) == (False, 0.4, "2026-03-10")
    assert evaluate(p, day(1), runs(False, False), [*old, *now]).fired


def test_performance_takes_the_freshest_window_with_matured_labels() -> None:
    p = policy(drift={"enabled": False}, performance={"enabled": True, "metric": "auc", "min": 0.7,
                                                      "min_labels": 100})

    def window(end: dt.date, auc: float | None, labels: float) -> list[dict]:
        return [{"run_date": D, "window_end": end, "metric": "auc", "value": auc},
                {"run_date": D, "window_end": end, "metric": "labelled_rows", "value": labels}]

    history = runs(False, False, False, False, False, False, False, False, False)   # D-8 .. D
    own = window(D, None, 20.0)                   # the run's own window: labels not matured yet
    rows = [*own, *window(day(1), 0.65, 80.0), *window(day(2), 0.62, 400.0), *window(day(3), 0.9, 900.0)]
    d = evaluate(p, D, history, rows)
    assert (d.fired, d.rule("performance").status, d.rule("performance").value) == (True, "triggered", 0.62)
    assert d.rule("performance").detail == ("auc=0.62 on window ending 2026-03-08 (labels matured by 2026-03-10) "
                                            "(400 labels); expected >= 0.7 — outside the bound")
    assert d.performance["window_end"] == "2026-03-08"
    # nothing matured enough: insufficient, naming the run's own window and the earlier ones
    d = evaluate(p, D, history, [*own, *window(day(1), 0.65, 80.0)])
    assert d.rule("performance").status == "insufficient_data" and not d.fired
    assert d.rule("performance").detail.endswith("found 20 (nor in the 1 earlier window(s) recomputed that day)")
    # a window that ended before the last retrain does not count (history starts after it)
    d = evaluate(p, D, history, [*own, *window(day(6), 0.5, 900.0)], decisions=retrained(6))
    assert d.rule("performance").status == "insufficient_data"
    # one that ended after it does
    d = evaluate(p, D, history, [*own, *window(day(5), 0.5, 900.0)], decisions=retrained(6))
    assert (d.rule("performance").status, d.performance["window_end"]) == ("triggered", "2026-03-05")
    # without a retrain, a window that ended before monitoring began counts too: with a 14-day horizon the
    # first fully matured window ends 15 days before the first run
    d = evaluate(p, D, runs(False), [*own, *window(day(15), 0.5, 900.0)])
    assert (d.rule("performance").status, d.performance["window_end"]) == ("triggered", "2026-02-23")


def verdicts(*windows: dict[str, float | None]) -> list[dict]:
    """Feature drift verdict rows: ``windows[i]`` maps column → 1/0/None for the window ``len - 1 - i`` days before D."""
    return [{"run_date": day(len(windows) - 1 - i), "column": column, "value": value}
            for i, verdict in enumerate(windows) for column, value in verdict.items()]


def scored(**drift_score) -> RetrainConfig:
    """Only the drift-weighted score rule enabled."""
    return policy(drift={"enabled": False}, drift_score={"enabled": True, **drift_score})


@pytest.mark.parametrize(("verdict", "weights", "default", "score"), [
    ({"a": 1, "b": 0, "c": 0, "d": 0}, {}, 1.0, 0.25),                 # equal weights: the drifted share
    ({"a": 1, "b": 1, "c": 0, "d": 0}, {}, 1.0, 0.5),
    ({"a": 1, "b": 0, "c": 0, "d": 0}, {"a": 3.0}, 1.0, 0.5),           # (3·1) / (3 + 1 + 1 + 1)
    ({"a": 0, "b": 1, "c": 1, "d": 1}, {"a": 3.0}, 1.0, 0.5),
    ({"a": 1, "b": 1, "c": 0, "d": 0}, {"a": 2.0, "b": 2.0}, 0.0, 1.0),  # only the listed features count
    ({"a": 0, "b": 0, "c": 1, "d": 1}, {"a": 2.0, "b": 2.0}, 0.0, 0.0),
    ({"a": 1, "b": None, "c": 0, "d": float("nan")}, {}, 1.0, 0.5),    # insufficient verdicts left out of both sums
    ({"a": None, "b": None}, {}, 1.0, None),                           # nothing evaluated: no score
    ({"c": 1, "d": 1}, {"a": 2.0}, 0.0, None),                         # only zero-weight features evaluated
])
def test_drift_score_is_the_weighted_share_of_drifted_features(verdict, weights, default, score) -> None:
    p = scored(weights=weights, default_weight=default)
    assert drift_scores(p, verdicts(verdict)) == {D: score}


@pytest.mark.parametrize(("windows", "threshold", "k", "n", "status", "hits"), [
    (({"a": 0, "b": 0},), 0.5, 1, 1, "ok", 0),
    (({"a": 1, "b": 0},), 0.5, 1, 1, "triggered", 1),                          # on the threshold: fires (>=)
    (({"a": 1, "b": 0},), 0.6, 1, 1, "ok", 0),
    (({"a": 1, "b": 1}, {"a": 0, "b": 0}, {"a": 1, "b": 1}), 0.5, 2, 3, "triggered", 2),
    (({"a": 1, "b": 1}, {"a": 0, "b": 0}, {"a": 0, "b": 1}), 0.6, 2, 3, "ok", 1),
    (({"a": 1, "b": 1}, {"a": 1, "b": 1}, {"a": 0, "b": 0}, {"a": 0, "b": 0}), 0.5, 2, 2, "ok", 0),  # too old
    (({"a": None, "b": None}, {"a": None, "b": None}), 0.5, 1, 2, "insufficient_data", None),
    (({"a": 1, "b": 1}, {"a": None, "b": None}), 0.5, 1, 2, "triggered", 1),  # a window without a score is no hit
])
def test_drift_score_k_of_n(windows, threshold, k, n, status, hits) -> None:
    p = scored(threshold=threshold, k=k, n=n)
    d = evaluate(p, D, runs(*([False] * len(windows))), column_drift=verdicts(*windows))
    rule = d.rule("drift_score")
    assert (rule.status, rule.value, d.fired) == (status, hits, status == "triggered")
    assert rule.threshold == f">= {threshold:g} in {k} of {n}"
    assert d.rule("drift").status == "disabled"
    assert len(d.windows) == min(n, len(windows))


def test_drift_score_fired_decision_exactly() -> None:
    p = scored(threshold=0.5, k=2, n=3, weights={"x1": 4.0})
    # x1 (weight 4) drifts on day(1) and D; x2, plan (weight 1) drift on day(2) only
    d = evaluate(p, D, runs(False, False, False), column_drift=verdicts(
        {"x1": 0, "x2": 1, "plan": 1}, {"x1": 1, "x2": 0, "plan": 0}, {"x1": 1, "x2": 0, "plan": None}))
    assert (d.fired, d.status, [r.rule for r in d.rules if r.triggered]) == (True, "fired", ["drift_score"])
    assert d.reasons == ("drift_score: weighted drift score >= 0.5 in 2 of the last 3 windows (2026-03-08: 0.333, "
                         "2026-03-09: 0.667, 2026-03-10: 0.8); expected at least 2 of 3 to fire",)
    assert [w.drift_score for w in d.windows] == [pytest.approx(0.8), pytest.approx(4 / 6), pytest.approx(2 / 6)]
    assert json.loads(d.inputs_json())["windows"][0]["drift_score"] == pytest.approx(0.8)


def test_drift_score_respects_the_last_retrain_and_cooldown() -> None:
    p = scored(threshold=0.5, k=1, n=3)
    drifted = verdicts(*([{"a": 1, "b": 1}] * 7))
    assert evaluate(p, D, runs(*([False] * 7)), decisions=retrained(6), column_drift=drifted).status == "fired"
    assert evaluate(p, D, runs(*([False] * 7)), decisions=retrained(2), column_drift=drifted).status == "cooldown"
    # after a retrain on day(1) only D counts, and D has no drift
    clean = verdicts(*([{"a": 1, "b": 1}] * 6), {"a": 0, "b": 0})
    d = evaluate(policy(drift={"enabled": False}, drift_score={"enabled": True}, cooldown_days=0), D,
                 runs(*([False] * 7)), decisions=retrained(1), column_drift=clean)
    assert (d.status, [w.run_date for w in d.windows]) == ("no_trigger", [D])


@pytest.mark.parametrize(("quality", "fired"), [
    (("ok", "ok", "ok"), False),
    (("warn", "ok", "ok"), False),
    (("ok", "warn", "warn"), True),
    (("ok", "insufficient_data", "warn"), False),
])
def test_quality_failures_k_of_n(quality, fired) -> None:
    p = policy(drift={"enabled": False}, quality={"enabled": True, "k": 2, "n": 3})
    assert evaluate(p, D, runs(False, False, False, quality=quality)).fired is fired


def test_disabled_policy_never_fires() -> None:
    d = evaluate(policy(enabled=False), D, runs(True, True, True))
    assert (d.fired, d.status, d.reasons) == (False, "disabled", ("retrain.enabled is false",))
    assert d.rule("drift").status == "triggered"          # still recorded


def test_no_history_is_no_trigger() -> None:
    d = evaluate(policy(), D, [])
    assert (d.fired, d.status, d.windows) == (False, "no_trigger", ())


@pytest.mark.parametrize(("data", "message"), [
    ({"drift": {"k": 4, "n": 3}}, "expected k <= n (k of the last n windows), found k=4 > n=3"),
    ({"performance": {"enabled": True}}, "expected a bound (min or max) for an enabled performance rule"),
    ({"performance": {"min": 0.8, "max": 0.7}}, "expected min <= max, found min=0.8 > max=0.7"),
    ({"cooldown": 3}, "Extra inputs are not permitted"),
    ({"drift_score": {"k": 3, "n": 2}}, "expected k <= n (k of the last n windows), found k=3 > n=2"),
    ({"drift_score": {"weights": {"x1": -1}}}, "Input should be greater than or equal to 0"),
    ({"drift_score": {"default_weight": 0}}, "expected a positive weight (weights or default_weight), found all "
                                             "weights 0"),
    ({"drift_score": {"threshold": 0}}, "Input should be greater than 0"),
    ({"drift_score": {"weights": {"bad name": 1}}}, "String should match pattern"),
    ({"estimated_performance": {"enabled": True}}, "expected a bound (min or max) for an enabled "
                                                   "estimated_performance rule, found neither"),
    ({"estimated_performance": {"min": 0.9, "max": 0.8}}, "expected min <= max, found min=0.9 > max=0.8"),
    ({"estimated_performance": {"k": 2, "n": 1}}, "expected k <= n (k of the last n windows), found k=2 > n=1"),
    ({"estimated_performance": {"metric": "log_loss"}}, "Input should be 'auc', 'precision', 'recall', 'f1', "
                                                        "'accuracy' or 'brier'"),
    ({"wait_for_labels": {"min_new_labels": 0}}, "Input should be greater than or equal to 1"),
    ({"wait_for_labels": {"min_new_days": 5, "max_wait_days": 4}}, "expected max_wait_days >= min_new_days, found "
                                                                   "max_wait_days=4 < min_new_days=5"),
    ({"wait_for_labels": {"max_wait": 4}}, "Extra inputs are not permitted"),
])
def test_config_is_validated(data, message) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetrainConfig.model_validate(data)


def test_drift_score_weighs_features_by_the_champions_importance_unless_weighted_explicitly() -> None:
    verdict = verdicts({"a": 1, "b": 0, "c": 0})
    importance = {"a": 0.02, "b": 0.18, "c": -0.01}       # a negative importance (shuffle noise) weighs nothing
    assert drift_scores(scored(), verdict, importance) == {D: pytest.approx(0.02 / 0.20)}
    # a drifted unimportant feature is not a fire; the same drift with equal weights would be one in three
    d = evaluate(scored(threshold=0.3), D, runs(False), column_drift=verdict, importance=importance)
    assert (d.rule("drift_score").status, d.fired) == ("ok", False)
    assert evaluate(scored(threshold=0.3), D, runs(False), column_drift=verdict).fired
    # an explicit weight wins over the importance; importances all <= 0 or off: the default weights
    assert drift_scores(scored(weights={"a": 0.18}), verdict, importance) == {D: pytest.approx(0.18 / 0.36)}
    assert drift_scores(scored(), verdict, {"a": 0.0, "b": -0.1}) == {D: pytest.approx(1 / 3)}
    assert drift_scores(scored(importance_weights=False), verdict, importance) == {D: pytest.approx(1 / 3)}
    # default_weight 0: only the listed features count, whatever their importance
    assert drift_scores(scored(weights={"a": 1.0}, default_weight=0.0), verdict, importance) == {D: 1.0}
    # the weights used are recorded with the decision
    d = evaluate(scored(threshold=0.3), D, runs(False), column_drift=verdict, importance=importance)
    assert json.loads(d.inputs_json())["drift_score_weights"] == {"a": 0.02, "b": 0.18, "c": 0.0}
    assert json.loads(evaluate(policy(), D, runs(False)).inputs_json())["drift_score_weights"] is None
