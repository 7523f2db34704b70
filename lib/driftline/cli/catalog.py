"""``driftline catalog sync --workspace DIR``: register the workspace's output tables and dashboard views in the
catalog of ``storage.catalog`` (idempotent; see `driftline.tables.catalog` and docs/bi.md)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.cli.runner import CliParser, add_conf_dir, command, setup_logging
from driftline.errors import ConfigError, DriftlineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from driftline.config.schema import WorkspaceConfig

DESCRIPTION = """Register every output table of the workspace (a Delta table with a driftline contract) in the catalog
database of storage.catalog (default: driftline, in an embedded Derby metastore <workspace>/metastore_db), with
the table and column comments of the table contracts, plus the dashboard views (latest_verdict,
drift_by_column, performance_over_time). Idempotent: a second run changes nothing; a table registered at
another location is re-pointed. Works whether or not storage.catalog.enabled is set (enabled: every job also
registers after its writes). With a Derby metastore held by a running `driftline sql-server`, asks that server
to re-sync instead (it holds the only connection)."""

EPILOG = """exit codes: 0 ok · 1 registration failed, or another process holds the Derby metastore ·
2 configuration/usage

examples:
  driftline catalog sync --workspace .driftline
  driftline catalog sync --workspace /data/driftline --conf-dir conf"""


def add_workspace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", required=True, metavar="DIR", help="the workspace folder")
    add_conf_dir(parser)
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="driftline log level (default: the config key logging.level)")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = CliParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["sync"], help="sync: register the tables and views")
    add_workspace_options(parser)
    return parser


def load_workspace(args: argparse.Namespace) -> WorkspaceConfig:
    """The workspace keys of ``--conf-dir``'s base.yaml (base.yaml optional), logging set up, the folder checked."""
    from driftline.config import load_workspace_config
    from driftline.config.schema import WorkspaceConfig

    conf = Path(args.conf_dir)
    ws = load_workspace_config(conf, args.workspace) if conf.is_dir() else WorkspaceConfig(workspace=args.workspace)
    setup_logging(args.log_level or ws.logging.level, ws.logging.json_lines)
    if not Path(ws.workspace).is_dir():
        raise ConfigError(f"--workspace: expected a workspace folder, found no folder {ws.workspace}")
    return ws


def catalog_spark(ws: WorkspaceConfig, quiet: bool = True, server: bool = False) -> SparkSession:
    """A session with the catalog of ``storage.catalog`` (Hive support on Derby or a thrift metastore), built by
    `build_spark`: the catalog settings go in as the runtime's extra settings. `DriftlineError` when another
    process holds the Derby metastore. ``server``: the jars of ``spark.jars`` (delta-spark) also go on the
    driver's class path, where the Thrift server's own threads find them (its JDBC sessions load Delta's catalog
    with the JVM's class loader, which does not see ``spark.jars``)."""
    from driftline.runtime import build_spark, session_conf, under_spark_submit
    from driftline.tables.catalog import catalog_session_conf, metastore_holder

    cat = ws.storage.catalog
    if cat.metastore == "derby":
        holder = metastore_holder(ws.workspace)
        if holder is not None:
            raise DriftlineError(f"storage.catalog: expected the Derby metastore {Path(ws.workspace) / 'metastore_db'} "
                                 f"to be free, found it held by {holder}")
    submitted = under_spark_submit()
    base = session_conf(ws.runtime, ws.workspace, submitted, quiet)
    extra = catalog_session_conf(ws.storage, ws.workspace, base, submitted, force=True)
    if server and not submitted and base.get("spark.jars"):
        extra["spark.driver.extraClassPath"] = os.pathsep.join(
            filter(None, (base.get("spark.driver.extraClassPath"), *base["spark.jars"].split(","))))
    runtime = ws.runtime.model_copy(update={"spark_conf": {**extra, **ws.runtime.spark_conf}})
    return build_spark(runtime, ws.workspace, quiet=quiet)


def open_catalog_store(spark: SparkSession, ws: WorkspaceConfig):  # noqa: ANN201 - TableStore, imported lazily
    from driftline.tables import open_store

    return open_store(spark, ws.storage, ws.workspace)


def _run(args: argparse.Namespace) -> int:
    from pyspark.sql import SparkSession

    from driftline.tables.catalog import read_server, register_tables, request_refresh

    ws = load_workspace(args)
    if ws.storage.catalog.metastore == "derby" and read_server(ws.workspace) is not None:
        pid = request_refresh(ws.workspace)
        print(f"asked the SQL server (pid {pid}) to re-sync the catalog {ws.storage.catalog.database}", flush=True)
        return 0
    owned = SparkSession.getActiveSession() is None
    spark = catalog_spark(ws, quiet=(args.log_level or ws.logging.level) != "DEBUG")
    try:
        store = open_catalog_store(spark, ws)
        try:
            done = register_tables(spark, store, ws.storage.catalog)
        except DriftlineError:
            raise
        except Exception as exc:
            from driftline.tables.backend import error_line

            raise DriftlineError(f"catalog {ws.storage.catalog.database}: registration failed: "
                                 f"{error_line(exc)}") from exc
        for item in done:
            print(item.line(), flush=True)
        return 0
    finally:
        if owned:
            spark.stop()


def catalog_command(argv: Sequence[str], prog: str = "driftline catalog") -> int:
    """Run ``driftline catalog sync ...``; returns the exit code (never raises)."""
    return command(prog, build_parser(prog), argv, _run)
