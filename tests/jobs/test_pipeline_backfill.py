"""An interrupted backfill, resumed, ends with the same tables as an uninterrupted one.

Two workspaces get the same inputs (model ``bf``: events, customers, labels and features 02-13..03-01,
computed once and copied; champion v1 trained in each for 03-02). Event amounts and counts jump from 03-02 on, so the
features of 03-03 and 03-04 drift and the retrain policy (dataset drift in 2 of the last 2 windows)
fires on 03-04: the backfill trains and gates a challenger.

- workspace ``a``: ``driftline pipeline --from 03-02 --to 03-04`` in a real process, killed (SIGKILL
  of its process group, the Spark JVM included) as soon as ``pipeline_runs`` shows 03-02 complete,
  i.e. in the middle of 03-03; then the same command again, which skips 03-02 and finishes;
- workspace ``b``: the same command once, uninterrupted.

Every Delta table of the two workspaces is then compared row for row with chispa, minus the columns
that legitimately differ between two runs (`RUN_COLUMNS`: run ids, timestamps, durations, the
workspace-dependent report path); the model registries hold the same versions, gate numbers and champion.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from chispa import assert_approx_df_equality
from deltalake import DeltaTable
from pyspark.sql import types as T

from driftline.cli.runner import run_job
from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
from driftline.tables import CommitInfo, open_store
from driftline.tables.spec import StorageConfig
from driftline.vocabulary import CHAMPION
from tests.jobs.test_train import MODEL

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

U = dt.UTC
A, MID, B = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)
SHIFT_FROM = A                                     # events on and after 03-02 are shifted
CUSTOMERS = 40
FIRST_FEATURES = dt.date(2026, 2, 13)              # the training windows of 03-02 and 03-04 start on 02-13, 02-15
BF = {
    **MODEL, "name": "bf",
    "sources": {
        "events": {"table": "bf_events", "key": "customer_id", "timestamp": "event_ts"},
        "entities": {"table": "bf_customers", "key": "customer_id"},
        "labels": {"table": "bf_labels", "key": "customer_id", "timestamp": "label_ts", "value": "churned"},
    },
    "monitoring": {"drift": {"bins": 5, "top_k": 2, "min_rows": 10}},
    "retrain": {"drift": {"k": 2, "n": 2}},
}
# Columns that legitimately differ between two runs of the same job: who ran it, when, how long, where,
# and from which commit (code_version is the checkout's HEAD, which may move between the runs).
RUN_COLUMNS = {"run_id", "train_run_id", "mlflow_run_id", "started_at", "created_at", "scored_at", "computed_at",
               "completed_at", "elapsed_seconds", "report_path", "code_version"}


def source(store, spark, name: str, rows: list[tuple], schema: T.StructType) -> None:
    from pyspark.sql import functions as F

    df = spark.createDataFrame(rows, schema).withColumn("batch", F.lit("all"))
    commit = CommitInfo(job="test", run_id="setup", key=name, code_version="t", config_hash="t")
    store.replace_partitions(name, df, ["batch"], commit, partitions=[{"batch": "all"}])


def inputs() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Events 02-06..03-03 (shifted from 03-02), customers, labels for as-of dates 02-13..03-04."""
    rng = np.random.default_rng(8)
    plans = [["basic", "pro", "team"][c % 3] for c in range(CUSTOMERS)]
    events, labels = [], []
    day = dt.date(2026, 2, 6)
    while day <= B:
        for c in range(CUSTOMERS):
            key = f"c{c:03d}"
            if day < B:
                shifted = day >= SHIFT_FROM
                n = int(rng.integers(4, 7)) if shifted else int(rng.integers(1, 3))
                for h in sorted(rng.choice(24, size=n, replace=False)):
                    amount = float(rng.normal(30 if shifted else 10, 3))
                    events.append((key, dt.datetime.combine(day, dt.time(int(h)), U), amount))
            if day >= FIRST_FEATURES:
                churned = int(rng.random() < (0.6 if plans[c] == "pro" else 0.25))
                known = dt.datetime.combine(day + dt.timedelta(days=MODEL["label"]["horizon_days"]), dt.time(), U)
                labels.append((key, day, known - dt.timedelta(hours=1), churned))
        day += dt.timedelta(days=1)
    customers = [(f"c{c:03d}", plans[c]) for c in range(CUSTOMERS)]
    return events, customers, labels


def sources_and_features(spark, conf: Path, ws: Path) -> None:
    """Source tables and features 02-13..03-01 in workspace ``ws``."""
    store = open_store(spark, StorageConfig(), ws)
    events, customers, labels = inputs()
    source(store, spark, "bf_events", events, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("event_ts", T.TimestampType()),
        T.StructField("amount", T.DoubleType())]))
    source(store, spark, "bf_customers", customers, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("plan", T.StringType())]))
    source(store, spark, "bf_labels", labels, T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("label_ts", T.TimestampType()), T.StructField("churned", T.IntegerType())]))
    args = ["--model", "bf", "--conf-dir", str(conf), "--workspace", str(ws)]
    assert run_job("prepare_features", [*args, "--from", str(FIRST_FEATURES), "--to", "2026-03-01"]) == 0


def champion(conf: Path, ws: Path) -> None:
    """Champion v1 of ``bf`` trained for 03-02 in workspace ``ws``."""
    clear_cache()
    assert run_job("train", ["--model", "bf", "--conf-dir", str(conf), "--workspace", str(ws), "--date", str(A)]) == 0
    reg = registry(conf, ws)
    if reg.alias(CHAMPION) is None:                  # the first gate is not what this test is about
        reg.promote("1", "test")


def registry(conf: Path, ws: Path) -> ModelRegistry:
    from driftline.config import load_config

    cfg = load_config("bf", conf, [], str(ws)).config
    return ModelRegistry(tracking_setup(cfg.mlflow, ws), "bf")


def start_pipeline(conf: Path, ws: Path, log: Path) -> subprocess.Popen:
    """``driftline pipeline --from A --to B`` as its own process group (so a kill takes the JVM too)."""
    cmd = [sys.executable, "-m", "driftline.cli.main", "pipeline", "--model", "bf", "--from", str(A), "--to", str(B),
           "--conf-dir", str(conf), "--workspace", str(ws)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2] / "lib"),
                                                                     os.environ.get("PYTHONPATH")]))}
    out = log.open("w")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path) -> str:
    code = proc.wait(timeout=1200)
    text = log.read_text()
    assert code == 0, text[-4000:]
    return text


def completed(ws: Path) -> set[dt.date]:
    """Dates in ``pipeline_runs``, read with delta-rs (no Spark) while the pipeline process runs."""
    path = ws / "tables" / "pipeline_runs"
    if not DeltaTable.is_deltatable(str(path)):
        return set()
    return set(DeltaTable(str(path)).to_pyarrow_table(columns=["run_date"]).column("run_date").to_pylist())


def tables(spark, ws: Path) -> dict[str, object]:
    """Every Delta table of the workspace, without `RUN_COLUMNS`, rows sorted."""
    store = open_store(spark, StorageConfig(), ws)
    out = {}
    for path in sorted(p for p in (ws / "tables").iterdir() if (p / "_delta_log").is_dir()):
        df = store.read(path.name)
        keep = [c for c in df.columns if c not in RUN_COLUMNS]
        out[path.name] = df.select(*keep).orderBy(*keep)
    return out


def test_interrupted_backfill_resumes_to_the_same_tables(spark, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "models").mkdir(parents=True)
    (conf / "base.yaml").write_text(yaml.safe_dump({
        "runtime": {"master": "local[2]", "shuffle_partitions": 2}}))
    (conf / "models" / "bf.yaml").write_text(yaml.safe_dump(BF))
    template, ws_a, ws_b = tmp_path / "template", tmp_path / "a", tmp_path / "b"
    sources_and_features(spark, conf, template)
    for ws in (ws_a, ws_b):                          # Delta logs hold relative paths: a copy is the same table
        shutil.copytree(template / "tables", ws / "tables")
        champion(conf, ws)

    # a: killed in the middle of 03-03, then the same command again
    proc = start_pipeline(conf, ws_a, tmp_path / "a-1.log")
    deadline = time.monotonic() + 600
    # the date's pipeline_runs row committed and its closing line logged (delta-spark looks its commit up in
    # the history after the save, so the line can follow the commit by a moment)
    while not completed(ws_a) or f"pipeline bf {A} [date 1/3]: completed in " not in (tmp_path / "a-1.log").read_text():
        assert proc.poll() is None, (tmp_path / "a-1.log").read_text()[-4000:]
        assert time.monotonic() < deadline, "the pipeline did not complete its first date in 600 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert completed(ws_a) == {A}                    # killed before 03-03 completed
    first = (tmp_path / "a-1.log").read_text()
    assert f"pipeline bf {A} [date 1/3]: completed in " in first
    assert f"pipeline bf {MID} [date 2/3]: completed" not in first
    resumed = finish(start_pipeline(conf, ws_a, tmp_path / "a-2.log"), tmp_path / "a-2.log")
    assert "pipeline bf: 1 of 3 dates already completed with config" in resumed
    assert f"pipeline bf {MID} [date 1/2, step 1/4] prepare_features: ok in " in resumed
    assert f"pipeline bf {A} [date" not in resumed

    # b: uninterrupted
    log_b = finish(start_pipeline(conf, ws_b, tmp_path / "b.log"), tmp_path / "b.log")
    # a log a person reads: the config once, one session, one line per step, no Spark start-up warnings
    assert log_b.count("resolved config") == 1 and log_b.count("session ready") == 1
    assert len([line for line in log_b.splitlines() if "[date " in line and ", step " in line]) == 3 * 4
    assert " WARN " not in log_b and "log4j" not in log_b

    got, want = tables(spark, ws_a), tables(spark, ws_b)
    assert sorted(got) == sorted(want)
    assert {"bf__features", "bf__predictions", "monitor_metrics", "monitor_runs", "retrain_decisions",
            "pipeline_runs", "reference_profiles"} <= set(got)
    for name, df in want.items():
        # doubles to 1e-12: Spark merges float partial aggregates in task-completion order (last bits may differ)
        assert_approx_df_equality(got[name], df, 1e-12, ignore_nullable=True)

    # the scenario did what it is for: drift on 03-03 and 03-04, a retrain fired on 03-04 only
    decisions = {r["decision_date"]: r for r in got["retrain_decisions"].collect()}
    assert {d: r["status"] for d, r in decisions.items()} == {A: "no_trigger", MID: "no_trigger", B: "fired"}
    assert decisions[B]["train_status"] == "trained" and decisions[B]["trained_version"] == "2"
    assert sorted(r["run_date"] for r in got["pipeline_runs"].collect()) == [A, MID, B]

    # the registries agree: same versions, same gate numbers, same champion
    clear_cache()
    reg_a, reg_b = registry(conf, ws_a), registry(conf, ws_b)

    def gates(reg: ModelRegistry) -> list[dict[str, str]]:
        return [{k: v for k, v in info.tags.items() if k.startswith("driftline.gate.")} for info in reg.versions()]

    assert [v.version for v in reg_a.versions()] == ["1", "2"] == [v.version for v in reg_b.versions()]
    assert gates(reg_a) == gates(reg_b)
    assert reg_a.alias(CHAMPION).version == reg_b.alias(CHAMPION).version
