"""The ``driftline`` command: every job as a subcommand, plus registry, report and demo commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import driftline
from driftline.cli.runner import run_job
from driftline.jobs import JOBS
from driftline.jobs.context import code_version

# Commands that are not jobs. Each module loads when its command runs (some import MLflow or Spark).


def _models(argv: Sequence[str]) -> int:
    from driftline.cli.models import models_command

    return models_command(argv)


def _status(argv: Sequence[str]) -> int:
    from driftline.cli.status import status_command

    return status_command(argv)


def _report(argv: Sequence[str]) -> int:
    from driftline.cli.report import report_command

    return report_command(argv)


def _jar(argv: Sequence[str]) -> int:
    from driftline.cli.jar import jar_command

    return jar_command(argv)


def _demo(argv: Sequence[str]) -> int:
    from driftline.cli.demo import demo_command

    return demo_command(argv)


def _schedule(argv: Sequence[str]) -> int:
    from driftline.cli.schedule import schedule_command

    return schedule_command(argv)


def _migrate(argv: Sequence[str]) -> int:
    from driftline.cli.migrate import migrate_command

    return migrate_command(argv)


def _catalog(argv: Sequence[str]) -> int:
    from driftline.cli.catalog import catalog_command

    return catalog_command(argv)


def _connect_server(argv: Sequence[str]) -> int:
    from driftline.cli.connect_server import connect_server_command

    return connect_server_command(argv)


def _alerts(argv: Sequence[str]) -> int:
    from driftline.cli.alerts import alerts_command

    return alerts_command(argv)


def _sql_server(argv: Sequence[str]) -> int:
    from driftline.cli.sql_server import sql_server_command

    return sql_server_command(argv)


COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "models": ("list registered versions, promote a version, roll back the champion", _models),
    "status": ("where a model stands: latest verdict and why, versions, last runs, retrain, alerts (exit 3 on alert)",
               _status),
    "alerts": ("list the alerts a model raised (alert_events); resend one on purpose", _alerts),
    "report": ("print the path of the HTML monitoring report of a run", _report),
    "jar": ("build driftline's JVM profile fold (needs a JDK) and print the jar's path, for spark-submit --jars",
            _jar),
    "demo": ("generate a drifting scenario and run the pipeline on it", _demo),
    "schedule": ("render the pipeline for cron, Airflow or Databricks Workflows", _schedule),
    "migrate": ("upgrade a workspace's tables written by an earlier release to the current contract", _migrate),
    "catalog": ("register the workspace's tables and dashboard views in the Spark catalog (catalog sync)", _catalog),
    "sql-server": ("serve the tables over JDBC/ODBC (HiveServer2) for BI tools, until Ctrl-C or --stop", _sql_server),
    "connect-server": ("run a local Spark Connect server from pyspark's jars, for --set runtime.remote=sc://HOST:PORT",
                       _connect_server),
}


def usage() -> str:
    width = max(map(len, [*JOBS, *COMMANDS]))
    jobs = "\n".join(f"  {name:<{width}}  {spec.summary}" for name, spec in JOBS.items())
    cmds = "\n".join(f"  {name:<{width}}  {summary}" for name, (summary, _) in COMMANDS.items())
    return (
        "usage: driftline <command> [options]\n\n"
        "Parameterized Spark jobs that keep a batch ML model honest: features, scoring, drift and\n"
        "quality monitoring, retraining behind a promotion gate. All outputs are Delta tables.\n\n"
        f"jobs (each takes --model NAME and --date D or --from D1 --to D2):\n{jobs}\n\n"
        f"other commands:\n{cmds}\n\n"
        "options:\n  -h, --help     show this help; `driftline <command> --help` explains a command\n"
        "  --version      print the driftline version\n\n"
        "exit codes: 0 ok · 1 unexpected error · 2 configuration/usage/environment · 3 data-quality gate\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftline`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        print(usage())
        return 0
    if command == "--version":
        print(f"driftline {driftline.__version__} ({code_version()})")
        return 0
    if command in JOBS:
        return run_job(command, rest)
    if command in COMMANDS:
        return int(COMMANDS[command][1](rest))
    known = ", ".join([*JOBS, *COMMANDS])
    print(f"driftline: error: expected a command ({known}), found {command!r}; see driftline --help",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
