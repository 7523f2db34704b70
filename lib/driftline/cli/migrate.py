"""``driftline migrate --workspace DIR``: upgrade a workspace's tables to the current table contract.

Exit codes: 0 every table is current (migrated now or before) · 2 configuration/usage problem, or a
table migrate does not know (nothing changed) · 1 any other failure (the table being migrated stays
at its previous version; tables migrated before it stay migrated, a rerun continues). See
docs/migrate.md and `driftline.tables.migrate`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.cli.runner import CliParser, add_conf_dir, command, setup_logging
from driftline.errors import ConfigError

if TYPE_CHECKING:
    from driftline.config.schema import WorkspaceConfig

DESCRIPTION = """Upgrade the Delta tables of a workspace written by an earlier driftline release to the current
table contract (docs/table-reference.md), one Delta commit per table (job 'migrate'). Before changing anything,
every table under the tables root must be a driftline table in a known contract version or a source
table of a model configured under --conf-dir; otherwise nothing is changed (exit 2). Tables already
current are left alone: a second run changes nothing. The previous version of each migrated table
stays readable by time travel."""

EPILOG = """exit codes: 0 ok · 1 unexpected error · 2 configuration/usage, or a table migrate does not know
(nothing changed)

examples:
  driftline migrate --workspace /data/driftline --dry-run
  driftline migrate --workspace /data/driftline --conf-dir conf"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = CliParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, metavar="DIR",
                        help="workspace folder whose tables to migrate (tables under <DIR>/tables by default)")
    add_conf_dir(parser)
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="driftline log level (default: the config key logging.level)")
    return parser


def migrate_command(argv: Sequence[str], prog: str = "driftline migrate") -> int:
    """Run ``driftline migrate ...``; returns the exit code (never raises)."""
    return command(prog, build_parser(prog), argv, _run)


def load_workspace(conf_dir: str, workspace: str) -> tuple[WorkspaceConfig, dict[str, tuple[str, ...]]]:
    """The workspace settings (one storage setting for every model under ``conf_dir``, else base.yaml's) and
    the configured models' source tables (source table → the models reading it)."""
    from driftline.config import load_config, load_workspace_config

    conf = Path(conf_dir)
    models = sorted((conf / "models").glob("*.yaml")) if conf.is_dir() else []
    configs = [load_config(p.stem, conf, (), workspace).config for p in models]
    if not configs:
        return load_workspace_config(conf, workspace), {}
    first = configs[0]
    for cfg in configs[1:]:
        if cfg.storage != first.storage:
            raise ConfigError(f"storage: expected one setting for every model of {conf}, found {first.name} and "
                              f"{cfg.name} differ (migrate one workspace at a time)")
    sources: dict[str, list[str]] = {}
    for cfg in configs:
        for source in (cfg.sources.events, cfg.sources.inference, cfg.sources.entities, cfg.sources.labels):
            if source is not None and cfg.name not in sources.setdefault(source.table, []):
                sources[source.table].append(cfg.name)
    return first, {t: tuple(m) for t, m in sources.items()}


def _run(args: argparse.Namespace) -> int:
    from pyspark.sql import SparkSession

    from driftline.jobs.context import code_version, new_run_id
    from driftline.runtime import build_spark
    from driftline.tables import CommitInfo, open_store
    from driftline.tables import migrate as m

    ws, sources = load_workspace(args.conf_dir, args.workspace)
    level = args.log_level or ws.logging.level
    setup_logging(level, ws.logging.json_lines)
    if not Path(ws.workspace).is_dir():
        raise ConfigError(f"--workspace: expected a workspace folder, found no folder {ws.workspace}")
    owned = SparkSession.getActiveSession() is None
    spark = build_spark(ws.runtime, ws.workspace, quiet=level != "DEBUG")
    try:
        store = open_store(spark, ws.storage, ws.workspace)
        plans = m.plan(store, sources)  # refuses before anything changes
        if args.dry_run:
            for p in plans:
                print(p.line(), flush=True)
            return 0
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        commit = CommitInfo(job=m.JOB, run_id=new_run_id(m.JOB, started), key=m.KEY,
                            code_version=code_version(), config_hash="-")
        for p in plans:  # one line per table, in table order, as each is done
            print(m.migrate_table(store, p, commit).line() if p.action == "migrate" else p.line(), flush=True)
        return 0
    finally:
        if owned:
            spark.stop()
