"""The score and monitor jobs through Spark Connect give the same tables as in process.

Workspace: the train tests' ``env`` (40 entities a day, 02-08..03-01); ``jt`` v1 trained in process, ``x1``
shifted by +9 on 02-28 and 03-01 (drift to find), the previous window 02-22..02-25 scored in process. Scoring
02-26..03-01 and monitoring 03-01 (window 4 days) run twice on the same workspace: first in process (the
classic test session), then in a subprocess through the shared runner with ``--set runtime.remote=sc://…``
against a Spark Connect server started here from pyspark's own jars (``python -m driftline.cli.connect_server``,
local[2]; its whole process group is stopped at the end and checked gone). One Python process holds either
classic or Connect sessions (pyspark switches its functions module to Connect process-wide), hence the
subprocess. Both runs profile with the Arrow fold (``runtime.jvm_fold=false`` in process: a Connect client
cannot call driftline's JVM fold) and use the embedded backend, so predictions, scoring statistics,
``monitor_metrics`` and ``monitor_runs`` are equal value for value, run ids and timestamps aside — except the
last bits of the late-label performance values: sums Spark itself adds in the order its rows arrive, which
differed (brier, one ulp) in one of several identical runs of this test.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from driftline.cli.connect_server import wait_ready
from driftline.cli.runner import run_job
from driftline.jvm import JVM_FOLD_CONF, is_connect
from driftline.tables import CommitInfo
from tests.jobs.test_score import store_of

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
BEFORE = (dt.date(2026, 2, 22), dt.date(2026, 2, 25))   # the previous window: scored once, in process
FIRST, D = dt.date(2026, 2, 26), dt.date(2026, 3, 1)     # the monitor's window: scored both ways, compared
SHIFTED = (dt.date(2026, 2, 28), dt.date(2026, 3, 1))
COMMON = ("--set", "monitoring.window_days=4", "--set", "storage.backend=embedded")
VOLATILE = {"run_id", "scored_at", "created_at", "started_at", "report_path"}
PERFORMANCE = "__performance__"

# The Connect side: both jobs in one process through the runner (the CLI's path), exit with the first failure.
JOBS_SCRIPT = """
import sys
from driftline.cli.runner import run_job
for job, argv in (("score", sys.argv[2:sys.argv.index("--then")]), ("monitor", sys.argv[sys.argv.index("--then") + 1:])):
    code = run_job(job, argv + ["--set", "runtime.remote=" + sys.argv[1]])
    if code:
        sys.exit(code)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux ``/proc``; none elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(proc: subprocess.Popen) -> None:
    """Stop the server and check nothing it started outlived it: its process group (the JVM) and the groups of
    the Python daemons the JVM forked (``pyspark.daemon`` leads a group of its own, holding its workers; it
    exits once the JVM closes its stdin)."""
    daemons = children(proc.pid)
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    groups = [proc.pid, *daemons]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(group_alive(g) for g in groups):
        time.sleep(0.2)
    left = [g for g in groups if group_alive(g)]
    for g in left:
        os.killpg(g, signal.SIGKILL)
    assert not left, f"process groups {left} of the Connect server outlived it (killed now)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A Connect server run by ``python -m driftline.cli.connect_server`` on a free port, not waited for here (its
    JVM starts while the workspace is built): (process, ``sc://127.0.0.1:<port>``)."""
    scratch = tmp_path_factory.mktemp("connect-server")
    port = free_port()
    cmd = [sys.executable, "-m", "driftline.cli.connect_server", "--port", str(port), "--host", HOST,
           "--master", "local[2]", "--driver-memory", "1g", "--workspace", str(scratch)]
    with (scratch / "server.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        yield proc, f"sc://{HOST}:{port}"
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def workspace(env):
    """Champion jt v1 (trained in process), x1 shifted on 02-28 and 03-01, the window before the monitored one
    scored (both monitor runs read it: the previous-window baseline, late-label performance)."""
    conf = ["--model", "jt", "--conf-dir", str(env["conf"]), *COMMON]
    assert run_job("train", [*conf, "--date", D.isoformat()]) == 0
    store = store_of(env)
    shifted = F.col("as_of_date").isin(list(SHIFTED))
    drifted = (store.read("jt__features", partitions={"as_of_date": list(SHIFTED)})
               .withColumn("x1", F.when(shifted, F.col("x1") + 9.0).otherwise(F.col("x1"))))
    commit = CommitInfo(job="test", run_id="setup", key="shift", code_version="t", config_hash="t")
    store.replace_partitions("jt__features", drifted.localCheckpoint(), ["as_of_date"], commit,
                             partitions=[{"as_of_date": d} for d in SHIFTED])
    assert run_job("score", [*conf, "--from", BEFORE[0].isoformat(), "--to", BEFORE[1].isoformat()]) == 0
    return env


def job_argv(env, job: str) -> list[str]:
    when = ["--from", FIRST.isoformat(), "--to", D.isoformat()] if job == "score" else ["--date", D.isoformat()]
    return ["--model", "jt", *when, "--conf-dir", str(env["conf"]), *COMMON]


def outputs(env) -> dict[str, pd.DataFrame]:
    """The rows the two jobs wrote for the dates, read with the test's classic session."""
    store = store_of(env)
    scored = list(pd.date_range(FIRST, D).date)
    frames = {
        "predictions": store.read("jt__predictions", partitions={"score_date": scored}),
        "scoring_stats": store.read("scoring_stats").filter((F.col("model") == "jt")
                                                            & F.col("score_date").isin(scored)),
        "monitor_metrics": store.read("monitor_metrics", partitions={"model": ["jt"], "run_date": [D]}),
        "monitor_runs": store.read("monitor_runs", partitions={"model": ["jt"], "run_date": [D]}),
    }
    return {name: df.toPandas() for name, df in frames.items()}


def stable(pdf: pd.DataFrame) -> pd.DataFrame:
    """Without run ids and timestamps, rows in one order (every remaining column as text: nulls sort too)."""
    kept = pdf.drop(columns=[c for c in pdf.columns if c in VOLATILE])
    order = kept.astype(str).sort_values(list(kept.columns)).index
    return kept.loc[order].reset_index(drop=True)


def test_score_and_monitor_through_spark_connect_equal_the_in_process_runs(server, workspace, spark, capsys) -> None:
    env = workspace
    proc, url = server
    try:
        for job in ("score", "monitor"):          # in process, classic session, the Arrow fold as under Connect
            assert run_job(job, job_argv(env, job) + ["--set", "runtime.jvm_fold=false"]) == 0
    finally:
        spark.conf.set(JVM_FOLD_CONF, "true")     # the session-wide setting the runs changed, back for later tests
    local = outputs(env)

    wait_ready(HOST, int(url.rsplit(":", 1)[1]), timeout=120, process=proc)
    # this process runs a classic session: a Connect one here is refused in one line, nothing switched over
    assert run_job("score", job_argv(env, "score") + ["--set", f"runtime.remote={url}"]) == 2
    refused = [line for line in capsys.readouterr().err.splitlines() if line.startswith("driftline score: error:")]
    assert len(refused) == 1 and url in refused[0] and "SPARK_CONNECT_MODE_ENABLED" not in os.environ
    assert not is_connect(spark) and spark.range(3).count() == 3
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", JOBS_SCRIPT, url, *job_argv(env, "score"), "--then",
                           *job_argv(env, "monitor")],
                          capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"})
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count(f"Spark Connect session ready: {url}") == 2, done.stderr[-4000:]
    with capsys.disabled():
        print(f"\nscore (4 dates) + monitor through Spark Connect, one client process: {took:.1f} s")
    remote = outputs(env)

    for name in local:
        assert len(local[name]) > 0, name
        # the Connect runs replaced every partition the in-process runs wrote
        assert set(local[name]["run_id"]).isdisjoint(remote[name]["run_id"]), name
        got, want = stable(remote[name]), stable(local[name])
        if name in ("monitor_metrics", "scoring_stats"):
            # Floating sums (Spark's own avg for the late-label metrics, the profile fold's moments) may
            # differ in the last bits: the Connect server may split the same rows into other partitions and
            # merges them in that order; scoring_stats come from the scoring pass's tallies in process and
            # from Spark aggregations through Connect (no accumulators). Every value to 1e-12 relative (NaN
            # where NaN), the rest exactly.
            assert name == "scoring_stats" or (got["column"] == PERFORMANCE).any()
            np.testing.assert_allclose(got["value"].to_numpy(float), want["value"].to_numpy(float), rtol=1e-12,
                                       atol=0, equal_nan=True)
            got["value"] = want["value"]
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
    metrics = local["monitor_metrics"]
    assert ((metrics["column"] == "x1") & (metrics["status"] == "alert")).any()      # the shift found, both ways


def test_is_connect_is_false_for_the_classic_session(spark) -> None:
    assert not is_connect(spark)


def test_an_unreachable_server_is_one_line_exit_2(env, capsys) -> None:
    port = free_port()   # nothing listens there
    assert run_job("score", job_argv(env, "score") + ["--set", f"runtime.remote=sc://{HOST}:{port}"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("driftline score: error:")]
    assert len(errors) == 1 and f"sc://{HOST}:{port}" in errors[0] and "driftline connect-server" in errors[0]
