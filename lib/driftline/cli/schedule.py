"""``driftline schedule --model M --kind K [--out FILE]``: print (or write) a scheduler rendering of the pipeline.

Exit codes: 0 rendered · 2 configuration or usage problem; the error is one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from driftline.cli.runner import CliParser, add_conf_dir, command, iso_date
from driftline.errors import UsageError
from driftline.pipeline.schedulers import KINDS, Target, render


def schedule_command(argv: Sequence[str], prog: str = "driftline schedule") -> int:
    """``driftline schedule --model M --kind K [--out FILE]``: print (or write) a scheduler rendering."""
    from driftline.config import load_config

    parser = CliParser(
        prog=prog,
        description="Render the daily pipeline of a model (prepare_features -> score -> monitor -> retrain, "
                    "schedule.cron of its configuration) for a scheduler: a crontab line, an Airflow DAG "
                    "(one SparkSubmitOperator per job), a Databricks Workflows job (Jobs API 2.1 JSON) or a "
                    "Databricks Asset Bundle (YAML).",
        epilog="exit codes: 0 rendered · 2 configuration or usage problem",
    )
    parser.add_argument("--model", required=True, metavar="NAME")
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("--out", metavar="FILE", help="write the rendering to FILE (default: print it)")
    add_conf_dir(parser)
    parser.add_argument("--workspace", metavar="DIR", help="workspace passed to every task (default: the config's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="configuration override used to read schedule.cron (not passed to the tasks)")
    parser.add_argument("--jobs-dir", default="jobs", metavar="DIR",
                        help="where the scheduler finds jobs/<job>.py (Airflow, Databricks; default: jobs)")
    parser.add_argument("--workdir", metavar="DIR", help="cron: cd here before running driftline")
    parser.add_argument("--retries", type=int, default=2, metavar="N", help="retries per task (default 2)")
    parser.add_argument("--retry-delay-minutes", type=int, default=10, metavar="M", help="default 10")
    parser.add_argument("--start-date", type=iso_date, default=None, metavar="YYYY-MM-DD",
                        help="Airflow: first logical date (catchup backfills from it; default 2026-01-01)")

    def body(args: argparse.Namespace) -> int:
        if args.retries < 0 or args.retry_delay_minutes < 0:
            raise UsageError(f"--retries/--retry-delay-minutes: expected numbers >= 0, found {args.retries}/"
                             f"{args.retry_delay_minutes}")
        cfg = load_config(args.model, args.conf_dir, args.overrides, None).config
        target = Target(model=cfg.name, cron=cfg.schedule.cron, conf_dir=str(args.conf_dir), jobs_dir=args.jobs_dir,
                        workspace=args.workspace, retries=args.retries,
                        retry_delay_minutes=args.retry_delay_minutes)
        text = render(args.kind, target, workdir=args.workdir,
                      start_date=(args.start_date.isoformat() if args.start_date else "2026-01-01"))
        if args.out:
            out = Path(args.out)
            if not out.parent.is_dir():
                raise UsageError(f"--out: expected a file in an existing folder, found no folder {out.parent}")
            out.write_text(text)
            print(out)
        else:
            sys.stdout.write(text)
        return 0

    return command(prog, parser, argv, body)
