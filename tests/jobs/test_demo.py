"""`driftline demo` end to end on a short scenario: what the README's first command runs.

The demo must work from the command a new user types, tell its story with numbers, and be safe to
rerun: a second run over the same workspace leaves every table it wrote with identical rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chispa import assert_df_equality

from driftline.cli.main import main
from driftline.demo.run import prepare_workspace
from driftline.errors import UsageError
from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
from driftline.registry.profiles import read_reference_rows
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig

pytestmark = pytest.mark.slow

ARGS = ["--days", "34", "--customers", "400", "--seed", "3"]
# Columns that legitimately differ between two runs of the same job: who ran it and when.
RUN_COLUMNS = {"run_id", "scored_at", "computed_at", "created_at", "started_at", "train_run_id", "report_path",
               "mlflow_run_id"}


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


def test_demo_tells_its_story_and_reruns_identically(spark, conf_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    workspace, again = tmp_path / "demo", tmp_path / "again"

    assert main(["demo", *ARGS, "--workspace", str(workspace), "--conf-dir", str(conf_dir)]) == 0
    out = capsys.readouterr().out
    assert "driftline demo: 400 customers, 34 days from 2026-01-01 (seed 3)" in out
    assert re.search(r"\[2\] prepare_features 2026-01-02\.\.2026-02-03 \(one backfill job\) in [\d.]+ s: "
                     r"[\d,]+ feature rows over 33 dates", out)
    # the new channel appears on the new-category day: the allowed_values warning names those dates
    assert "data quality: allowed_values_events_channel warn on" in out
    assert re.search(r"version 1: trained .* validation auc 0\.\d{3}, gate passed", out)
    assert "[4] day by day 2026-01-21..2026-02-03: score with the champion" in out
    days = re.findall(r"\n    (2026-\d\d-\d\d): champion v\d+, [\d,]+ rows, \d+ of \d+ columns drifted.*; retrain: (\w+)", out)
    assert [d for d, _ in days] == [f"2026-01-{d}" for d in range(21, 32)] + ["2026-02-01", "2026-02-02", "2026-02-03"]
    assert re.search(r"\n    14 windows: dataset drift on \d+", out)
    assert f"latest HTML report: {workspace}/reports/churn/2026-02-03.html" in out
    assert (workspace / "reports" / "churn" / "2026-02-03.html").is_file()
    assert f"mlflow ui --backend-store-uri sqlite:///{workspace}/mlflow.db" in out

    setup = tracking_setup(spark_free_mlflow_config(conf_dir), str(workspace))
    versions = ModelRegistry(setup, "churn").versions()
    fired = [s for _, s in days if s == "fired"]
    assert len(versions) == 1 + len(fired)  # the first champion plus one version per fired retrain
    store = open_store(spark, StorageConfig(), str(workspace))
    assert read_reference_rows(store, "churn", "1").count() > 0

    # The same scenario in another workspace: identical tables and identical model metrics.
    clear_cache()
    assert main(["demo", *ARGS, "--workspace", str(again), "--conf-dir", str(conf_dir)]) == 0
    capsys.readouterr()
    first, second = tables(spark, workspace), tables(spark, again)
    for name, df in first.items():
        assert_df_equality(df, second[name], ignore_nullable=True)
    metrics_of = [{k: v for k, v in info.tags.items() if k.startswith("driftline.gate.")}
                  for info in ModelRegistry(tracking_setup(spark_free_mlflow_config(conf_dir), str(again)),
                                            "churn").versions()]
    assert metrics_of == [{k: v for k, v in info.tags.items() if k.startswith("driftline.gate.")} for info in versions]


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


def spark_free_mlflow_config(conf_dir: Path):
    from driftline.config import load_config

    return load_config("churn", str(conf_dir), (), None).config.mlflow


def test_demo_bad_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--customers", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "driftline demo: error: argument --customers: expected a whole number, found 'many'"
