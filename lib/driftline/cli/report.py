"""``driftline report --model M --date D``: print the path of a monitor run's HTML report.

Exit codes: 0 the report exists (its path is printed) · 2 no report for that model and date, or a
configuration/usage problem; the error is one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from driftline.cli.runner import CliParser, iso_date


def report_command(argv: Sequence[str]) -> int:
    """``driftline report --model M --date D``: print the path of the run's HTML report (exit 2 if absent)."""
    from driftline.config import load_config
    from driftline.errors import DriftlineError
    from driftline.monitoring.job import report_path

    parser = CliParser(
        prog="driftline report",
        description="Print the path of the HTML monitoring report written by `driftline monitor` for a model "
                    "and date (<workspace>/reports/<model>/<date>.html).",
        epilog="exit codes: 0 the report exists (its path is printed) · 2 no report for that model and date, "
               "or a configuration/usage problem",
    )
    parser.add_argument("--model", required=True, metavar="NAME")
    parser.add_argument("--date", required=True, type=iso_date, metavar="YYYY-MM-DD")
    parser.add_argument("--conf-dir", default=os.environ.get("DRIFTLINE_CONF_DIR", "conf"), metavar="DIR")
    parser.add_argument("--workspace", metavar="DIR")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        cfg = load_config(args.model, args.conf_dir, [], args.workspace).config
    except DriftlineError as exc:
        print(f"driftline report: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    path = report_path(cfg.workspace, cfg.name, args.date)
    if not path.is_file():
        print(f"driftline report: error: report of {cfg.name} for {args.date}: expected {path}, found no file "
              f"(run driftline monitor --model {cfg.name} --date {args.date})", file=sys.stderr)
        return 2
    print(path)
    return 0
