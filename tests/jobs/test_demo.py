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
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from driftline.cli.demo import prepare_workspace
from driftline.cli.main import main
from driftline.demo import Scenario
from driftline.errors import UsageError
from driftline.jobs.score import signature_of
from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
from driftline.registry.profiles import read_reference_rows
from driftline.scoring.core import score_frame
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from tests.conftest import ROOT

# 42 days: shift on day 25 (2026-01-26), 3 stable days monitored before it (first champion trained on
# 2026-01-23), post-shift labels of as-of 2026-01-26..28 matured by the last day (2026-02-11).
SCENARIO = Scenario(customers=400, days=42, seed=3)
STABLE_DAYS = 3
ARGS = ["--days", "42", "--customers", "400", "--seed", "3", "--stable-days", str(STABLE_DAYS)]
SHIFT = SCENARIO.date(SCENARIO.phases.shift_day)
FIRST = SHIFT - dt.timedelta(days=STABLE_DAYS)
CONF = ROOT / "conf"
# Columns that legitimately differ between two runs of the same job: who ran it and when.
RUN_COLUMNS = {"run_id", "scored_at", "computed_at", "created_at", "started_at", "train_run_id", "report_path",
               "mlflow_run_id"}


@dataclass(frozen=True)
class DemoRun:
    workspace: Path
    out: str


def run_demo(workspace: Path) -> DemoRun:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", *ARGS, "--workspace", str(workspace), "--conf-dir", str(CONF)])
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
    assert "driftline demo: 400 customers, 42 days from 2026-01-01 (seed 3)" in out
    assert re.search(r"\[2\] prepare_features 2026-01-02\.\.2026-02-11 \(one backfill job\) in [\d.]+ s: "
                     r"[\d,]+ feature rows over 41 dates", out)
    # the new channel appears on the new-category day: the allowed_values warning names those dates
    assert "data quality: allowed_values_events_channel warn on" in out
    assert re.search(r"version 1: trained .* validation auc 0\.\d{3}, gate passed", out)
    assert f"[4] day by day {FIRST}..2026-02-11 ({STABLE_DAYS} stable day(s), then the shift from {SHIFT})" in out
    days = day_lines(out)
    expected = [FIRST + dt.timedelta(days=i) for i in range((SCENARIO.end - FIRST).days + 1)]
    assert [d for d, _, _ in days] == [str(d) for d in expected]
    assert [p for _, p, _ in days] == ["stable"] * STABLE_DAYS + ["shift "] * (len(expected) - STABLE_DAYS)
    assert re.search(rf"\n    {STABLE_DAYS} window\(s\) stable: dataset drift on [01]\b", out)
    assert re.search(rf"\n    {len(expected) - STABLE_DAYS} window\(s\) from the shift on: dataset drift on \d+", out)
    assert re.search(r"\n    retrain fired on 2026-\d\d-\d\d \(.*\): v2 auc 0\.\d{3} vs champion 0\.\d{3} → promoted", out)
    assert f"latest HTML report: {workspace}/reports/churn/2026-02-11.html" in out
    assert (workspace / "reports" / "churn" / "2026-02-11.html").is_file()
    assert f"mlflow ui --backend-store-uri sqlite:///{workspace}/mlflow.db" in out
    store = open_store(spark, StorageConfig(), str(workspace))
    assert read_reference_rows(store, "churn", "1").count() > 0


def test_drift_on_the_drift_days_not_on_the_stable_days(spark, demo: DemoRun) -> None:
    store = open_store(spark, StorageConfig(), str(demo.workspace))
    runs = {r["run_date"]: r for r in store.read("monitor_runs").filter(F.col("model") == "churn").collect()}
    assert sorted(runs) == [FIRST + dt.timedelta(days=i) for i in range((SCENARIO.end - FIRST).days + 1)]
    stable = [d for d in runs if d < SHIFT]
    assert sum(runs[d]["dataset_drift"] for d in stable) <= len(stable) // 3  # no dataset drift on most stable days
    # From a week after the shift the 7-day features have fully moved: dataset drift on (nearly) every day.
    settled = [d for d in runs if d >= SHIFT + dt.timedelta(days=7)]
    assert sum(runs[d]["dataset_drift"] for d in settled) >= len(settled) - 1
    first_drift = min(d for d in runs if runs[d]["dataset_drift"] and d >= SHIFT)
    assert first_drift <= SHIFT + dt.timedelta(days=6)


def test_retrain_fires_once_after_the_shift_and_promotes(spark, demo: DemoRun) -> None:
    store = open_store(spark, StorageConfig(), str(demo.workspace))
    decisions = store.read("retrain_decisions").filter(F.col("model") == "churn").orderBy("decision_date").collect()
    assert len(decisions) == (SCENARIO.end - FIRST).days + 1  # one decision per monitored day
    fired = [d for d in decisions if d["fired"]]
    assert len(fired) == 1
    (retrain,) = fired
    assert SHIFT < retrain["decision_date"] <= SHIFT + dt.timedelta(days=8)
    assert (retrain["trained_version"], retrain["gate_passed"]) == ("2", True)
    reg = registry(demo.workspace)
    assert sorted(v.version for v in reg.versions()) == ["1", "2"]  # the first champion plus the retrain
    assert reg.alias("champion").version == "2"
    # the progress lines agree with the table
    assert [d for d, _, status in day_lines(demo.out) if status == "fired"] == [str(retrain["decision_date"])]


def test_new_champion_beats_the_old_one_on_post_shift_labels(spark, demo: DemoRun) -> None:
    """Both versions scored on every matured label of an as-of date from the shift on; sklearn is the oracle."""
    store = open_store(spark, StorageConfig(), str(demo.workspace))
    labels = (store.read("churn_labels").filter(F.col("as_of_date") >= F.lit(SHIFT))
              .select("customer_id", "as_of_date", F.col("churned").alias("label")))
    rows = store.read("churn__features").join(labels, ["customer_id", "as_of_date"]).orderBy(
        "as_of_date", "customer_id").toPandas()
    assert rows["as_of_date"].nunique() == SCENARIO.days - SCENARIO.horizon_days - SCENARIO.phases.shift_day
    assert len(rows) > 1000 and 30 < rows["label"].sum() < len(rows) - 30
    reg = registry(demo.workspace)
    auc = {}
    for version in ("1", "2"):
        model = reg.load(version)
        scored = score_frame(rows, model, signature_of(reg, reg.get(version), model), key="customer_id",
                             threshold=0.5)
        auc[version] = roc_auc_score(rows["label"], scored["score"])
    assert auc["2"] > auc["1"], auc


def test_demo_reruns_identically(spark, demo: DemoRun, tmp_path: Path) -> None:
    """The same scenario in another workspace: identical tables and identical model metrics."""
    clear_cache()
    again = run_demo(tmp_path / "again")
    first, second = tables(spark, demo.workspace), tables(spark, again.workspace)
    for name, df in first.items():
        # Identical rows; doubles to 1e-12: Spark merges float partial aggregates (means, stds, quantile
        # summaries) in task-completion order, so a few values (seen: wasserstein_norm) differ in the last bits.
        assert_approx_df_equality(df, second[name], 1e-12, ignore_nullable=True)

    def gate_tags(workspace: Path) -> list[dict[str, str]]:
        return [{k: v for k, v in info.tags.items() if k.startswith("driftline.gate.")}
                for info in registry(workspace).versions()]

    assert gate_tags(again.workspace) == gate_tags(demo.workspace)


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
    assert main(["demo", *ARGS, "--stable-days", "9", "--workspace", "/nonexistent/never-made"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("driftline demo: error: --days: expected a scenario long enough to train on labels")
