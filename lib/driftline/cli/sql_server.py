"""``driftline sql-server --workspace DIR``: a HiveServer2 (JDBC/ODBC) endpoint over the workspace's tables.

Spark's Thrift server (``HiveThriftServer2``, from pyspark's own jars) runs inside this process's Spark session
(`startWithContext`), on the catalog of ``storage.catalog``: the tables and views are registered first
(`driftline.tables.catalog.register_tables`), the JDBC URL is printed, and the server runs until Ctrl-C,
SIGTERM or ``driftline sql-server --stop``. ``<workspace>/sql-server.pid`` (JSON: pid, host, port, url) says
one runs; ``--refresh`` (or a job finishing while it runs) makes it re-sync the catalog (SIGUSR1). With the
default Derby metastore this process holds the only connection to it (docs/bi.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftline.cli.catalog import add_workspace_options, catalog_spark, load_workspace, open_catalog_store
from driftline.cli.runner import CliParser, command
from driftline.errors import DriftlineError, UsageError

log = logging.getLogger("driftline.sql_server")

DESCRIPTION = """Serve the workspace's Delta tables over JDBC/ODBC (the HiveServer2 protocol, Spark's Thrift server from
pyspark's own jars) for BI tools: DBeaver, Power BI, Tableau, Superset (docs/bi.md). Registers the output tables
and dashboard views in the storage.catalog database first, prints the JDBC URL and runs until Ctrl-C or
`driftline sql-server --stop --workspace DIR`. `--refresh` asks a running server to re-sync the catalog (new
tables, moved locations); jobs finishing while it runs do the same."""

EPILOG = """exit codes: 0 ok (stopped) · 1 could not start (port in use, metastore held, already running) ·
2 configuration/usage

examples:
  driftline sql-server --workspace .driftline                      # jdbc:hive2://127.0.0.1:10000/driftline
  driftline sql-server --workspace .driftline --port 10001
  driftline sql-server --workspace .driftline --refresh
  driftline sql-server --workspace .driftline --stop"""

READY_SECONDS = 120.0
STOP_SECONDS = 60.0


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = CliParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workspace_options(parser)
    parser.add_argument("--port", type=int, default=10000, help="TCP port (default 10000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; the server has no "
                             "authentication)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--stop", action="store_true", help="stop the server running for this workspace")
    what.add_argument("--refresh", action="store_true", help="ask the running server to re-sync the catalog")
    return parser


def _pid_file(workspace: str | os.PathLike[str]) -> Path:
    from driftline.tables.catalog import SERVER_FILE

    return Path(workspace) / SERVER_FILE


def _alive(pid: int) -> bool:
    from driftline.tables.catalog import process_alive

    return process_alive(pid)


def _stop(workspace: str) -> int:
    from driftline.tables.catalog import read_server

    server = read_server(workspace)
    if server is None:
        _pid_file(workspace).unlink(missing_ok=True)   # a stale file
        print(f"no SQL server runs for {workspace}", flush=True)
        return 0
    pid = int(server["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        raise DriftlineError(f"SQL server pid {pid}: expected it to stop within {STOP_SECONDS:.0f} s after SIGTERM, "
                             "found it still running")
    _pid_file(workspace).unlink(missing_ok=True)
    print(f"stopped the SQL server (pid {pid}) at {server.get('url')}", flush=True)
    return 0


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise UsageError(f"--port: expected 1-65535, found {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DriftlineError(f"--host/--port: expected {host}:{port} to be free, found {exc.strerror}") from None


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host if host not in ("0.0.0.0", "") else "127.0.0.1", port)) == 0


def _serve(args: argparse.Namespace) -> int:
    from driftline.tables.catalog import read_server, register_tables

    ws = load_workspace(args)
    cat = ws.storage.catalog
    if cat.metastore == "unity":
        raise UsageError("storage.catalog.metastore: unity tables are served by the cluster's SQL endpoint "
                         "(a Databricks SQL warehouse), not by driftline sql-server; expected derby or thrift://…")
    running = read_server(ws.workspace)
    if running is not None:
        raise DriftlineError(f"SQL server: expected none running for {ws.workspace}, found pid {running['pid']} "
                             f"at {running.get('url')} (driftline sql-server --stop --workspace {ws.workspace})")
    _check_port(args.host, args.port)
    requests = {"refresh": False, "stop": False}

    def on_signal(signum: int, _frame: Any) -> None:
        requests["refresh" if signum == getattr(signal, "SIGUSR1", None) else "stop"] = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGUSR1"):
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_signal)
    # Read by Hive's Thrift service from the JVM's environment (this process's: the JVM starts as its child).
    os.environ["HIVE_SERVER2_THRIFT_PORT"] = str(args.port)
    os.environ["HIVE_SERVER2_THRIFT_BIND_HOST"] = args.host
    spark = catalog_spark(ws, quiet=(args.log_level or ws.logging.level) != "DEBUG", server=True)
    server = None
    pid_file = _pid_file(ws.workspace)
    try:
        store = open_catalog_store(spark, ws)
        for item in register_tables(spark, store, cat):
            print(item.line(), flush=True)
        spark.conf.set("hive.server2.transport.mode", "binary")
        jvm = spark.sparkContext._jvm
        server = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
            spark._jsparkSession.sqlContext())
        deadline = time.monotonic() + READY_SECONDS
        while not _listening(args.host, args.port):
            if time.monotonic() > deadline or requests["stop"]:
                raise DriftlineError(f"SQL server: expected it to listen on {args.host}:{args.port} within "
                                     f"{READY_SECONDS:.0f} s, found no listener")
            time.sleep(0.2)
        url = f"jdbc:hive2://{args.host}:{args.port}/{cat.database}"
        info = {"pid": os.getpid(), "host": args.host, "port": args.port, "url": url,
                "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        partial = pid_file.with_suffix(".part")
        partial.write_text(json.dumps(info))
        os.replace(partial, pid_file)
        print(f"SQL server ready: {url}  (HiveServer2 protocol, no authentication; Ctrl-C or "
              f"driftline sql-server --stop --workspace {ws.workspace} stops it)", flush=True)
        while not requests["stop"]:
            time.sleep(0.5)
            if requests["refresh"]:
                requests["refresh"] = False
                try:
                    done = register_tables(spark, store, cat)
                    changed = [item.line() for item in done if item.action != "unchanged"]
                    print(f"catalog re-synced: {'; '.join(changed) or 'nothing changed'}", flush=True)
                except Exception as exc:  # noqa: BLE001 - keep serving; the next refresh may succeed
                    from driftline.tables.backend import error_line

                    log.warning("catalog re-sync failed, serving the previous registration: %s", error_line(exc))
        print("SQL server stopping", flush=True)
        return 0
    finally:
        if server is not None:
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - stopping anyway
                log.warning("SQL server: stop reported %s", exc)
        spark.stop()
        with_pid = pid_file.is_file() and json.loads(pid_file.read_text() or "{}").get("pid") == os.getpid()
        if with_pid:
            pid_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace) -> int:
    if args.stop or args.refresh:
        ws = load_workspace(args)
        if args.stop:
            return _stop(str(ws.workspace))
        from driftline.tables.catalog import request_refresh

        pid = request_refresh(ws.workspace)
        if pid is None:
            raise DriftlineError(f"SQL server: expected one running for {ws.workspace}, found none")
        print(f"asked the SQL server (pid {pid}) to re-sync the catalog", flush=True)
        return 0
    return _serve(args)


def sql_server_command(argv: Sequence[str], prog: str = "driftline sql-server") -> int:
    """Run ``driftline sql-server ...``; returns the exit code (never raises)."""
    return command(prog, build_parser(prog), argv, _run)


if __name__ == "__main__":
    sys.exit(sql_server_command(sys.argv[1:]))
