"""``driftline status --model M [--date D] [--json]``: where a model stands, on one screen (no Spark started).

Exit codes: 0 the latest verdict is not an alert · 3 it is an alert (for shell checks) · 1 no tables of
the model in the workspace · 2 a configuration or usage problem; errors are one line.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from driftline.cli.runner import CliParser, add_config_args, command, iso_date


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="driftline status",
        description="One screen for a person on call: the latest verdict (drift, quality, performance) and the "
                    "columns that alerted with the numbers, champion/challenger/previous versions, the last run "
                    "of each job, the retrain episode, the alerts of the days before and the report's path. "
                    "Reads the tables with delta-rs and the MLflow registry; starts no Spark.",
        epilog="exit codes: 0 latest verdict not an alert · 3 latest verdict is an alert · 1 no tables of the model "
               "in the workspace · 2 configuration or usage problem\n\n"
               "examples:\n  driftline status --model churn\n"
               "  driftline status --model churn --date 2026-02-12 --json\n"
               "  driftline status --model churn --workspace /data/driftline || page-oncall",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="NAME", help="model name (conf/models/NAME.yaml)")
    parser.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD",
                        help="as of this run date (default: the latest monitor run)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON (for machines)")
    add_config_args(parser)
    return parser


def status_command(argv: Sequence[str]) -> int:
    """Run ``driftline status``; returns the exit code (never raises)."""
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def body(args: argparse.Namespace) -> int:
        from driftline.alerts.status import exit_code, gather, render, to_json
        from driftline.config import load_config

        cfg = load_config(args.model, args.conf_dir, args.overrides, args.workspace).config
        status = gather(cfg.name, str(cfg.workspace), cfg.storage, cfg.mlflow, args.date)
        print(to_json(status) if args.json else render(status))
        return exit_code(status)

    return command("driftline status", build_parser(), argv, body)
