"""score and monitor under spark-submit on a real standalone cluster give the tables of local mode.

Inputs: the job tests' workspace (``jt``: 40 entities a day, two days scored, features with nulls, late labels),
a champion (v1, C=1) and a shadow challenger (v2, C=0.001) trained once. The workspace is then
copied twice; the same commands run in local mode (the runner in this process, ``local[2]``) on
one copy and with ``spark-submit --master spark://127.0.0.1:PORT jobs/<job>.py`` on a two-worker
cluster on the other. Every output table must be equal, row for row, except the columns that
name the run or its clock: ``run_id``, ``scored_at``, ``created_at``, ``started_at`` (and the
report path, which names the workspace, and ``code_version``, the git commit read at run time,
which only has to name this package version). Doubles are compared to 1e-9: the cluster adds partial
aggregates in another order than one local JVM.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import driftline
from driftline.cli.runner import run_job
from driftline.registry.client import clear_cache
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from driftline.vocabulary import CHAMPION
from tests.cluster.conftest import Cluster
from tests.jobs.test_score import registry_of

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FIRST, D = dt.date(2026, 2, 28), dt.date(2026, 3, 1)     # scored days; D closes a 2-day monitoring window
# 80 rows in the window: lower the floors so drift and performance are computed, not insufficient_data
SETTINGS = ["--set", "runtime.shuffle_partitions=2", "--set", "monitoring.window_days=2",
            "--set", "monitoring.drift.min_rows=50", "--set", "monitoring.performance.min_labels=20"]
# Columns that legitimately differ between two runs of the same job on the same inputs.
VOLATILE = {
    "jt__predictions": ("run_id", "scored_at"),
    "scoring_stats": ("run_id", "scored_at"),
    "monitor_metrics": ("run_id", "created_at"),
    "monitor_runs": ("run_id", "started_at"),
}


@pytest.fixture(scope="module")
def trained(cluster: Cluster, env):
    """Champion jt v1 and challenger v2 in the job tests' workspace (the cluster starts meanwhile)."""
    conf = ["--model", "jt", "--date", "2026-03-01", "--conf-dir", str(env["conf"])]
    assert run_job("train", conf) == 0
    assert run_job("train", [*conf, "--set", "estimator.params.C=0.001"]) == 0
    reg = registry_of(env, "jt")
    assert reg.alias(CHAMPION).version == "1"
    reg.client.set_registered_model_alias("jt", "challenger", "2")
    return env


def copy_workspace(env, dest: Path) -> Path:
    shutil.copytree(env["ws"], dest, ignore=shutil.ignore_patterns("spark-tmp", "spark-warehouse"))
    return dest


def job_args(env, ws: Path, *when: str) -> list[str]:
    return ["--model", "jt", *when, "--conf-dir", str(env["conf"]), "--workspace", str(ws), *SETTINGS]


def table(env, ws: Path, name: str) -> DataFrame:
    df = open_store(env["spark"], StorageConfig(backend="embedded"), ws).read(name).drop(*VOLATILE[name])
    if "code_version" in df.columns:  # the git commit at run time: a commit made while the test runs changes it
        [(version,)] = df.select("code_version").distinct().collect()
        assert version.startswith(driftline.__version__), version
        df = df.drop("code_version")
    if name == "monitor_runs":  # the report lives in each run's own workspace
        df = df.withColumn("report_path", F.replace("report_path", F.lit(str(ws.resolve())), F.lit("<ws>")))
    return df


def test_score_and_monitor_on_a_standalone_cluster_equal_local_mode(cluster: Cluster, trained, tmp_path) -> None:
    env = trained
    local, remote = copy_workspace(env, tmp_path / "local"), copy_workspace(env, tmp_path / "cluster")
    score = ("--from", FIRST.isoformat(), "--to", D.isoformat())
    monitor = ("--date", D.isoformat())

    clear_cache()
    assert run_job("score", job_args(env, local, *score)) == 0
    assert run_job("monitor", job_args(env, local, *monitor)) == 0

    for job, when in (("score", score), ("monitor", monitor)):
        proc = cluster.submit(job, *job_args(env, remote, *when))
        assert proc.returncode == 0, f"{job} on the cluster exited {proc.returncode}:\n{proc.stdout[-4000:]}"
        # spark-submit merges the Python driver's stderr (driftline's log) into its own stdout
        ready = [line for line in proc.stdout.splitlines() if "session ready" in line]
        assert len(ready) == 1 and ready[0].endswith(f"master={cluster.url()}, submitted=True"), proc.stdout[-4000:]
    # both applications ran executors on both workers: the work really was distributed
    apps = cluster.executor_dirs()
    assert sorted(apps) == ["worker-1", "worker-2"]
    assert len(apps["worker-1"]) == 2 and apps["worker-1"] == apps["worker-2"], apps

    for name in VOLATILE:
        got, want = table(env, remote, name), table(env, local, name)
        assert want.count() > 0, name
        assert_approx_df_equality(got, want, precision=1e-9, ignore_row_order=True, ignore_nullable=False)

    predictions = table(env, local, "jt__predictions")
    assert sorted(r["role"] for r in predictions.select("role").distinct().collect()) == ["challenger", "champion"]
    assert predictions.filter(F.col("score").isNull()).count() == 0          # feature nulls were scored too
    [run] = table(env, remote, "monitor_runs").collect()
    assert (run["rows"], run["window_start"], run["report_path"]) == (80, FIRST, f"<ws>/reports/jt/{D}.html")
    assert run["status"] != "insufficient_data"
    assert (remote / "reports" / "jt" / f"{D}.html").is_file()
