"""``driftline alerts``: the alerts a model raised (``list``, from ``alert_events``, no Spark) and sending one again
on purpose (``resend``: the only way an alert already delivered for a window goes out again).

Exit codes: 0 done · 1 no such alert, no table, or a resend that reached no channel · 2 configuration or
usage problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

from driftline.cli.runner import CliParser, add_config_args, command, iso_date, setup_logging

NOT_DELIVERED = 1
LIST_COLUMNS = ("run_date", "job", "rule", "window", "severity", "status", "delivered", "attempts", "resends", "title")


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="driftline alerts",
        description="The alerts a model's rules raised (alert_events) and sending one again. A rerun, backfill or "
                    "--force never sends an alert twice for the same (model, rule, window); resend does.",
        epilog="examples:\n  driftline alerts list --model churn --since 2026-02-01\n"
               "  driftline alerts resend --model churn --rule drift_pager --window 2026-02-06..2026-02-12\n"
               "  driftline alerts resend --model churn --rule drift_pager --window 2026-02-06..2026-02-12 "
               "--channel slack --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{list,resend}")
    ls = sub.add_parser("list", help="the model's alert_events rows, newest first (reads with delta-rs, no Spark)")
    ls.add_argument("--model", required=True, metavar="NAME", help="model name (conf/models/NAME.yaml)")
    ls.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD", help="only run dates on or after this one")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_args(ls)
    rs = sub.add_parser("resend", help="send a recorded alert again (delivered or not) and record it")
    rs.add_argument("--model", required=True, metavar="NAME", help="model name (conf/models/NAME.yaml)")
    rs.add_argument("--rule", required=True, metavar="RULE", help="the rule's name (alerts.rules[].name)")
    rs.add_argument("--window", required=True, metavar="WINDOW",
                    help="the alert's window as `alerts list` shows it (START..END, a date, or JOB@DATE)")
    rs.add_argument("--channel", dest="channels", action="append", default=[], metavar="NAME",
                    help="only this channel of alerts.channels (repeatable; default: the rule's channels)")
    rs.add_argument("--dry-run", action="store_true", help="print what would be sent; send and record nothing")
    add_config_args(rs)
    return parser


def list_rows(model: str, workspace: str, storage: Any, since: dt.date | None) -> list[dict[str, Any]]:
    from driftline.errors import MissingInputError
    from driftline.tables.contracts import ALERT_EVENTS
    from driftline.tables.driver_read import DriverTables

    tables = DriverTables(storage, workspace)
    if not tables.exists(ALERT_EVENTS.table()):
        raise MissingInputError(f"alerts of {model}: expected the alert_events table in workspace {workspace}, found "
                                "none (no rule has fired yet, or alerts.rules is empty)")
    rows = [r for r in tables.rows(ALERT_EVENTS.table(), model=model) if since is None or r["run_date"] >= since]
    return sorted(rows, key=lambda r: (r["run_date"], r["updated_at"]), reverse=True)


def _print_rows(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for r in rows:
            print(json.dumps({k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in r.items()},
                             sort_keys=True))
        return
    if not rows:
        print("no alerts")
        return
    table = [[str(r[c]) if r[c] is not None else "" for c in LIST_COLUMNS] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(LIST_COLUMNS[:-1])]
    print("  ".join(c.ljust(w) for c, w in zip(LIST_COLUMNS, [*widths, 0], strict=True)).rstrip())
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, [*widths, 0], strict=True)).rstrip())


def alerts_command(argv: Sequence[str]) -> int:
    """Run ``driftline alerts``; returns the exit code (never raises)."""
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def body(args: argparse.Namespace) -> int:
        from driftline.config import load_config

        overrides = [*args.overrides, *(["alerts.dry_run=true"] if getattr(args, "dry_run", False) else [])]
        loaded = load_config(args.model, args.conf_dir, overrides, args.workspace)
        cfg = loaded.config
        if args.action == "list":
            _print_rows(list_rows(cfg.name, str(cfg.workspace), cfg.storage, args.since), args.json)
            return 0
        setup_logging(cfg.logging.level, cfg.logging.json_lines)
        return _resend(loaded, args.rule, args.window, args.channels)

    return command("driftline alerts", build_parser(), argv, body)


def _resend(loaded: Any, rule: str, window: str, channels: Sequence[str]) -> int:
    from driftline.cli.runner import job_context
    from driftline.jobs.notify import resend

    today = dt.datetime.now(dt.UTC).date()
    with job_context("alerts_resend", loaded, (today,)) as ctx:
        results = resend(ctx, rule, window, channels)
    for r in results:
        print(f"{r.channel}: {'sent' if r.ok else 'not sent'} ({r.attempts} attempt(s))"
              f"{'' if r.ok else ': ' + str(r.error)}")
    return NOT_DELIVERED if results and not any(r.ok for r in results) else 0
