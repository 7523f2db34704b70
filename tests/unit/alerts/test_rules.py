"""Alert rules over a run's facts (pure): each kind's condition, k of n, dedupe per (rule, window), cooldown,
and the config's refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from driftline.alerts.rules import Facts, evaluate, hit, title
from driftline.alerts.spec import AlertRule, AlertsConfig

D = dt.date(2026, 3, 10)


def rule(**kw) -> AlertRule:
    return AlertRule.model_validate({"name": "r", "channels": ["a"], **kw})


def run(date: dt.date = D, **kw) -> Facts:
    return Facts(job="monitor", run_date=date, window=f"{date - dt.timedelta(days=6)}..{date}", **kw)


def event(date: dt.date, status: str = "sent", name: str = "r", delivered: str = "a") -> dict:
    return {"rule": name, "window": run(date).window, "run_date": date, "status": status, "delivered": delivered}


@pytest.mark.parametrize(("r", "facts", "fires", "value", "threshold"), [
    (rule(when="dataset_drift"), run(drift_status="alert", drift_share=0.6, drift_threshold=0.5), True, 0.6, 0.5),
    (rule(when="dataset_drift"), run(drift_status="warn", drift_share=0.4, drift_threshold=0.5), False, None, None),
    (rule(when="dataset_drift", level="warn"), run(drift_status="warn", drift_share=0.4), True, 0.4, None),
    (rule(when="dataset_drift"), run(drift_status="insufficient_data"), False, None, None),   # never "no drift"...
    (rule(when="column_drift", columns=["x1"]), run(drifted=("x2",)), False, None, None),
    (rule(when="column_drift", min_columns=2), run(drifted=("x1", "x2")), True, 2.0, 2.0),
    (rule(when="quality"), run(quality_status="alert", quality_failed=("x1.max",)), True, None, None),
    (rule(when="quality"), run(quality_status="warn"), False, None, None),
    (rule(when="performance", metric="auc", bound=0.7), run(metrics={"auc": 0.65}), True, 0.65, 0.7),
    (rule(when="performance", metric="auc", bound=0.7), run(metrics={"auc": 0.75}), False, None, None),
    (rule(when="performance", metric="auc", bound=0.7), run(metrics={"auc": None}), False, None, None),  # no labels
    (rule(when="performance", metric="auc", bound=0.7), run(metrics={"auc": float("nan")}), False, None, None),
    (rule(when="performance", metric="rmse", bound=2, direction="above"), run(metrics={"rmse": 3.0}), True, 3.0, 2.0),
    (rule(when="retrain"), Facts("retrain", D, str(D), decision="armed"), False, None, None),
    (rule(when="retrain", decisions=["fired", "armed"]), Facts("retrain", D, str(D), decision="armed"), True, None,
     None),
    (rule(when="promotion"), Facts("retrain", D, str(D), promoted_version="3", previous_champion="2"), True, None,
     None),
    (rule(when="promotion"), Facts("retrain", D, str(D), decision="fired"), False, None, None),
    (rule(when="canary"), Facts("retrain", D, "x", canary=("widened", "4", 0.05, 0.25)), True, 0.25, None),
    (rule(when="canary"), Facts("retrain", D, "x", canary=("held", "4", 0.05, 0.05)), False, None, None),
    (rule(when="canary", outcomes=["held"]), Facts("retrain", D, "x", canary=("held", "4", 0.05, 0.05)), True, 0.05,
     None),
    (rule(when="canary"), Facts("retrain", D, "x", decision="fired"), False, None, None),
    (rule(when="job_failed", jobs=["score"]), Facts("monitor", D, "monitor@x", error="boom"), False, None, None),
    (rule(when="job_failed"), Facts("monitor", D, "monitor@x", error="boom"), True, None, None),
])
def test_each_kind_fires_on_its_condition_only(r, facts, fires, value, threshold) -> None:
    h = hit(r, facts)
    assert (h is not None) == fires
    if h is not None:
        assert (h.value, h.threshold) == (value, threshold) and h.reason


def test_k_of_n_counts_this_run_and_the_runs_before_it() -> None:
    r = rule(when="dataset_drift", k=2, n=3)
    drifted, clean = {"drift_status": "alert"}, {"drift_status": "ok"}
    before = [run(D - dt.timedelta(days=1), **clean), run(D - dt.timedelta(days=2), **drifted),
              run(D - dt.timedelta(days=3), **drifted)]                        # the 3rd one back is outside n=3
    [f] = evaluate([r], run(**drifted), before, [])
    assert f.hit.reason.endswith("2 of the last 3 runs")
    assert evaluate([r], run(**drifted), [run(D - dt.timedelta(days=1), **clean)] * 2, []) == []
    assert evaluate([r], run(**clean), before, []) == []                         # this run must meet it
    assert evaluate([r], run(**drifted), [], []) == []                           # 1 of 1 < k


def test_a_window_already_delivered_is_not_sent_again_and_a_failed_channel_is_retried() -> None:
    r = rule(when="dataset_drift", channels=["a", "b"])
    facts = run(drift_status="alert")
    [f] = evaluate([r], facts, [], [event(D, "partial", delivered="a")])
    assert f.pending == ("b",) and f.previous is not None
    [f] = evaluate([r], facts, [], [event(D, "sent", delivered="a,b")])
    assert f.pending == ()
    [f] = evaluate([r], facts, [], [event(D, "sent", name="other", delivered="a,b")])   # another rule's row
    assert f.pending == ("a", "b")


def test_cooldown_suppresses_a_new_window_after_a_sent_alert() -> None:
    r = rule(when="dataset_drift", cooldown_days=3)
    facts = run(drift_status="alert")
    [f] = evaluate([r], facts, [], [event(D - dt.timedelta(days=2))])
    assert f.suppressed is not None and "cooldown" in f.suppressed and str(D - dt.timedelta(days=2)) in f.suppressed
    [f] = evaluate([r], facts, [], [event(D - dt.timedelta(days=4))])              # outside the cooldown
    assert f.suppressed is None
    [f] = evaluate([r], facts, [], [event(D - dt.timedelta(days=1), "failed", delivered="")])   # never delivered
    assert f.suppressed is None


@pytest.mark.parametrize(("data", "message"), [
    ({"rules": [{"name": "r", "when": "dataset_drift", "channels": ["nope"]}], "channels": {}},
     "rule r: expected channels named in alerts.channels (none defined), found nope"),
    ({"rules": [{"name": "r", "when": "promotion", "channels": ["a"], "metric": "auc"}], "channels": {"a": {
        "type": "webhook", "url": "http://127.0.0.1:1/x"}}},
     "rule r: metric do not apply to when=promotion (it reads no parameter)"),
    ({"rules": [{"name": "r", "when": "retrain", "channels": ["a"], "outcomes": ["held"]}], "channels": {"a": {
        "type": "webhook", "url": "http://127.0.0.1:1/x"}}},
     "rule r: outcomes do not apply to when=retrain (it reads decisions)"),
    ({"rules": [{"name": "r", "when": "performance", "channels": ["a"], "metric": "auc"}], "channels": {"a": {
        "type": "webhook", "url": "http://127.0.0.1:1/x"}}},
     "rule r: when=performance needs metric and bound, found metric=auc bound=None"),
    ({"rules": [{"name": "r", "when": "dataset_drift", "channels": ["a"], "k": 3, "n": 2}], "channels": {"a": {
        "type": "webhook", "url": "http://127.0.0.1:1/x"}}},
     "rule r: expected k <= n (k of the last n runs), found k=3 n=2"),
    ({"rules": [{"name": "r", "when": "retrain", "channels": ["a"], "k": 2, "n": 2}], "channels": {"a": {
        "type": "webhook", "url": "http://127.0.0.1:1/x"}}},
     "rule r: k/n apply to the monitor kinds"),
    ({"rules": [{"name": "r", "when": "quality", "channels": ["a"]}, {"name": "r", "when": "quality",
                                                                      "channels": ["a"]}],
      "channels": {"a": {"type": "webhook", "url": "http://127.0.0.1:1/x"}}},
     "expected one rule per name, found r more than once"),
])
def test_config_refuses_rules_that_cannot_work(data, message) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AlertsConfig.model_validate(data)


def test_a_canary_step_says_what_moved_and_why() -> None:
    facts = Facts("retrain", D, f"{D}/canary-rolled_back", canary=("rolled_back", "4", 0.25, 0.0),
                  decision_reasons="v4 log_loss 0.61 vs champion v3 0.55: worse by 0.06 > margin 0.02")
    h = hit(rule(when="canary"), facts)
    assert h is not None and h.reason == ("canary v4 rolled back (25% → 0% of the entities published): v4 log_loss "
                                          "0.61 vs champion v3 0.55: worse by 0.06 > margin 0.02")
    [firing] = evaluate([rule(when="canary")], facts, [], [])
    assert title("churn", firing) == f"[driftline] churn: canary rolled back (r) for {D}/canary-rolled_back"


def test_a_dataset_drift_alert_from_the_domain_classifier_says_so() -> None:
    facts = run(drift_status="alert", drift_share=0.2, drift_threshold=0.5, multivariate=("alert", 0.71, 0.56))
    got = hit(rule(when="dataset_drift"), facts)
    assert got is not None and (got.value, got.threshold) == (0.71, 0.56)
    assert got.reason == "dataset drift alert: multivariate domain classifier AUC 0.71 > 0.56 (drift share 0.2)"
    by_share = hit(rule(when="dataset_drift", level="warn"),
                   run(drift_status="warn", drift_share=0.2, drift_threshold=0.5, drifted=("x1",)))
    assert by_share is not None and by_share.reason == "dataset drift warn: drift share 0.2 < 0.5 (x1)"


def test_the_prometheus_registry_carries_the_domain_classifier_auc() -> None:
    from prometheus_client import generate_latest

    from driftline.alerts.metrics import monitor_registry

    run_row = {"model": "m", "model_version": "2", "status": "alert", "quality_status": "ok",
               "performance_status": "ok", "drift_share": 0.1, "columns_drifted": 1, "columns_evaluated": 10,
               "rows": 5000, "started_at": dt.datetime(2026, 3, 10, 3), "window_end": D}
    rows = [{"column": "__multivariate__", "metric": "domain_auc", "value": 0.73, "status": "alert"}]
    text = generate_latest(monitor_registry(run_row, rows)).decode()
    assert 'driftline_multivariate_auc{model="m"} 0.73' in text
    empty = generate_latest(monitor_registry(run_row, [{**rows[0], "value": None}])).decode()
    assert 'driftline_multivariate_auc{model="m"}' not in empty
