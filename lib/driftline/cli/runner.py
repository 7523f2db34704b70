"""The shared job runner: arguments, logging, config, Spark, exit codes.

Every job of the registry (`driftline.jobs.JOBS`; ``jobs/<job>.py`` under spark-submit, or
``driftline <job>``) goes through `run_job`:

1. parse ``--model``, ``--date`` | ``--from/--to``, ``--conf-dir``, ``--workspace``, ``--set``;
2. load and validate the layered config (errors exit 2 before Spark starts);
3. log the run's config hash, and the resolved config (secrets masked) the first time this process
   runs a job with it; build the one SparkSession;
4. run the job with a `JobContext` and map the outcome to an exit code:
   0 ok · 1 unexpected (traceback) · 2 config/usage/environment · 3 data-quality gate.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from driftline import jobs
from driftline.config import LoadedConfig, load_config
from driftline.errors import DriftlineError, UsageError
from driftline.jobs import JOBS, JobResult
from driftline.jobs.context import JobContext, new_run_id

log = logging.getLogger("driftline")

MAX_RANGE_DAYS = 3660
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


EPILOG = """exit codes: 0 ok · 1 unexpected error (traceback) · 2 configuration, usage or environment
problem (nothing ran) · 3 data-quality gate failed (nothing written)

examples:
  driftline {job} --model churn --date 2026-03-01
  driftline {job} --model churn --from 2026-02-01 --to 2026-02-28 --set runtime.shuffle_partitions=16
  spark-submit jobs/{job}.py --model churn --date 2026-03-01 --conf-dir conf"""


# --------------------------------------------------------------------------- arguments


def iso_date(text: str) -> dt.date:
    """Parse a strict ``YYYY-MM-DD`` calendar date (anything else is a usage error)."""
    if not _ISO_DATE.match(text or ""):
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, found {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a real calendar date as YYYY-MM-DD, found {text!r}") from None


class CliParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are ONE line on stderr (exit 2), as every driftline error.

    argparse prints the whole usage block before the error; driftline prints
    ``<prog>: error: <what was expected, what was found> (see <prog> --help)``.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def add_conf_dir(parser: argparse.ArgumentParser) -> None:
    """``--conf-dir``: the folder every command reads base.yaml and models/ from."""
    parser.add_argument("--conf-dir", default=os.environ.get("DRIFTLINE_CONF_DIR", "conf"), metavar="DIR",
                        help="folder with base.yaml and models/ (default: $DRIFTLINE_CONF_DIR or ./conf)")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--conf-dir``, ``--workspace`` and ``--set``: where the config comes from, for every command that loads it."""
    add_conf_dir(parser)
    parser.add_argument("--workspace", metavar="DIR",
                        help="workspace folder for tables, MLflow store and reports (overrides the config key "
                             "'workspace', default ./.driftline)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one config key, e.g. --set monitoring.drift.psi_threshold=0.3 "
                             "(repeatable; values are parsed as YAML: 3 → int, 0.3 → float, true → bool)")


def build_parser(job: str, prog: str | None = None) -> argparse.ArgumentParser:
    spec = JOBS[job]
    parser = CliParser(
        prog=prog or f"driftline {job}",
        description=f"{spec.description}\n\nreads: {spec.reads}\nwrites: {spec.writes}",
        epilog=EPILOG.format(job=job),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="model name; its config is <conf-dir>/models/NAME.yaml")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD",
                      help="logical date of the run (UTC calendar day)")
    when.add_argument("--from", dest="date_from", type=iso_date, metavar="YYYY-MM-DD",
                      help="first date of a range (inclusive); needs --to")
    parser.add_argument("--to", dest="date_to", type=iso_date, metavar="YYYY-MM-DD",
                        help="last date of a range (inclusive); needs --from")
    add_config_args(parser)
    parser.add_argument("--force", action="store_true",
                        help="redo work already recorded as complete (pipeline backfills)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="driftline log level (default: the config key logging.level)")
    return parser


def resolve_dates(args: argparse.Namespace) -> tuple[dt.date, ...]:
    if args.date is not None:
        if args.date_to is not None:
            raise UsageError("--to: only valid with --from, found it with --date")
        return (args.date,)
    if args.date_to is None:
        raise UsageError("--from: expected --to with the last date of the range, found none")
    if args.date_to < args.date_from:
        raise UsageError(f"--from/--to: expected --from <= --to, found {args.date_from} > {args.date_to}")
    days = (args.date_to - args.date_from).days + 1
    if days > MAX_RANGE_DAYS:
        raise UsageError(f"--from/--to: expected at most {MAX_RANGE_DAYS} days, found {days}")
    return tuple(args.date_from + dt.timedelta(days=i) for i in range(days))


# --------------------------------------------------------------------------- logging


def setup_logging(level: str, json_lines: bool = False) -> None:
    """Log driftline's records to stderr; quiet the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("driftline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("py4j", "mlflow", "alembic", "urllib3", "deltalake"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        })


# --------------------------------------------------------------------------- running


def command(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None,
            body: Callable[[argparse.Namespace], int]) -> int:
    """Parse ``argv`` and run ``body``; the process exit code, never raises. Every command goes through here.

    ``--help`` exits 0 and a usage error 2 (argparse prints it); an expected failure (`DriftlineError`)
    prints one line ``<prog>: error: ...`` and exits with its kind's code; Ctrl-C exits 130; anything
    else is unexpected and exits 1 with its traceback.
    """
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return body(args)
    except DriftlineError as exc:
        fail(prog, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        fail(prog, "interrupted")
        return 130
    except Exception:  # unexpected: the traceback is the useful part
        traceback.print_exc()
        return 1


def run_job(job: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``job`` with command-line ``argv``; return the process exit code (never raises)."""

    def body(args: argparse.Namespace) -> int:
        dates = resolve_dates(args)
        loaded = load_config(args.model, args.conf_dir, args.overrides, args.workspace)
        level = args.log_level or loaded.config.logging.level
        setup_logging(level, loaded.config.logging.json_lines)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # job logs, not a terminal widget
        return _execute(job, loaded, dates, force=args.force, quiet_spark=level != "DEBUG").exit_code

    return command(prog or f"driftline {job}", build_parser(job, prog), argv, body)


@contextlib.contextmanager
def job_context(job: str, loaded: LoadedConfig, dates: tuple[dt.date, ...], *, force: bool = False,
                quiet_spark: bool = True, run_id: str | None = None,
                started: dt.datetime | None = None) -> Iterator[JobContext]:
    """A `JobContext` for ``job`` on a Spark session built from the config (the workspace folder created); the
    session is stopped afterwards when this call started it (not when one was active already: tests, a pipeline)."""
    from pyspark.sql import SparkSession

    from driftline.runtime import build_spark

    cfg = loaded.config
    started = started or dt.datetime.now(dt.UTC).replace(microsecond=0)
    owned = SparkSession.getActiveSession() is None
    os.makedirs(cfg.workspace, exist_ok=True)
    spark = build_spark(cfg.runtime, cfg.workspace, quiet=quiet_spark, storage=cfg.storage)
    try:
        yield JobContext(job=job, loaded=loaded, dates=dates, spark=spark, run_id=run_id or new_run_id(job, started),
                         started_at=started, force=force)
    finally:
        if owned:
            spark.stop()


def _execute(job: str, loaded: LoadedConfig, dates: tuple[dt.date, ...], force: bool,
             quiet_spark: bool = True) -> JobResult:
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = new_run_id(job, started)
    cfg = loaded.config
    when = str(dates[0]) if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} days)"
    log.info("%s: model=%s date=%s run_id=%s config_hash=%s files=%s overrides=%s",
             job, cfg.name, when, run_id, loaded.config_hash, ",".join(loaded.files),
             " ".join(loaded.redacted_overrides()) or "-")
    log_config_once(loaded)
    with job_context(job, loaded, dates, force=force, quiet_spark=quiet_spark, run_id=run_id,
                     started=started) as ctx:
        result = jobs.run(ctx)
    log.info("%s: %s in %.1f s (run_id=%s)", job, "done" if result.status == jobs.OK else result.status,
             result.elapsed_seconds, run_id)
    return result


_CONFIGS_LOGGED: set[str] = set()


def log_config_once(loaded: LoadedConfig) -> None:
    """Log the resolved config (secrets masked) the first time this process runs a job with it.

    Keyed by the text, not the hash: the hash leaves out the environment keys (workspace, runtime, ...).
    """
    text = json.dumps(loaded.redacted(), sort_keys=True)
    if text in _CONFIGS_LOGGED:
        return
    _CONFIGS_LOGGED.add(text)
    log.info("resolved config %s: %s", loaded.config_hash, text)


def fail(name: str, message: str) -> None:
    line = " ".join(message.split())  # one line, whatever the message held
    print(f"{name}: error: {line}", file=sys.stderr)
