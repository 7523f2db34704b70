"""``storage.catalog`` without a JVM: the config keys, the session settings per metastore, the Derby lock probe,
the comments and views' SQL, and what a job does after its writes when a SQL server holds the metastore."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from driftline.monitoring.spec import METHOD_METRIC
from driftline.tables import catalog as cat
from driftline.tables import catalog_views as views
from driftline.tables.spec import CatalogConfig, StorageConfig


def storage(**catalog: object) -> StorageConfig:
    return StorageConfig(catalog=catalog)


def test_catalog_keys_defaults_and_refusals() -> None:
    assert CatalogConfig() == CatalogConfig(enabled=False, database="driftline", metastore="derby", views=True)
    assert CatalogConfig(metastore="thrift://meta.example:9083,thrift://meta2:9083").metastore.count("thrift") == 2
    assert CatalogConfig(metastore="unity", database="main.driftline").database == "main.driftline"
    for bad in ({"metastore": "mysql"}, {"metastore": "thrift://nohost"}, {"database": "main.driftline"},
                {"database": "a-b"}, {"metastore": "unity", "database": "a.b.c"}):
        with pytest.raises(ValidationError):
            CatalogConfig(**bad)


def test_session_conf_per_metastore(tmp_path: Path) -> None:
    ws = tmp_path.resolve()
    assert cat.catalog_session_conf(storage(), ws) == {}                      # off
    assert cat.catalog_session_conf(storage(enabled=True, metastore="unity", database="m.d"), ws) == {}
    assert cat.catalog_session_conf(storage(enabled=True, metastore="thrift://h:9083"), ws) == {
        "spark.sql.catalogImplementation": "hive", "spark.hadoop.hive.metastore.uris": "thrift://h:9083"}
    conf = cat.catalog_session_conf(storage(enabled=True), ws, {"spark.driver.extraJavaOptions": "-Duser.timezone=UTC"})
    assert conf == {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={ws}/metastore_db;create=true",
        "spark.sql.warehouse.dir": f"{ws}/spark-warehouse",
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dderby.system.home={ws}",
    }
    assert "spark.driver.extraJavaOptions" not in cat.catalog_session_conf(storage(enabled=True), ws, submitted=True)
    assert cat.catalog_session_conf(storage(), ws, force=True)["spark.sql.catalogImplementation"] == "hive"


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_held_derby_metastore_leaves_a_job_on_the_in_memory_catalog(tmp_path: Path, caplog) -> None:
    (tmp_path / "metastore_db").mkdir()
    assert cat.metastore_holder(tmp_path) is None
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "metastore_db" / "dbex.lck")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cat.metastore_holder(tmp_path) == "another process"
        with caplog.at_level("INFO", "driftline.tables.catalog"):
            assert cat.catalog_session_conf(storage(enabled=True), tmp_path) == {}
        assert "holds the Derby metastore" in caplog.text
        (tmp_path / cat.SERVER_FILE).write_text(json.dumps({"pid": holder.pid}))
        assert cat.metastore_holder(tmp_path) == f"the SQL server (pid {holder.pid})"
    finally:
        holder.kill()
        holder.wait()
    assert cat.metastore_holder(tmp_path) is None          # released with the process
    assert cat.read_server(tmp_path) is None               # a stale pid file counts as no server


TRAP = """
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *_: open(sys.argv[1], "w").write("refresh"))
print("ready", flush=True)
time.sleep(60)
"""


class _Conf:
    def get(self, key: str, default: str) -> str:
        return default


class _NoHive:
    """A session stub without Hive support (what a job gets while the server holds Derby)."""

    conf = _Conf()


class _Store:
    def __init__(self, workspace: Path):
        self.workspace = workspace


def test_a_job_after_its_writes_asks_the_running_server_to_resync(tmp_path: Path, caplog) -> None:
    marker = tmp_path / "refreshed"
    server = subprocess.Popen([sys.executable, "-c", TRAP, str(marker)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        (tmp_path / cat.SERVER_FILE).write_text(json.dumps({"pid": server.pid, "url": "jdbc:hive2://x"}))
        with caplog.at_level("WARNING", "driftline.tables.catalog"):
            cat.sync_after_job(_NoHive(), _Store(tmp_path), CatalogConfig(enabled=True))
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "refresh"
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and f"SQL server (pid {server.pid})" in warnings[0].getMessage()
    finally:
        server.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while cat.read_server(tmp_path) is not None and time.monotonic() < deadline:   # an unreaped child: gone
            time.sleep(0.05)
        assert cat.read_server(tmp_path) is None
        server.wait()
    caplog.clear()
    with caplog.at_level("WARNING", "driftline.tables.catalog"):   # no server any more: one line, no failure
        cat.sync_after_job(_NoHive(), _Store(tmp_path), CatalogConfig(enabled=True))
    assert len(caplog.records) == 1 and "driftline catalog sync" in caplog.records[0].getMessage()


def test_comments_come_from_the_contracts() -> None:
    docs = cat.column_docs("churn__predictions", ["customer_id", "score", "role", "tenure"])
    assert docs["customer_id"] == "entity key of model churn (its entity_key)"
    assert docs["tenure"] == "feature of model churn (its features config)"
    assert docs["score"].startswith("positive-class probability")
    assert cat.column_docs("churn_events", ["x"]) == {}     # a source table: not registered
    assert cat.table_doc("monitor_runs").startswith("One verdict row per (model, run_date)")
    assert cat.sql_literal("it's a \\ path") == "'it\\'s a \\\\ path'"
    assert views.qualified(CatalogConfig(metastore="unity", database="main.dl"), "t") == "`main`.`dl`.`t`"


def test_views_name_their_columns_and_the_drift_decision_metrics_match_monitoring() -> None:
    for method, metric in METHOD_METRIC.items():
        assert f"WHEN '{method}' THEN '{metric}'" in views.METHOD_METRIC_SQL
    assert {v.name for v in views.VIEWS} == {"latest_verdict", "drift_by_column", "performance_over_time"}
    for view in views.VIEWS:
        sql = view.sql(CatalogConfig())
        assert "`driftline`.`monitor_" in sql and "{" not in sql
        assert all(doc for _, doc in view.columns)
