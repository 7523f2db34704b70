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
from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
from driftline.registry.profiles import read_reference_rows
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig

pytestmark = pytest.mark.slow

ARGS = ["--days", "34", "--customers", "400", "--seed", "3"]
# Columns that legitimately differ between two runs of the same job: who ran it and when.
RUN_COLUMNS = {"run_id", "scored_at", "computed_at", "created_at", "started_at"}


def tables(spark, workspace: Path) -> dict[str, object]:
    store = open_store(spark, StorageConfig(), str(workspace))
    names = ["churn_customers", "churn_events", "churn_labels", "churn__features", "quality_results", "quarantine",
             "churn__predictions", "scoring_stats", "monitor_metrics", "monitor_runs"]
    out = {}
    for name in names:
        df = store.read(name)
        keep = [c for c in df.columns if c not in RUN_COLUMNS]
        out[name] = df.select(*keep).orderBy(*keep)
    return out


def test_demo_tells_its_story_and_reruns_identically(spark, conf_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "demo"
    argv = ["demo", *ARGS, "--workspace", str(workspace), "--conf-dir", str(conf_dir)]

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "driftline demo: 400 customers, 34 days from 2026-01-01 (seed 3)" in out
    assert re.search(r"\[2\] prepare_features 2026-01-02\.\.2026-02-03 \(one backfill job\) in [\d.]+ s: "
                     r"[\d,]+ feature rows over 33 dates", out)
    # the new channel appears on the new-category day: the allowed_values warning names those dates
    assert "data quality: allowed_values_events_channel warn on" in out
    assert re.search(r"version 1: trained .* validation auc 0\.\d{3}, gate passed, aliases champion", out)
    assert re.search(r"\[4\] score 2026-01-21\.\.2026-02-03 with the champion in [\d.]+ s:", out)
    assert re.search(r"\[5\] monitor 2026-01-21\.\.2026-02-03 \(1-day windows .*\n    14 windows: dataset drift on", out)
    assert f"latest HTML report: {workspace}/reports/churn/2026-02-03.html" in out
    assert (workspace / "reports" / "churn" / "2026-02-03.html").is_file()
    assert f"mlflow ui --backend-store-uri sqlite:///{workspace}/mlflow.db" in out

    setup = tracking_setup(spark_free_mlflow_config(conf_dir), str(workspace))
    registry = ModelRegistry(setup, "churn")
    assert [v.version for v in registry.versions()] == ["1"]
    champion = registry.alias("champion")
    assert champion is not None and champion.version == "1"
    store = open_store(spark, StorageConfig(), str(workspace))
    assert read_reference_rows(store, "churn", "1").count() > 0
    first = tables(spark, workspace)

    clear_cache()
    assert main(argv) == 0
    rerun = capsys.readouterr().out
    # The rerun rewrites the feature partitions (a new table version), so train runs again on the
    # same rows: training is reproducible, the equal challenger fails the gate, the champion stays.
    v1, v2 = ModelRegistry(setup, "churn").versions()
    assert v2.tags["driftline.gate.challenger"] == v1.tags["driftline.gate.challenger"]
    assert v2.tags["driftline.gate.passed"] == "false"
    assert ModelRegistry(setup, "churn").alias("champion").version == "1"
    assert re.search(r"version 2: .* gate failed", rerun)
    second = tables(spark, workspace)
    for name, df in first.items():
        assert_df_equality(df, second[name], ignore_nullable=True)


def spark_free_mlflow_config(conf_dir: Path):
    from driftline.config import load_config

    return load_config("churn", str(conf_dir), (), None).config.mlflow


def test_demo_bad_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--customers", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "driftline demo: error: argument --customers: expected a whole number, found 'many'"
