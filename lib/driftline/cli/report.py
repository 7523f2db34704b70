"""``driftline report --model M --date D``: print the path of a monitor run's HTML report.

Exit codes: 0 the report exists (its path is printed) · 1 no report for that model and date (a missing
input, as in every job) · 2 a configuration or usage problem; the error is one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from driftline.cli.runner import CliParser, add_conf_dir, command, iso_date


def report_command(argv: Sequence[str]) -> int:
    """``driftline report --model M --date D``: print the path of the run's HTML report (exit 1 if absent)."""
    from driftline.config import load_config
    from driftline.errors import MissingInputError
    from driftline.jobs.monitor import report_path

    parser = CliParser(
        prog="driftline report",
        description="Print the path of the HTML monitoring report written by `driftline monitor` for a model "
                    "and date (<workspace>/reports/<model>/<date>.html).",
        epilog="exit codes: 0 the report exists (its path is printed) · 1 no report for that model and date · "
               "2 a configuration or usage problem",
    )
    parser.add_argument("--model", required=True, metavar="NAME")
    parser.add_argument("--date", required=True, type=iso_date, metavar="YYYY-MM-DD")
    add_conf_dir(parser)
    parser.add_argument("--workspace", metavar="DIR")

    def body(args: argparse.Namespace) -> int:
        cfg = load_config(args.model, args.conf_dir, [], args.workspace).config
        path = report_path(cfg.workspace, cfg.name, args.date)
        if not path.is_file():
            raise MissingInputError(f"report of {cfg.name} for {args.date}: expected {path}, found no file "
                                    f"(run driftline monitor --model {cfg.name} --date {args.date})")
        print(path)
        return 0

    return command("driftline report", parser, argv, body)
