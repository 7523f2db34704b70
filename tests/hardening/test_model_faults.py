"""Secrets never leak, and bad data reaches score / monitor / retrain without a crash (R7, R8, R12, R13).

Workspace: the train job tests' ``env`` (model ``jt``: features 02-08..03-01 with nulls, late
labels) plus the prepare_features tests' ``shop`` sources. One real ``python`` process runs the
public jobs in a row — prepare_features (shop), train, score, monitor and retrain (jt) — with
secrets in its environment (MLflow, AWS, Azure, Databricks tokens) and one in the config
(``runtime.spark_conf`` holding an S3 secret key, given with ``--set``). Afterwards every byte the
process printed and every file under the workspaces (Parquet, ``_delta_log`` JSON, the MLflow
SQLite database and artifacts, HTML reports, Spark scratch) is searched for the secrets.

The fault cases then reuse that workspace (champion v1, predictions 02-26..03-01) in this process
through `run_job`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from driftline.cli.runner import run_job
from driftline.registry.client import clear_cache
from driftline.tables import CommitInfo
from driftline.vocabulary import CHAMPION
from tests.jobs.test_prepare_features import Env
from tests.jobs.test_score import registry_of, store_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
D = dt.date(2026, 3, 1)
DATES = [dt.date(2026, 2, 26), dt.date(2026, 2, 27), dt.date(2026, 2, 28), D]
WINDOW = ("--set", "monitoring.window_days=4")
ENV_SECRETS = ("MLFLOW_TRACKING_TOKEN", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY", "DATABRICKS_TOKEN",
               "MLFLOW_TRACKING_PASSWORD")

CHILD = textwrap.dedent("""
    import sys
    from driftline.cli.main import main

    conf, shop_conf, shop_ws, secret = sys.argv[1:5]
    sets = ["--set", "runtime.spark_conf={spark.hadoop.fs.s3a.secret.key: %s}" % secret]
    jt = ["--model", "jt", "--conf-dir", conf, *sets]
    codes = [
        main(["prepare_features", "--model", "shop", "--conf-dir", shop_conf, "--workspace", shop_ws,
              "--from", "2026-03-09", "--to", "2026-03-10", *sets]),
        main(["train", *jt, "--date", "2026-03-01"]),
        main(["score", *jt, "--from", "2026-02-26", "--to", "2026-03-01"]),
        main(["monitor", *jt, "--date", "2026-03-01", "--set", "monitoring.window_days=4"]),
        main(["retrain", *jt, "--date", "2026-03-01", "--set", "monitoring.window_days=4"]),
        main(["models", "list", *jt]),
    ]
    print("exit codes:", codes)
    sys.exit(max(codes))
""")


def hits(secret: str, texts: dict[str, str], roots: list[Path]) -> list[str]:
    """Where ``secret`` occurs: names of the texts and every file under ``roots`` holding its bytes."""
    found = [name for name, text in texts.items() if secret in text]
    needle = secret.encode()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path))
    return found


@pytest.fixture(scope="module")
def ran(env, spark, tmp_path_factory):
    """The subprocess run with secrets, and what it left: exit code, output, workspaces."""
    shop = Env(spark, tmp_path_factory.mktemp("shop"))
    shop.sources()
    env_secrets = {name: f"sekrit-{name.lower()}-{secrets.token_hex(12)}" for name in ENV_SECRETS}
    config_secret = f"sekrit-config-{secrets.token_hex(12)}"
    child_env = {**os.environ, **env_secrets,
                 "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(env["conf"]), str(shop.conf), str(shop.workspace),
                           config_secret], env=child_env, capture_output=True, text=True, timeout=1500,
                          cwd=env["ws"])
    clear_cache()
    return {"env": env, "proc": proc, "env_secrets": env_secrets, "config_secret": config_secret,
            "roots": [Path(env["ws"]), Path(env["conf"]), shop.workspace, shop.conf]}


def test_jobs_run_with_secrets_in_the_environment_and_none_is_logged_or_stored(ran) -> None:
    proc = ran["proc"]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "exit codes: [0, 0, 0, 0, 0, 0]" in proc.stdout
    env = ran["env"]
    # the run really wrote what we search: tables with Delta logs, MLflow db + artifacts, a report
    ws = Path(env["ws"])
    assert (ws / "mlflow.db").is_file() and any((ws / "mlartifacts").rglob("*.skops"))
    assert any(ws.rglob("_delta_log/*.json")) and any(ws.rglob("*.parquet")) and any(ws.rglob("*.html"))
    assert registry_of(env, "jt").alias(CHAMPION).version == "1"
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    for name, secret in ran["env_secrets"].items():
        assert hits(secret, texts, ran["roots"]) == [], name
    # the config secret is masked in the logged resolved config ...
    assert '"spark.hadoop.fs.s3a.secret.key": "***"' in proc.stderr
    # ... and never reaches a table, the MLflow store, a report or a commit's metadata
    assert hits(ran["config_secret"], {}, ran["roots"]) == []


def test_commit_metadata_and_mlflow_hold_no_environment_values(ran) -> None:
    env = ran["env"]
    store = store_of(env)
    allowed = {"job", "run_id", "date", "code_version", "config_hash", "idempotency_key", "txn_version", "extra",
               "version", "timestamp", "operation"}
    for table in ("jt__predictions", "scoring_stats", "monitor_metrics", "monitor_runs", "reference_profiles",
                  "retrain_decisions"):
        for entry in store.history(table):
            assert set(entry) <= allowed
            assert all(not isinstance(v, str) or "sekrit" not in v for v in entry.values())
    reg = registry_of(env, "jt")
    run = reg.client.get_run(reg.get("1").run_id)
    everything = " ".join([*run.data.params.values(), *run.data.tags.values(), *reg.get("1").tags.values()])
    assert "sekrit" not in everything
    assert not any(k.lower().startswith(("env", "aws", "azure", "databricks")) for k in run.data.params)


def test_a_secret_given_with_set_is_not_printed(ran) -> None:
    assert ran["config_secret"] not in ran["proc"].stderr


# --------------------------------------------------------------------------- R7, R8: missing / empty input


def versions(env, *tables: str) -> tuple[int, ...]:
    store = store_of(env)
    return tuple(store.version(t) for t in tables)


def one_error_line(err: str, job: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"driftline {job}: error:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def test_r7_score_for_a_date_without_features_exits_1_and_writes_nothing(ran, capsys) -> None:
    env = ran["env"]
    before = versions(env, "jt__predictions", "scoring_stats")
    capsys.readouterr()
    code = run_job("score", ["--model", "jt", "--date", "2026-03-05", "--conf-dir", str(env["conf"])])
    assert code == 1
    assert one_error_line(capsys.readouterr().err, "score") == (
        "driftline score: error: table jt__features: expected feature rows for as_of_date 2026-03-05, found none "
        "(run prepare_features --date 2026-03-05)")
    assert versions(env, "jt__predictions", "scoring_stats") == before


def test_r8_empty_window_is_never_no_drift_and_fires_no_retrain(ran, capsys) -> None:
    env = ran["env"]
    store = store_of(env)
    tables = ("monitor_metrics", "monitor_runs")
    before = versions(env, *tables)
    capsys.readouterr()
    day = "2026-03-05"                                         # nothing scored on 03-02..03-05
    assert run_job("monitor", ["--model", "jt", "--date", day, "--conf-dir", str(env["conf"]), *WINDOW]) == 1
    assert one_error_line(capsys.readouterr().err, "monitor") == (
        "driftline monitor: error: table jt__predictions: expected champion predictions for score_date "
        f"2026-03-02..{day}, found none (run driftline score --from 2026-03-02 --to {day})")
    assert versions(env, *tables) == before                  # no "no drift" row for the empty window
    assert store.read("monitor_runs").filter(F.col("run_date") == dt.date(2026, 3, 5)).count() == 0
    # the retrain policy then sees no window for that date: no trigger, nothing trained
    versions_before = [v.version for v in registry_of(env, "jt").versions()]
    code = run_job("retrain", ["--model", "jt", "--date", day, "--conf-dir", str(env["conf"]), *WINDOW,
                               "--set", "retrain.drift.k=1", "--set", "retrain.drift.n=1"])
    assert code == 0, capsys.readouterr().err[-2000:]
    row = store.read("retrain_decisions").filter(F.col("decision_date") == dt.date(2026, 3, 5)).collect()
    assert [(r["fired"], r["train_status"]) for r in row] == [(False, "not_run")]
    assert [v.version for v in registry_of(env, "jt").versions()] == versions_before


# --------------------------------------------------------------------------- R12, R13 through score and monitor


@pytest.fixture(scope="module")
def bad_values(ran):
    """02-26..03-01 rewritten with x1 = +inf, -inf, 1e300, -1e300 in four rows a day and x2 null in every
    row, then scored and monitored (window 02-26..03-01) through the jobs; returns what they wrote."""
    env = ran["env"]
    store = store_of(env)
    feats = store.read("jt__features", partitions={"as_of_date": DATES})
    rank = F.dense_rank().over(Window.partitionBy("as_of_date").orderBy("customer_id"))
    bad = (feats.withColumn("_r", rank)
           .withColumn("x1", F.when(F.col("_r") == 1, F.lit(float("inf")))
                       .when(F.col("_r") == 2, F.lit(float("-inf")))
                       .when(F.col("_r") == 3, F.lit(1e300))
                       .when(F.col("_r") == 4, F.lit(-1e300)).otherwise(F.col("x1")))
           .withColumn("x2", F.lit(None).cast("double")).drop("_r").localCheckpoint())
    commit = CommitInfo(job="test", run_id="setup", key="bad-values", code_version="t", config_hash="t")
    store.replace_partitions("jt__features", bad, ["as_of_date"], commit, partitions=[{"as_of_date": d} for d in DATES])
    conf = ["--model", "jt", "--conf-dir", str(env["conf"])]
    score_code = run_job("score", [*conf, "--from", str(DATES[0]), "--to", str(D)])
    monitor_code = run_job("monitor", [*conf, "--date", str(D), *WINDOW]) if score_code == 0 else None
    preds = store.read("jt__predictions", partitions={"score_date": DATES}).toPandas()
    stats = {(r["role"], r["column"], r["metric"]): r["value"]
             for r in store.read("scoring_stats").filter(F.col("score_date") == D).collect()}
    rows = [r.asDict() for r in store.read("monitor_metrics")
            .filter((F.col("run_date") == D) & (F.col("baseline") == "reference")
                    & (F.col("window_end") == F.col("run_date"))).collect()]
    [run] = store.read("monitor_runs").filter(F.col("run_date") == D).collect()
    return {"score": score_code, "monitor": monitor_code, "preds": preds, "stats": stats,
            "metrics": {(r["column"], r["metric"]): r for r in rows}, "run": run.asDict()}


def test_r12_inf_and_extremes_through_score_are_scored_as_missing_and_counted(bad_values) -> None:
    assert bad_values["score"] == 0
    preds, stats = bad_values["preds"], bad_values["stats"]
    assert len(preds) == 4 * 40 and np.isfinite(preds["score"]).all() and preds["score"].between(0, 1).all()
    assert stats[(None, "x1", "invalid_rate")] == pytest.approx(2 / 40)          # +inf and -inf
    assert stats[(None, "x2", "invalid_rate")] == 0 and stats[(None, "x2", "null_rate")] == 1.0   # R13
    assert all(v is None or math.isfinite(v) for v in stats.values())


def test_r12_and_r13_through_monitor_no_crash_extremes_counted_all_null_not_computable(bad_values) -> None:
    assert bad_values["monitor"] == 0
    got = bad_values["metrics"]
    # R12: ±inf and ±1e300 (4 of 40 rows a day) land in the outer bins; min/max are the finite extremes
    assert got[("x1", "out_of_range_share")]["value"] == pytest.approx(16 / 152)      # 16 of 152 non-null values
    assert (got[("x1", "max")]["value"], got[("x1", "min")]["value"]) == (1e300, -1e300)
    assert got[("x1", "max")]["status"] == "warn" and got[("x1", "min")]["status"] == "warn"
    assert got[("x1", "drift")]["status"] in ("ok", "alert") and got[("x1", "drift")]["value"] is not None
    # R13: completeness 0 is a quality warning; drift is not computable, with the reason
    assert (got[("x2", "null_rate")]["value"], got[("x2", "null_rate")]["status"]) == (1.0, "warn")
    x2 = got[("x2", "drift")]
    assert (x2["status"], x2["value"]) == ("insufficient_data", None)
    assert x2["reason"] == "current has 0 non-missing values, expected at least 100 (monitoring.drift.min_rows)"
    assert got[("__dataset__", "insufficient_columns")]["value"] == 1.0
    assert bad_values["run"]["quality_status"] == "warn" and bad_values["run"]["status"] != "insufficient_data"


def test_r12_every_monitor_statistic_stays_finite(bad_values) -> None:
    assert bad_values["monitor"] == 0
    rows = bad_values["metrics"].values()
    assert [(r["column"], r["metric"], r["value"]) for r in rows
            if r["value"] is not None and not math.isfinite(r["value"])] == []
