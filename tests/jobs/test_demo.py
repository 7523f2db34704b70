"""`driftline demo` end to end on a short scenario: what the README's first command runs.

The demo must work from the command a new user types, tell its story with numbers, find drift where
the scenario drifts and not on its stable days, retrain once after the shift with a better model,
and be safe to rerun: a second run leaves every table it wrote with identical rows.

One demo run (module fixture) serves the story assertions; the rerun test runs it once more.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from driftline.cli.demo import DEFAULT_DAYS, SHIFT_DAY, prepare_workspace
from driftline.cli.main import main
from driftline.demo import Scenario
from driftline.errors import UsageError
from driftline.jobs.score_versions import signature_of
from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
from driftline.registry.profiles import read_reference_rows
from driftline.scoring.core import score_frame
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from tests.conftest import ROOT, TEST_BACKEND

# The default scenario's length and change day (day 40: covariate shift and new categories, then a stable new
# regime), 1500 customers: enough labels that the AUC of two champions on a week of later labels differs by more
# than its noise. 5 stable days are monitored before the change (the first champion is trained on 2026-02-05).
SCENARIO = Scenario(customers=1500, days=DEFAULT_DAYS, seed=3, shift_day=SHIFT_DAY, new_category_day=SHIFT_DAY,
                    concept_day=DEFAULT_DAYS)
STABLE_DAYS = 5
ARGS = ["--customers", "1500", "--seed", "3", "--stable-days", str(STABLE_DAYS)]
SHIFT = SCENARIO.date(SHIFT_DAY)
FIRST = SHIFT - dt.timedelta(days=STABLE_DAYS)
LAST = SCENARIO.end
CONF = ROOT / "conf"
# Columns that legitimately differ between two runs of the same job: who ran it and when.
RUN_COLUMNS = {"run_id", "scored_at", "computed_at", "created_at", "started_at", "train_run_id", "report_path",
               "mlflow_run_id"}


@dataclass(frozen=True)
class DemoRun:
    workspace: Path
    out: str


def run_demo(workspace: Path, args: list[str] = ARGS) -> DemoRun:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", *args, "--workspace", str(workspace), "--conf-dir", str(CONF)])
    out = buffer.getvalue()
    assert code == 0, out
    return DemoRun(workspace, out)


@pytest.fixture(scope="module")
def demo(spark, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    clear_cache()
    return run_demo(tmp_path_factory.mktemp("demo") / "ws")


def mlflow_config():
    from driftline.config import load_config

    return load_config("churn", str(CONF), (), None).config.mlflow


def registry(workspace: Path) -> ModelRegistry:
    return ModelRegistry(tracking_setup(mlflow_config(), str(workspace)), "churn")


def tables(spark, workspace: Path) -> dict[str, object]:
    store = open_store(spark, StorageConfig(), str(workspace))
    names = ["churn_customers", "churn_events", "churn_labels", "churn__features", "quality_results", "quarantine",
             "churn__predictions", "scoring_stats", "monitor_metrics", "monitor_runs", "retrain_decisions"]
    out = {}
    for name in names:
        df = store.read(name)
        keep = [c for c in df.columns if c not in RUN_COLUMNS]
        out[name] = df.select(*keep).orderBy(*keep)
    return out


def day_lines(out: str) -> list[tuple[str, str, str]]:
    """(date, phase, retrain status) of every progress line of step [4]."""
    return re.findall(r"\n    (2026-\d\d-\d\d) (stable|shift ): champion v\d+, [\d,]+ rows, \d+ of \d+ columns "
                      r"drifted.*; retrain: (\w+)", out)


pytestmark = pytest.mark.slow


def test_demo_tells_its_story(spark, demo: DemoRun) -> None:
    out, workspace = demo.out, demo.workspace
    assert f"driftline demo: 1500 customers, {DEFAULT_DAYS} days from 2026-01-01 (seed 3)" in out
    assert re.search(rf"\[2\] prepare_features 2026-01-02\.\.{LAST} \(one backfill job\) in [\d.]+ s: "
                     rf"[\d,]+ feature rows over {DEFAULT_DAYS - 1} dates", out)
    # the new channel appears on the change day: the allowed_values warning names those dates
    assert "data quality: allowed_values_events_channel warn on" in out
    assert re.search(r"version 1: trained .* validation auc 0\.\d{3}, gate passed", out)
    assert f"[4] day by day {FIRST}..{LAST} ({STABLE_DAYS} stable day(s), then the shift from {SHIFT})" in out
    days = day_lines(out)
    expected = [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    assert [d for d, _, _ in days] == [str(d) for d in expected]
    assert [p for _, p, _ in days] == ["stable"] * STABLE_DAYS + ["shift "] * (len(expected) - STABLE_DAYS)
    assert re.search(r"\n    drift episode from 2026-\d\d-\d\d: armed \d+ day\(s\)", out)
    assert re.search(r"\n    retrain fired on 2026-\d\d-\d\d \(.*\): v2 auc 0\.\d{3} vs champion 0\.\d{3} on the "
                     r"validation days → promoted", out)
    assert re.search(r"\n    after v2 became champion on 2026-\d\d-\d\d: dataset drift on \d+ of \d+ monitored", out)
    assert re.search(r"new champion v2 auc 0\.\d{3}, old champion v1 auc 0\.\d{3}", out)
    assert f"latest HTML report: {workspace}/reports/churn/{LAST}.html" in out
    report = (workspace / "reports" / "churn" / f"{LAST}.html").read_text()
    assert "Closed loop: estimated vs realized auc" in report and "champion v1 → v2" in report
    assert f"mlflow ui --backend-store-uri sqlite:///{workspace}/mlflow.db" in out
    store = open_store(spark, StorageConfig(), str(workspace))
    assert read_reference_rows(store, "churn", "1").count() > 0


def runs_and_decisions(spark, workspace: Path) -> tuple[dict, list]:
    store = open_store(spark, StorageConfig(), str(workspace))
    runs = {r["run_date"]: r for r in store.read("monitor_runs").filter(F.col("model") == "churn").collect()}
    decisions = store.read("retrain_decisions").filter(F.col("model") == "churn").orderBy("decision_date").collect()
    return runs, decisions


def test_drift_is_found_within_days_of_the_shift_not_on_the_stable_days(spark, demo: DemoRun) -> None:
    runs, _ = runs_and_decisions(spark, demo.workspace)
    assert sorted(runs) == [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    stable = [d for d in runs if d < SHIFT]
    assert sum(runs[d]["dataset_drift"] for d in stable) == 0
    first_drift = min(d for d in runs if runs[d]["dataset_drift"] and d >= SHIFT)
    assert first_drift <= SHIFT + dt.timedelta(days=3)


def test_retrain_is_armed_while_labels_are_pre_shift_then_fires_once_and_promotes(spark, demo: DemoRun) -> None:
    """Armed (never fired) until the post-onset labels matured; one fire, anchored on the onset; promotion."""
    from driftline.config import load_config

    cfg = load_config("churn", str(CONF), (), None).config
    wait = cfg.retrain.wait_for_labels
    runs, decisions = runs_and_decisions(spark, demo.workspace)
    assert len(decisions) == (LAST - FIRST).days + 1  # one decision per monitored day
    fired = [d for d in decisions if d["fired"]]
    assert len(fired) == 1
    (retrain,) = fired
    onset = retrain["onset_date"]
    assert SHIFT <= onset <= SHIFT + dt.timedelta(days=3)
    # it fired the first day min_new_days post-onset as-of dates had matured labels (label_ts = as-of + horizon)
    assert retrain["decision_date"] == onset + dt.timedelta(days=wait.min_new_days - 1 + cfg.label.horizon_days + 1)
    armed = [d for d in decisions if onset < d["decision_date"] < retrain["decision_date"]]
    assert armed and {d["status"] for d in armed} == {"armed"}
    assert all(d["onset_date"] == onset for d in armed)
    assert (retrain["trained_version"], retrain["gate_passed"], retrain["episode_status"]) == ("2", True, "ended")
    reg = registry(demo.workspace)
    assert sorted(v.version for v in reg.versions()) == ["1", "2"]
    assert reg.alias("champion").version == "2"
    tags = reg.get("2").tags
    assert tags["driftline.onset"] == onset.isoformat()
    assert dt.date.fromisoformat(tags["driftline.validation_window"].split("..")[0]) >= onset
    # the progress lines agree with the table
    assert [d for d, _, status in day_lines(demo.out) if status == "fired"] == [str(retrain["decision_date"])]
    # after the promotion the monitor compares against v2's reference: dataset drift clears and stays clear
    after = [d for d in runs if d > retrain["decision_date"]]
    assert after and all(runs[d]["model_version"] == "2" for d in after)
    assert sum(runs[d]["dataset_drift"] for d in after) == 0


def test_new_champion_beats_the_old_one_on_later_post_shift_labels(spark, demo: DemoRun) -> None:
    """Both versions scored on every label of an as-of date after v2's validation days that matured by the last
    day; sklearn is the oracle."""
    store = open_store(spark, StorageConfig(), str(demo.workspace))
    reg = registry(demo.workspace)
    validated_to = dt.date.fromisoformat(reg.get("2").tags["driftline.validation_window"].split("..")[1])
    labels = (store.read("churn_labels")
              .filter((F.col("as_of_date") > F.lit(validated_to))
                      & (F.col("label_ts") < F.lit(dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time()))))
              .select("customer_id", "as_of_date", F.col("churned").alias("label")))
    rows = store.read("churn__features").join(labels, ["customer_id", "as_of_date"]).orderBy(
        "as_of_date", "customer_id").toPandas()
    assert rows["as_of_date"].nunique() >= 5
    assert len(rows) > 5000 and 100 < rows["label"].sum() < len(rows) - 100
    auc = {}
    for version in ("1", "2"):
        model = reg.load(version)
        scored = score_frame(rows, model, signature_of(reg, reg.get(version), model), key="customer_id",
                             threshold=0.5)
        auc[version] = roc_auc_score(rows["label"], scored["score"])
    assert auc["2"] > auc["1"], auc
    assert f"new champion v2 auc {auc['2']:.3f}, old champion v1 auc {auc['1']:.3f}" in demo.out


def test_estimated_performance_before_labels_and_its_error_once_they_matured(spark, demo: DemoRun) -> None:
    store = open_store(spark, StorageConfig(), str(demo.workspace))
    rows = store.read("monitor_metrics").filter((F.col("model") == "churn") & (F.col("slice") == "__all__")).cache()
    est = {r["run_date"]: r for r in rows.filter((F.col("metric") == "estimated_auc")
                                                 & (F.col("window_end") == F.col("run_date"))).collect()}
    assert sorted(est) == [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    assert all(0.5 < r["value"] < 1 and r["threshold"] < r["value"] + 0.2 for r in est.values())
    errors = rows.filter(F.col("metric") == "estimated_error_auc").collect()
    assert errors and all(r["window_end"] < r["run_date"] and r["value"] is not None for r in errors)
    rows.unpersist()


SHORT = ["--customers", "300", "--seed", "5", "--days", "50", "--stable-days", "3"]
# Shorter still (2 stable days, 4 after the shift), for the native pass's comparison of the two backends.
BRIEF = ["--customers", "300", "--seed", "5", "--days", "44", "--stable-days", "2"]


def test_demo_reruns_identically(spark, tmp_path: Path) -> None:
    """The same (short) scenario in two workspaces: identical tables and identical model metrics."""
    clear_cache()
    once = run_demo(tmp_path / "once", SHORT)
    clear_cache()
    again = run_demo(tmp_path / "again", SHORT)
    first, second = tables(spark, once.workspace), tables(spark, again.workspace)
    for name, df in first.items():
        # Identical rows; doubles to 1e-12: Spark merges float partial aggregates (means, stds, quantile
        # summaries) in task-completion order, so a few values (seen: wasserstein_norm) differ in the last bits.
        assert_approx_df_equality(df, second[name], 1e-12, ignore_nullable=True)

    def gate_tags(workspace: Path) -> list[dict[str, str]]:
        return [{k: v for k, v in info.tags.items() if k.startswith("driftline.gate.")}
                for info in registry(workspace).versions()]

    assert gate_tags(again.workspace) == gate_tags(once.workspace)


@pytest.mark.both_backends
def test_on_the_native_pass_the_demo_writes_delta_spark_tables_equal_to_the_embedded_ones(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first command on delta-spark (a short scenario: the whole one runs on the embedded pass)."""
    if TEST_BACKEND != "native":
        pytest.skip("runs on the native pass; the embedded pass runs the whole scenario (test_demo_tells_its_story)")
    clear_cache()
    native = run_demo(tmp_path / "native", BRIEF)
    for name in (*tables(spark, native.workspace), "churn__daily_profiles", "reference_profiles"):
        path = native.workspace / "tables" / name
        commits = sorted((path / "_delta_log").glob("*.json"))
        engines = {json.loads(line)["commitInfo"].get("engineInfo", "")
                   for f in commits for line in f.read_text().splitlines() if '"commitInfo"' in line}
        assert engines and all("Delta-Lake/" in e for e in engines), (name, engines)   # written by delta-spark
        assert DeltaTable(str(path)).version() == len(commits) - 1    # and delta-rs opens the latest version
    monkeypatch.setenv("DRIFTLINE_STORAGE_BACKEND", "embedded")
    clear_cache()
    embedded = run_demo(tmp_path / "embedded", BRIEF)

    def story(run: DemoRun) -> list[str]:   # the demo's story, without its timings and workspace path
        return re.sub(r"[\d.]+ s\b", "", run.out.replace(str(run.workspace), "<ws>")).splitlines()

    assert story(native) == story(embedded)
    first, second = tables(spark, native.workspace), tables(spark, embedded.workspace)
    for name, df in first.items():
        assert_approx_df_equality(df, second[name], 1e-12, ignore_nullable=True)


def test_demo_workspace_is_reused_only_when_a_demo_made_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert prepare_workspace(ws) is False and (ws / ".driftline-demo").is_file()
    (ws / "tables").mkdir()
    assert prepare_workspace(ws) is True and list(ws.iterdir()) == [ws / ".driftline-demo"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(UsageError, match=r"^--workspace: expected an empty folder or a previous demo's workspace"):
        prepare_workspace(other)
    assert (other / "keep.txt").read_text() == "user data"


def test_demo_bad_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--customers", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "driftline demo: error: argument --customers: expected a whole number, found 'many' (see driftline demo --help)"


def test_demo_too_many_stable_days_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *ARGS, "--stable-days", "30", "--workspace", "/nonexistent/never-made"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("driftline demo: error: --stable-days: expected at most 21 stable days")


def test_demo_too_few_days_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--days", "30", "--workspace", "/nonexistent/never-made"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("driftline demo: error: --days: expected more than 41 days (the world changes on day 40), "
                       "found 30")
