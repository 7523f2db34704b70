"""The retrain and pipeline jobs end to end: real monitoring history, training, gate, Delta tables, MLflow.

Retrain: the monitor tests' ``scored`` workspace (``jt`` v1 champion, x1 shifted by 3σ on 02-28 and
03-01, predictions 02-23..03-01) monitored day by day 02-26..03-01 (40 rows a window, so
``monitoring.drift.min_rows=30``). Policy: dataset drift in 2 of the last 3 windows. It fires on
03-01 only; the challenger v2 is fitted on the same (unshifted) training window as v1, so the gate
finds it no better and the champion stays v1 — recorded in the decision row. Re-running 03-01 does
not train again (R23).

Pipeline: a second model ``jp`` with real source tables (events, customers; ``jt``'s labels), its
features backfilled and a champion trained, then ``pipeline`` over 03-02..03-03 and again over
03-02..03-04 (resume: only 03-04 runs). A missing source table stops the pipeline at
prepare_features with that step's exit code.
"""

from __future__ import annotations

import datetime as dt
import json

import mlflow
import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.metrics import log_loss

from driftline import jobs, runtime
from driftline.cli import runner
from driftline.cli.runner import run_job
from driftline.config import load_config
from driftline.registry.client import tracking_setup
from driftline.tables import CommitInfo
from driftline.training.pipeline import model_frame, predict_scores
from driftline.vocabulary import CHAMPION
from tests.jobs.test_monitor import scored  # noqa: F401  (a fixture: pytest finds it by name)
from tests.jobs.test_score import registry_of, store_of
from tests.jobs.test_train import MODEL, oracle_sets

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

U = dt.UTC
DAYS = [dt.date(2026, 2, 26), dt.date(2026, 2, 27), dt.date(2026, 2, 28), dt.date(2026, 3, 1)]
D = dt.date(2026, 3, 1)
POLICY = ("--set", "monitoring.drift.min_rows=30", "--set", "retrain.drift.k=2", "--set", "retrain.drift.n=3")


def job(env, name: str, model: str, *args: str) -> int:
    return run_job(name, ["--model", model, "--conf-dir", str(env["conf"]), *args])


def spy_results(monkeypatch) -> list[jobs.JobResult]:
    """Every `JobResult` of the jobs run from here on (command line and in process), in completion order."""
    results: list[jobs.JobResult] = []
    real = jobs.run

    def run(ctx):  # type: ignore[no-untyped-def]
        results.append(real(ctx))
        return results[-1]

    monkeypatch.setattr(jobs, "run", run)
    return results


def decision(env, date: dt.date, model: str = "jt") -> dict:
    rows = store_of(env).read("retrain_decisions").filter((F.col("model") == model)
                                                           & (F.col("decision_date") == date)).collect()
    assert len(rows) == 1
    return rows[0].asDict()


@pytest.fixture(scope="module")
def monitored(scored):  # noqa: F811
    env = scored
    assert job(env, "monitor", "jt", "--from", str(DAYS[0]), "--to", str(DAYS[-1]), *POLICY) == 0
    runs = store_of(env).read("monitor_runs").filter(F.col("model") == "jt").select("run_date", "dataset_drift")
    assert {r["run_date"]: r["dataset_drift"] for r in runs.collect()} == dict(zip(DAYS, [False, False, True, True],
                                                                                    strict=True))
    return env


def test_drift_fires_once_trains_gates_and_a_rerun_does_not_retrain(monitored) -> None:   # R23, R25
    env = monitored
    assert job(env, "retrain", "jt", "--from", str(DAYS[1]), "--to", str(DAYS[2]), *POLICY) == 0
    for day, drifted in ((DAYS[1], 0), (DAYS[2], 1)):
        row = decision(env, day)
        assert (row["fired"], row["status"], row["train_status"], row["trained_version"]) == (
            False, "no_trigger", "not_run", None)
        assert (row["windows_considered"], row["windows_drifted"], row["rules_triggered"]) == (
            min(3, DAYS.index(day) + 1), drifted, "")
    assert [v.version for v in registry_of(env, "jt").versions()] == ["1"]

    assert job(env, "retrain", "jt", "--date", str(D), *POLICY) == 0
    row = decision(env, D)
    assert (row["fired"], row["status"], row["rules_triggered"], row["train_status"]) == (
        True, "fired", "drift", "trained")
    assert row["reasons"] == ("drift: dataset drift in 2 of the last 3 windows (2026-02-28, 2026-03-01); "
                              "expected at least 2 of 3 to fire")
    assert (row["windows_considered"], row["windows_drifted"], row["first_window"], row["last_window"]) == (
        3, 2, DAYS[1], D)
    inputs = json.loads(row["inputs_json"])
    assert [(w["run_date"], w["dataset_drift"]) for w in inputs["windows"]] == [
        ("2026-03-01", True), ("2026-02-28", True), ("2026-02-27", False)]
    assert {r["rule"]: r["status"] for r in json.loads(row["rules_json"])} == {
        "drift": "triggered", "drift_score": "disabled", "performance": "disabled", "estimated_performance": "disabled",
        "quality": "disabled"}

    reg = registry_of(env, "jt")
    v2 = reg.get("2")
    assert [v.version for v in reg.versions()] == ["1", "2"]
    assert row["trained_version"] == "2" and row["train_run_id"] == v2.tags["driftline.run_id"]
    assert row["train_run_id"].startswith("train-") and v2.tags["driftline.date"] == str(D)
    # the challenger is fitted on the same unshifted window as v1: no better, the champion stays
    assert (row["gate_passed"], row["gate_metric"], row["gate_reference_kind"], row["gate_reference_version"]) == (
        False, "log_loss", "champion", "1")
    assert row["gate_challenger"] == pytest.approx(float(v2.tags["driftline.gate.challenger"]))
    assert row["gate_reference"] == pytest.approx(float(v2.tags["driftline.gate.reference"]))
    assert row["gate_reason"] == v2.tags["driftline.gate.reason"]
    assert row["champion_version"] == "1" == reg.alias(CHAMPION).version
    assert row["train_error"] is None and row["run_id"].startswith("retrain-")

    # R23: the same date again, even with a looser policy, trains nothing and writes nothing
    store = store_of(env)
    before = store.version("retrain_decisions")
    assert job(env, "retrain", "jt", "--date", str(D), *POLICY, "--set", "retrain.drift.k=1") == 0
    assert store.version("retrain_decisions") == before
    assert [v.version for v in registry_of(env, "jt").versions()] == ["1", "2"]
    assert decision(env, D) == row
    head = store.history("retrain_decisions")[0]
    assert head["job"] == "retrain" and head["idempotency_key"] == f"driftline/retrain/retrain_decisions/jt@{D}"


def test_performance_rule_judges_a_window_the_monitor_wrote(monitored) -> None:
    env = monitored
    args = (*POLICY, "--set", "retrain.drift.enabled=false", "--set", "retrain.performance.enabled=true",
            "--set", "retrain.performance.min=0.0")
    day = DAYS[-2]
    assert job(env, "retrain", "jt", "--date", str(day), *args) == 0
    row = decision(env, day)
    rules = {r["rule"]: r for r in json.loads(row["rules_json"])}
    perf = json.loads(row["inputs_json"])["performance"]
    auc = {(r["window_end"], r["metric"]): r["value"] for r in store_of(env).read("monitor_metrics").filter(
        (F.col("run_date") == day) & (F.col("column") == "__performance__") & (F.col("slice") == "__all__")
        & (F.col("baseline") == "reference")).collect()}
    # 02-28's own window has too few matured labels; none of its earlier windows reach 100 either
    assert perf["run_date"] == str(day) and perf["window_end"] == str(day)
    assert rules["performance"]["status"] == "insufficient_data" and not row["fired"]
    assert perf["labelled_rows"] == auc[(day, "labelled_rows")] < 100
    assert rules["performance"]["detail"].startswith("auc of window 2026-02-28: expected at least "
                                                     "retrain.performance.min_labels=100 matured labels, found ")
    # with lower floors an earlier window the 02-28 run recomputed (labels matured by 02-28) decides
    assert job(env, "monitor", "jt", "--date", str(day), *POLICY, "--set", "monitoring.performance.min_labels=20") == 0
    assert job(env, "retrain", "jt", "--date", str(day), *args, "--set", "retrain.performance.min_labels=20") == 0
    row = decision(env, day)
    rules = {r["rule"]: r for r in json.loads(row["rules_json"])}
    perf = json.loads(row["inputs_json"])["performance"]
    earlier = {(r["window_end"], r["metric"]): r["value"] for r in store_of(env).read("monitor_metrics").filter(
        (F.col("run_date") == day) & (F.col("column") == "__performance__") & (F.col("slice") == "__all__")).collect()}
    # the oracle: the freshest window of that run with 20 matured labels and a value
    end = max(e for (e, m), v in earlier.items()
              if m == "labelled_rows" and v >= 20 and earlier.get((e, "auc")) is not None)
    assert end < day and perf["window_end"] == str(end)
    assert row["performance_value"] == earlier[(end, "auc")]
    assert rules["performance"]["status"] == "ok" and rules["performance"]["detail"].startswith(
        f"auc={earlier[(end, 'auc')]:.6g} on window ending {end} (labels matured by 2026-02-28)")


def test_retrain_without_monitoring_history_exits_1_with_one_line(monitored, capsys) -> None:
    capsys.readouterr()
    assert job(monitored, "retrain", "jt", "--date", "2026-02-20") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == ["driftline retrain: error: table monitor_runs: expected monitoring windows of jt up to 2026-02-20, "
                   "found none (run driftline monitor --model jt --date 2026-02-20)"]


# --------------------------------------------------------------------------- a better challenger


@pytest.fixture(scope="module")
def weak(monitored):
    """Model jb: jt's (shifted) features, champion v1 a deliberately weak fit (C=1e-4), monitored on 03-01.

    Policy: only the drift-weighted score over x1 (weight 1, every other feature 0), one window.
    """
    env = monitored
    spec = {**MODEL, "name": "jb", "monitoring": {"drift": {"bins": 5, "top_k": 2, "min_rows": 30}},
            "retrain": {"drift": {"enabled": False},
                        "drift_score": {"enabled": True, "threshold": 0.5, "k": 1, "n": 1, "weights": {"x1": 1.0},
                                        "default_weight": 0.0}}}
    (env["conf"] / "models" / "jb.yaml").write_text(yaml.safe_dump(spec))
    store = store_of(env)
    commit = CommitInfo(job="test", run_id="setup", key="jb", code_version="t", config_hash="t")
    store.replace_partitions("jb__features", store.read("jt__features").localCheckpoint(), ["as_of_date"], commit)
    assert job(env, "train", "jb", "--date", str(D), "--set", "estimator.params.C=0.0001") == 0
    reg = registry_of(env, "jb")
    if reg.alias(CHAMPION) is None:                  # v1's own gate (vs the baseline) is not the point here
        reg.promote("1", "test")
    assert job(env, "score", "jb", "--from", str(DAYS[2]), "--to", str(D)) == 0
    assert job(env, "monitor", "jb", "--date", str(D)) == 0
    return env


def test_a_better_challenger_is_promoted_by_the_retrain_job(weak, monkeypatch) -> None:
    env = weak
    results = spy_results(monkeypatch)
    assert job(env, "retrain", "jb", "--date", str(D)) == 0
    row = decision(env, D, "jb")
    # the decision row holds what the train job's result says it trained (no lookup by run id)
    train, retrain = results
    assert (train.job, train.status, train.exit_code, train.model_version) == ("train", "ok", 0, "2")
    assert (row["trained_version"], row["train_run_id"]) == (train.model_version, train.run_id)
    assert [(t.table, t.version) for t in train.tables] == [
        ("reference_profiles", h["version"]) for h in store_of(env).history("reference_profiles")[:1]]
    assert (retrain.job, retrain.status, retrain.model_version) == ("retrain", "ok", "2")
    assert [t.table for t in retrain.tables] == ["retrain_decisions", "reference_profiles", "retrain_decisions"]
    assert retrain.tables[1:2] == train.tables and retrain.elapsed_seconds >= train.elapsed_seconds
    assert (row["fired"], row["status"], row["rules_triggered"], row["train_status"]) == (
        True, "fired", "drift_score", "trained")
    assert row["reasons"] == ("drift_score: weighted drift score >= 0.5 in 1 of the last 1 windows "
                              "(2026-03-01: 1); expected at least 1 of 1 to fire")
    assert [(w["run_date"], w["drift_score"]) for w in json.loads(row["inputs_json"])["windows"]] == [
        ("2026-03-01", 1.0)]
    reg = registry_of(env, "jb")
    v2 = reg.get("2")
    assert [v.version for v in reg.versions()] == ["1", "2"]

    # the gate numbers, independently: both versions scored with scikit-learn on the oracle's validation set
    _, val = oracle_sets(env["features"], env["labels"])
    x_val = model_frame(val, ["x1", "x2"], ["plan"])
    challenger = log_loss(val["label"], predict_scores(reg.load("2"), x_val, "classification"))
    champion = log_loss(val["label"], predict_scores(reg.load("1"), x_val, "classification"))
    assert challenger < champion
    expected = {
        "trained_version": "2", "train_run_id": v2.tags["driftline.run_id"], "gate_passed": True,
        "gate_metric": "log_loss", "gate_challenger": pytest.approx(challenger, rel=1e-9),
        "gate_reference": pytest.approx(champion, rel=1e-9), "gate_reference_kind": "champion",
        "gate_reference_version": "1", "gate_reason": v2.tags["driftline.gate.reason"], "champion_version": "2",
        "train_error": None,
    }
    assert {k: row[k] for k in expected} == expected
    assert row["gate_reason"] == (f"better than champion v1: log_loss {challenger:.6g} vs champion v1 {champion:.6g} "
                                  f"(lower is better; improvement {champion - challenger:+.6g}, relative "
                                  f"{(champion - challenger) / champion:+.4g})")
    assert row["train_run_id"].startswith("train-") and v2.tags["driftline.gate.passed"] == "true"

    # the champion alias, read with MLflow's own client (not driftline's registry wrapper)
    setup = tracking_setup(load_config("jb", env["conf"]).config.mlflow, env["ws"])
    client = mlflow.MlflowClient(tracking_uri=setup.tracking_uri, registry_uri=setup.registry_uri)
    assert str(client.get_model_version_by_alias("jb", CHAMPION).version) == "2"

    # R23: the day again trains nothing; the champion stays v2
    assert job(env, "retrain", "jb", "--date", str(D)) == 0
    assert [v.version for v in registry_of(env, "jb").versions()] == ["1", "2"]
    assert decision(env, D, "jb") == row
    assert str(client.get_model_version_by_alias("jb", CHAMPION).version) == "2"


def test_drift_score_weights_must_name_features(weak, capsys) -> None:
    capsys.readouterr()
    assert job(weak, "retrain", "jb", "--date", str(D), "--set", "retrain.drift_score.weights.x9=2") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == ["driftline retrain: error: retrain.drift_score.weights: expected features of jb (plan, x1, x2), "
                   "found x9"]


# --------------------------------------------------------------------------- drift episodes: armed, then fired


ONSET = dt.date(2026, 2, 28)
EPISODE = {"enabled": True, "min_new_labels": 60, "min_new_days": 2, "max_wait_days": 28}


@pytest.fixture(scope="module")
def episodic(monitored):
    """Model je: jt's features and monitoring windows (drift on 02-28 and 03-01), its own labels table je_labels
    holding only the pre-onset labels of jt (as-of dates up to 02-25, known before 03-01): no post-onset label."""
    env = monitored
    spec = {**MODEL, "name": "je", "sources": {**MODEL["sources"], "labels": {**MODEL["sources"]["labels"],
                                                                               "table": "je_labels"}},
            "retrain": {"drift": {"k": 2, "n": 3}, "wait_for_labels": EPISODE}}
    (env["conf"] / "models" / "je.yaml").write_text(yaml.safe_dump(spec))
    store = store_of(env)
    commit = CommitInfo(job="test", run_id="setup", key="je", code_version="t", config_hash="t")
    store.replace_partitions("je__features", store.read("jt__features").localCheckpoint(), ["as_of_date"], commit)
    runs = store.read("monitor_runs").filter(F.col("model") == "jt").withColumn("model", F.lit("je"))
    store.replace_partitions("monitor_runs", runs.localCheckpoint(), ["model", "run_date"], commit,
                             partitions=[{"model": "je", "run_date": d} for d in DAYS])
    labels = store.read("jt_labels").filter((F.col("as_of_date") <= dt.date(2026, 2, 25))
                                            & (F.col("label_ts") < F.lit(dt.datetime(2026, 3, 1))))
    store.append("je_labels", labels.localCheckpoint(), commit)
    return env


def post_onset_labels(env) -> None:
    """40 labels for each of 02-28 and 03-01 (the features' own rule), known on 03-03 at noon."""
    feats = env["features"]
    rows = [(r.customer_id, r.as_of_date, dt.datetime(2026, 3, 3, 12, tzinfo=U),
             int(0.5 * ((r.x1 if r.x1 == r.x1 and r.x1 is not None else 10.0) - 10) + (0.8 if r.plan == "pro" else 0)
                 > 0))
            for r in feats[feats["as_of_date"] >= ONSET].itertuples()]
    assert len(rows) == 80
    schema = T.StructType([T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
                           T.StructField("label_ts", T.TimestampType()), T.StructField("churned", T.IntegerType())])
    commit = CommitInfo(job="test", run_id="setup", key="je-post-onset", code_version="t", config_hash="t")
    store_of(env).append("je_labels", env["spark"].createDataFrame(rows, schema), commit)


EPISODE_COLUMNS = ("episode_id", "onset_date", "armed_date", "episode_status", "labels_available", "labels_needed",
                   "label_days_available", "label_days_needed", "waited_days", "wait_reason")


def test_an_episode_is_armed_until_post_onset_labels_matured_then_fires_anchored_on_the_onset(episodic,
                                                                                             monkeypatch) -> None:
    env = episodic
    assert job(env, "retrain", "je", "--date", str(D)) == 0
    row = decision(env, D, "je")
    assert (row["fired"], row["status"], row["rules_triggered"], row["train_status"]) == (
        False, "armed", "drift", "not_run")
    assert {k: row[k] for k in EPISODE_COLUMNS} == {
        "episode_id": "ep-2026-03-01", "onset_date": ONSET, "armed_date": D, "episode_status": "open",
        "labels_available": 0, "labels_needed": 60, "label_days_available": 0, "label_days_needed": 2,
        "waited_days": 0, "wait_reason": "labels,label_days"}
    assert row["reasons"].endswith("armed: episode ep-2026-03-01 (onset 2026-02-28, armed 2026-03-01): 0 of 60 labels "
                                   "with an as-of date on/after 2026-02-28 matured, on 0 of 2 as-of dates; expected "
                                   "retrain.wait_for_labels.min_new_labels=60 and min_new_days=2; fires on 2026-03-28 "
                                   "at the latest (retrain.wait_for_labels.max_wait_days=28)")
    assert json.loads(row["inputs_json"])["episode"]["id"] == "ep-2026-03-01"

    # the post-onset labels arrive on 03-03 at noon: not matured for a decision on 03-03 (a rerun decides the same)
    day = dt.date(2026, 3, 3)
    assert job(env, "retrain", "je", "--date", str(day)) == 0
    first = decision(env, day, "je")
    post_onset_labels(env)
    assert job(env, "retrain", "je", "--date", str(day)) == 0
    again = decision(env, day, "je")
    volatile = ("run_id", "started_at", "code_version")
    assert {k: v for k, v in again.items() if k not in volatile} == {k: v for k, v in first.items()
                                                                      if k not in volatile}
    assert (again["status"], again["episode_id"], again["waited_days"], again["labels_available"]) == (
        "armed", "ep-2026-03-01", 2, 0)

    # 03-05: 80 labels on 2 post-onset dates matured → fires; the train job is anchored on the onset
    results = spy_results(monkeypatch)
    fire = dt.date(2026, 3, 5)
    assert job(env, "retrain", "je", "--date", str(fire)) == 0
    row = decision(env, fire, "je")
    assert (row["fired"], row["status"], row["train_status"]) == (True, "fired", "trained")
    promoted = row["champion_version"] == row["trained_version"]
    assert {k: row[k] for k in EPISODE_COLUMNS} == {
        "episode_id": "ep-2026-03-01", "onset_date": ONSET, "armed_date": D,
        "episode_status": "ended" if promoted else "open", "labels_available": 80, "labels_needed": 60,
        "label_days_available": 2, "label_days_needed": 2, "waited_days": 4, "wait_reason": None}
    train = next(r for r in results if r.job == "train")
    assert (train.status, train.model_version) == ("ok", row["trained_version"])
    tags = registry_of(env, "je").get(row["trained_version"]).tags
    assert tags["driftline.date"] == str(fire) and tags.get("driftline.onset") == str(ONSET)
    # validation: post-onset dates only, ending on the last matured date 03-05 − 3 − 1
    assert tags["driftline.validation_window"].endswith("..2026-03-01")
    assert tags["driftline.validation_window"] >= f"{ONSET}..2026-03-01"


# --------------------------------------------------------------------------- pipeline


JP = {
    **MODEL, "name": "jp",
    "sources": {
        "events": {"table": "jp_events", "key": "customer_id", "timestamp": "event_ts"},
        "entities": {"table": "jp_customers", "key": "customer_id"},
        "labels": MODEL["sources"]["labels"],
    },
    "monitoring": {"drift": {"bins": 5, "top_k": 2, "min_rows": 10}},
    "retrain": {"drift": {"k": 3, "n": 3}},
}


def source(env, name: str, rows: list[tuple], schema: T.StructType) -> None:
    df = env["spark"].createDataFrame(rows, schema).withColumn("batch", F.lit("all"))
    commit = CommitInfo(job="test", run_id="setup", key=name, code_version="t", config_hash="t")
    store_of(env).replace_partitions(name, df, ["batch"], commit, partitions=[{"batch": "all"}])


@pytest.fixture(scope="module")
def jp(monitored):
    """Model jp: events 02-01..03-03, customers, features 02-08..03-01, champion v1 trained for 03-01."""
    env = monitored
    (env["conf"] / "models" / "jp.yaml").write_text(yaml.safe_dump(JP))
    rng = np.random.default_rng(5)
    events, day = [], dt.date(2026, 2, 1)
    while day <= dt.date(2026, 3, 3):
        for e in range(40):
            for h in sorted(rng.choice(24, size=int(rng.integers(1, 3)), replace=False)):
                events.append((f"c{e:03d}", dt.datetime.combine(day, dt.time(int(h)), U), float(rng.normal(10, 3))))
        day += dt.timedelta(days=1)
    source(env, "jp_events", events, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("event_ts", T.TimestampType()),
        T.StructField("amount", T.DoubleType())]))
    source(env, "jp_customers", [(f"c{e:03d}", ["basic", "pro", "team"][e % 3]) for e in range(40)],
           T.StructType([T.StructField("customer_id", T.StringType()), T.StructField("plan", T.StringType())]))
    assert job(env, "prepare_features", "jp", "--from", "2026-02-08", "--to", "2026-03-01") == 0
    assert job(env, "train", "jp", "--date", "2026-03-01") == 0
    reg = registry_of(env, "jp")
    if reg.alias(CHAMPION) is None:                  # the gate is not what these tests are about
        reg.promote("1", "test")
    return env


def commits(env, table: str) -> list[dict]:
    """Our commits of ``table`` (oldest first)."""
    return [h for h in reversed(store_of(env).history(table)) if h["job"] is not None]


def test_pipeline_runs_the_steps_in_order_and_resumes(jp, monkeypatch) -> None:
    env = jp
    tables = {"prepare_features": "jp__features", "score": "jp__predictions", "monitor": "monitor_runs",
              "retrain": "retrain_decisions"}
    calls = {"load_config": 0, "build_spark": 0}

    def counted(name, real):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(runner, "load_config", counted("load_config", runner.load_config))
    monkeypatch.setattr(runtime, "build_spark", counted("build_spark", runtime.build_spark))
    results = spy_results(monkeypatch)
    assert job(env, "pipeline", "jp", "--from", "2026-03-02", "--to", "2026-03-03") == 0
    # one config parse and one session for the whole pipeline: its steps run in process
    assert calls == {"load_config": 1, "build_spark": 1}
    pipeline = results[-1]
    assert (pipeline.job, pipeline.status, pipeline.exit_code, pipeline.model_version) == ("pipeline", "ok", 0, None)
    assert pipeline.steps == tuple(results[:-1])
    assert [s.job for s in pipeline.steps] == [*tables, *tables]
    assert all(s.ok and s.run_id.startswith(f"{s.job}-") for s in pipeline.steps)
    for step in pipeline.steps:           # each commit a step reports is in the table's history as that step's
        assert step.tables and tables[step.job] in [t.table for t in step.tables]
        for t in step.tables:
            (commit,) = [h for h in store_of(env).history(t.table) if h["version"] == t.version]
            assert (commit["job"], commit["run_id"]) == (step.job, step.run_id)
    # the pipeline's own result: its steps' commits, date by date, each date closed by its pipeline_runs row
    by_date = [[w for s in pipeline.steps[i:i + 4] for w in s.tables] for i in (0, 4)]
    names = [t.table for t in pipeline.tables]
    assert [t for t in pipeline.tables if t.table != "pipeline_runs"] == by_date[0] + by_date[1]
    assert names.index("pipeline_runs") == len(by_date[0]) and names[-1] == "pipeline_runs"
    first = {r["run_date"]: r.asDict() for r in store_of(env).read("pipeline_runs").collect()}
    assert sorted(first) == [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    assert {(r["status"], r["steps"]) for r in first.values()} == {
        ("completed", "prepare_features,score,monitor,retrain")}
    # every step wrote its (model, date) and they committed in pipeline order, date by date
    keys = {"2026-03-02", "2026-03-03", "jp@2026-03-02", "jp@2026-03-03"}
    order = [(h["timestamp"], h["date"][-10:], step) for step, table in tables.items() for h in commits(env, table)
             if h["date"] in keys]
    assert [(d, s) for _, d, s in sorted(order)] == [(d, s) for d in ("2026-03-02", "2026-03-03") for s in tables]
    assert decision(env, dt.date(2026, 3, 3), "jp")["status"] == "no_trigger"

    # resume: completed dates are skipped, only 03-04 runs
    versions = {t: store_of(env).version(t) for t in tables.values()}
    assert job(env, "pipeline", "jp", "--from", "2026-03-02", "--to", "2026-03-04") == 0
    assert {t: store_of(env).version(t) for t in tables.values()} == {t: v + 1 for t, v in versions.items()}
    again = {r["run_date"]: r.asDict() for r in store_of(env).read("pipeline_runs").collect()}
    assert sorted(again) == [dt.date(2026, 3, d) for d in (2, 3, 4)]
    assert {d: again[d] for d in first} == first
    assert again[dt.date(2026, 3, 4)]["run_id"] != first[dt.date(2026, 3, 2)]["run_id"]


def test_pipeline_stops_at_the_failing_step_with_its_exit_code(monitored, capsys) -> None:
    env = monitored                      # jt has no events table: prepare_features' gate fails
    capsys.readouterr()
    step = job(env, "prepare_features", "jt", "--date", "2026-03-02")
    assert step != 0
    (alone,) = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert alone.startswith("driftline prepare_features: error: ")
    assert job(env, "pipeline", "jt", "--date", "2026-03-02") == step
    err = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(err) == 1     # the step's error is part of the pipeline's one line
    assert err[0].startswith("driftline pipeline: error: pipeline jt 2026-03-02 [date 1/1, step 1/4] prepare_features: "
                             f"exited {step}, expected 0 after ")
    assert err[0].endswith(f" s: {alone.removeprefix('driftline prepare_features: error: ')}; stopped (0 of 1 dates "
                           "completed, a rerun resumes at 2026-03-02)")
    pipeline_runs = store_of(env).read("pipeline_runs") if store_of(env).exists("pipeline_runs") else None
    assert pipeline_runs is None or pipeline_runs.filter(F.col("model") == "jt").count() == 0
