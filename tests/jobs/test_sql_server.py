"""``driftline catalog sync`` and ``driftline sql-server`` end to end: tables written through the table store
with the contracts, registered in an embedded Derby metastore with their comments (no Delta commit on a
second registration, a moved table re-pointed), served over the HiveServer2 protocol and queried with a
real client (pyspark's ``bin/beeline``): exact values from monitor_metrics, the predictions table and the
dashboard views; a sync while the server runs asks it to re-sync; ``--stop`` leaves no process behind."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql.types import StringType, StructField

from driftline.tables import CommitInfo, StorageConfig, open_store
from driftline.tables import contracts as c
from driftline.tables.catalog import SERVER_FILE, catalog_session_conf, metastore_holder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
T = dt.datetime(2026, 3, 2, 4, 0, 0)
TABLES = ("churn__predictions", "monitor_metrics", "monitor_runs")


def _metric(day, column, metric, value, status, method=None, threshold=None, window=None):
    return c.MONITOR_METRICS.row(
        run_date=day, model="churn", model_version="1", reference_id="churn/1", window_start=window or day,
        window_end=window or day, slice="__all__", baseline="reference", column=column, metric=metric, value=value,
        threshold=threshold, status=status, method=method, reason=None, n_reference=1000, n_current=200,
        run_id="r1", code_version="0", config_hash="h", created_at=T)


def _run(day, status, drifted):
    return c.MONITOR_RUNS.row(
        model="churn", model_version="1", run_date=day, window_start=day, window_end=day, rows=200,
        columns_evaluated=2, columns_drifted=drifted, drift_share=drifted / 2, dataset_drift=status == "alert",
        status=status, quality_status="ok", performance_status="ok", report_path=None, run_id="r1",
        code_version="0", config_hash="h", started_at=T)


def write_tables(spark, ws: Path) -> None:
    store = open_store(spark, StorageConfig(), ws)

    def commit(key: str) -> CommitInfo:
        return CommitInfo(job="test", run_id="r1", key=key, code_version="0", config_hash="h")

    metrics = [
        _metric(D1, "tenure", "drift", 0.0, "ok", "wasserstein"),
        _metric(D1, "tenure", "wasserstein_norm", 0.05, "ok", "wasserstein", 0.1),
        _metric(D2, "tenure", "drift", 1.0, "alert", "wasserstein"),
        _metric(D2, "tenure", "wasserstein_norm", 0.31, "alert", "wasserstein", 0.1),
        _metric(D2, "plan", "drift", 1.0, "alert", "chi2"),
        _metric(D2, "plan", "chi2_pvalue", 0.001, "alert", "chi2", 0.05),
        _metric(D1, "__performance__", "auc", 0.70, "ok"),
        _metric(D2, "__performance__", "auc", 0.75, "ok", window=D1),   # D1's window recomputed on D2
        _metric(D2, "__performance__", "estimated_auc", 0.66, "ok"),
    ]
    store.replace_partitions("monitor_metrics", spark.createDataFrame(metrics, c.MONITOR_METRICS.schema()),
                             c.MONITOR_METRICS.partition_by, commit("m"))
    runs = [_run(D1, "ok", 0), _run(D2, "alert", 2)]
    store.replace_partitions("monitor_runs", spark.createDataFrame(runs, c.MONITOR_RUNS.schema()),
                             c.MONITOR_RUNS.partition_by, commit("r"))
    key = [StructField("customer_id", StringType(), False)]
    preds = [("c1", 0.25, 0, "churn", "1", "champion", "r1", "0", "h", T, D2, True),
             ("c2", 0.8, 1, "churn", "1", "champion", "r1", "0", "h", T, D2, True)]
    store.replace_partitions("churn__predictions", spark.createDataFrame(preds, c.PREDICTIONS.schema(leading=key)),
                             c.PREDICTIONS.partition_by, commit("p"))


def write_conf(conf: Path, tables: dict[str, str] | None = None) -> Path:
    conf.mkdir(parents=True, exist_ok=True)
    mapping = "".join(f"    {name}: {path}\n" for name, path in (tables or {}).items())
    (conf / "base.yaml").write_text(
        "runtime:\n  master: local[2]\n  shuffle_partitions: 2\n"
        "storage:\n  catalog:\n    enabled: true\n" + (f"  tables:\n{mapping}" if mapping else ""))
    return conf


def driftline(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "driftline.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def versions(ws: Path, moved: Path) -> dict[str, int]:
    paths = {name: ws / "tables" / name for name in TABLES} | {"churn__predictions": moved}
    return {name: DeltaTable(str(path)).version() for name, path in paths.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SPLIT = "SELECT 'next' AS driftline_split"


def beeline(port: int, statements: list[str]) -> list[list[dict[str, str]]]:
    """Run the statements in one session of pyspark's beeline (a HiveServer2 JDBC client); rows per statement
    (tab-separated output; beeline quotes a value holding a separator with NUL characters, removed here)."""
    import pyspark

    exe = Path(pyspark.__file__).parent / "bin" / "beeline"
    out = subprocess.run([str(exe), "-u", f"jdbc:hive2://127.0.0.1:{port}/driftline", "-n", "bi", "--silent=true",
                          "--outputformat=tsv2", "-e", f"; {SPLIT}; ".join(statements) + ";"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    blocks, current = [], []
    lines = iter(line for line in out.stdout.replace("\x00", "").splitlines() if line.strip())
    for line in lines:
        if line == "driftline_split" and next(lines) == "next":
            blocks.append(current)
            current = []
        else:
            current.append(line)
    blocks.append(current)
    assert len(blocks) == len(statements), out.stdout[-3000:]
    return [list(csv.DictReader(io.StringIO("\n".join(b)), delimiter="\t", quoting=csv.QUOTE_NONE)) for b in blocks]


def java_processes_of(ws: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"derby.system.home={ws}" in line]


def test_tables_registered_and_served_over_hiveserver2(spark, tmp_path: Path) -> None:
    ws = (tmp_path / "ws").resolve()
    write_tables(spark, ws)
    conf = write_conf(tmp_path / "conf")

    t0 = time.monotonic()
    first = driftline("catalog", "sync", "--workspace", str(ws), "--conf-dir", str(conf), "--log-level", "WARNING")
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert "database driftline: created" in lines
    assert {line.split(":")[0] for line in lines if line.startswith("table ")} == {
        f"table `driftline`.`{t}`" for t in TABLES}
    assert all(": created (" in line for line in lines if line.startswith("table "))
    assert sorted(line for line in lines if line.startswith("view ")) == [
        "view `driftline`.`drift_by_column`: created", "view `driftline`.`latest_verdict`: created",
        "view `driftline`.`performance_over_time`: created"]
    # comments live in the Delta log: one commit for the columns, one for the table, per table
    assert {t: DeltaTable(str(ws / "tables" / t)).version() for t in TABLES} == dict.fromkeys(TABLES, 2)
    print(f"catalog sync: {time.monotonic() - t0:.1f} s")

    # the predictions table moves (storage.tables): the server's start-up sync re-points it, changes nothing else
    moved = tmp_path / "elsewhere" / "churn__predictions"
    shutil.copytree(ws / "tables" / "churn__predictions", moved)
    shutil.rmtree(ws / "tables" / "churn__predictions")
    conf = write_conf(tmp_path / "conf", {"churn__predictions": str(moved)})
    before = versions(ws, moved)

    port = free_port()
    log_path = tmp_path / "server.log"
    t0 = time.monotonic()
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli.main", "sql-server", "--workspace", str(ws), "--conf-dir", str(conf),
             "--port", str(port), "--log-level", "WARNING"],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (ws / SERVER_FILE).is_file():
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        info = json.loads((ws / SERVER_FILE).read_text())
        assert info["pid"] == server.pid and info["url"] == f"jdbc:hive2://127.0.0.1:{port}/driftline"
        print(f"sql-server ready: {time.monotonic() - t0:.1f} s")
        out = log_path.read_text()
        assert f"SQL server ready: jdbc:hive2://127.0.0.1:{port}/driftline" in out
        assert "table `driftline`.`churn__predictions`: re-pointed (was file:" in out
        for name in ("monitor_metrics", "monitor_runs"):
            assert f"table `driftline`.`{name}`: unchanged" in out
        assert out.count(": unchanged") == 5
        assert versions(ws, moved) == before                 # re-registration committed nothing

        # a job's session while the server runs: no Hive (the server holds Derby), so nothing can fail on it
        assert metastore_holder(ws) == f"the SQL server (pid {server.pid})"
        assert catalog_session_conf(StorageConfig(catalog={"enabled": True}), ws) == {}

        t0 = time.monotonic()
        tables, metrics, preds, verdict, drift, perf, describe = beeline(port, [
            "SHOW TABLES IN driftline",
            "SELECT `run_date`, `column`, `metric`, `window_start`, `value`, `threshold`, `status` FROM monitor_metrics "
            "WHERE `metric` <> 'drift' ORDER BY `run_date`, `column`, `metric`, `window_start`",
            "SELECT customer_id, score, predicted_label, role, score_date FROM churn__predictions ORDER BY customer_id",
            "SELECT model, run_date, status, columns_drifted, drift_share FROM latest_verdict",
            "SELECT run_date, `column`, drifted, status, decision_metric, decision_value, threshold FROM drift_by_column "
            "ORDER BY run_date, `column`",
            "SELECT window_start, metric, estimated, `value`, run_date FROM performance_over_time "
            "ORDER BY window_start, metric",
            "DESCRIBE TABLE EXTENDED monitor_metrics",
        ])
        print(f"beeline: {time.monotonic() - t0:.1f} s")
        assert sorted(r["tableName"] for r in tables) == [
            "churn__predictions", "drift_by_column", "latest_verdict", "monitor_metrics", "monitor_runs",
            "performance_over_time"]
        assert [tuple(r.values()) for r in metrics] == [
            ("2026-03-01", "__performance__", "auc", "2026-03-01", "0.7", "NULL", "ok"),
            ("2026-03-01", "tenure", "wasserstein_norm", "2026-03-01", "0.05", "0.1", "ok"),
            ("2026-03-02", "__performance__", "auc", "2026-03-01", "0.75", "NULL", "ok"),
            ("2026-03-02", "__performance__", "estimated_auc", "2026-03-02", "0.66", "NULL", "ok"),
            ("2026-03-02", "plan", "chi2_pvalue", "2026-03-02", "0.001", "0.05", "alert"),
            ("2026-03-02", "tenure", "wasserstein_norm", "2026-03-02", "0.31", "0.1", "alert"),
        ]
        assert [tuple(r.values()) for r in preds] == [("c1", "0.25", "0", "champion", "2026-03-02"),
                                                      ("c2", "0.8", "1", "champion", "2026-03-02")]
        assert [tuple(r.values()) for r in verdict] == [("churn", "2026-03-02", "alert", "2", "1.0")]
        assert [tuple(r.values()) for r in drift] == [
            ("2026-03-01", "tenure", "false", "ok", "wasserstein_norm", "0.05", "0.1"),
            ("2026-03-02", "plan", "true", "alert", "chi2_pvalue", "0.001", "0.05"),
            ("2026-03-02", "tenure", "true", "alert", "wasserstein_norm", "0.31", "0.1"),
        ]
        assert [tuple(r.values()) for r in perf] == [     # D1's window as the later run recomputed it
            ("2026-03-01", "auc", "false", "0.75", "2026-03-02"),
            ("2026-03-02", "estimated_auc", "true", "0.66", "2026-03-02"),
        ]
        comments = {r["col_name"].strip(): (r["comment"] or "").strip() for r in describe}
        for column in c.MONITOR_METRICS.columns:
            assert comments[column.name] == column.doc
        detail = {r["col_name"].strip(): (r["data_type"] or "").strip() for r in describe}
        assert detail["Comment"].startswith(c.MONITOR_METRICS.doc)
        assert detail["Location"] == f"file:{ws}/tables/monitor_metrics" and detail["Provider"] == "delta"

        # a sync while the server runs asks it to re-sync (the server holds the only Derby connection)
        again = driftline("catalog", "sync", "--workspace", str(ws), "--conf-dir", str(conf))
        assert again.returncode == 0 and f"asked the SQL server (pid {server.pid})" in again.stdout, again.stderr
        deadline = time.monotonic() + 120
        while "catalog re-synced: nothing changed" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        t0 = time.monotonic()
        stop = driftline("sql-server", "--stop", "--workspace", str(ws), "--conf-dir", str(conf), timeout=120)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)   # only our own server's process group
            code = server.wait()
        print(f"stop: {time.monotonic() - t0:.1f} s")
    assert stop.returncode == 0 and f"stopped the SQL server (pid {server.pid})" in stop.stdout, stop.stderr
    assert code == 0
    assert not (ws / SERVER_FILE).exists()
    assert java_processes_of(ws) == []
