"""``driftline models list | promote VERSION | rollback | adopt``: look at and move the registry aliases, and adopt
a model trained outside driftline (`driftline.jobs.adopt`).

Exit codes: 0 ok · 2 configuration or usage (unknown version, nothing to roll back, a model that does not fit the
config, a pickled model without ``adopt.trust_pickle``) · 1 any other failure (e.g. the artifact of the version to
promote fails its hash check). Errors are one line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from driftline.cli.runner import CliParser, add_config_args, command, iso_date  # usage errors in one line

if TYPE_CHECKING:
    from driftline.config import LoadedConfig
    from driftline.registry.client import ModelRegistry

log = logging.getLogger(__name__)

DESCRIPTION = """Registered versions of a model and its aliases in the MLflow registry.

  list             every version: aliases, creation time, training date, gate outcome, artifact hash
  promote VERSION  make VERSION the champion (its artifact hash is verified first); the old
                   champion becomes 'previous'
  rollback         make the 'previous' version champion again
  adopt            register a model trained outside driftline (an MLflow model URI) as a new version:
                   reference profile from a date range, then the promotion gate; without --model-uri,
                   a monitor-only model's version (sources.inference: the scores its log recorded)"""

EPILOG = """exit codes: 0 ok · 2 configuration/usage (unknown version, no previous version) · 1 other error

examples:
  driftline models list --model churn
  driftline models promote 3 --model churn
  driftline models rollback --model churn --workspace /data/driftline
  driftline models adopt --model churn --model-uri models:/churn_xgb/3 \
      --reference-from 2026-02-01 --reference-to 2026-02-28
  driftline models adopt --model loans_served --reference-from 2026-02-01 --reference-to 2026-02-28"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", required=True, metavar="NAME", help="model name (conf/models/NAME.yaml)")
    add_config_args(common)
    parser = CliParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True, metavar="{list,promote,rollback,adopt}")
    sub.add_parser("list", parents=[common], help="list versions and aliases",
                   description="List every registered version of the model with its aliases.")
    promote = sub.add_parser("promote", parents=[common], help="make VERSION the champion",
                             description="Verify the artifact of VERSION, then move 'champion' to it "
                                         "('previous' keeps the old champion).")
    promote.add_argument("version", metavar="VERSION", help="registered version number")
    sub.add_parser("rollback", parents=[common], help="make the previous version champion again",
                   description="Move 'champion' back to the version holding 'previous' (then drop 'previous').")
    adopt = sub.add_parser(
        "adopt", parents=[common], help="adopt a model trained outside driftline",
        description="Read the MLflow model at --model-uri without running its code (scikit-learn with skops, "
                    "XGBoost, LightGBM; pickle only with adopt.trust_pickle: true), check its inputs against the "
                    "config's features, score the labelled rows of the reference window, register it as a new "
                    "version with its reference profile and put it through the promotion gate. A monitor-only "
                    "model (sources.inference) takes no --model-uri: its version's predictions are the scores "
                    "its inference log recorded.")
    adopt.add_argument("--model-uri", metavar="URI",
                       help="MLflow model URI: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH or a path "
                            "(required, except for a monitor-only model)")
    adopt.add_argument("--reference-from", required=True, type=iso_date, metavar="YYYY-MM-DD",
                       help="first as-of date of the reference window (inclusive)")
    adopt.add_argument("--reference-to", required=True, type=iso_date, metavar="YYYY-MM-DD",
                       help="last as-of date of the reference window (inclusive)")
    adopt.add_argument("--reference-table", metavar="TABLE",
                       help="take the reference rows from TABLE (entity key, as_of_date, the features and a label "
                            "column) instead of the features table and the labels")
    adopt.add_argument("--label-column", default="label", metavar="COLUMN",
                       help="the label column of --reference-table (default: label)")
    adopt.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD",
                       help="the run's date: labels known before it are used (default: today, UTC)")
    adopt.add_argument("--promote", action="store_true",
                       help="make the version champion even if the gate does not pass (recorded on the version)")
    adopt.add_argument("--force", action="store_true", help="adopt again when the same adoption was already done")
    return parser


def models_command(argv: Sequence[str], prog: str = "driftline models") -> int:
    """Run ``driftline models ...``; returns the exit code (never raises)."""
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return command(prog, build_parser(prog), argv, _dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    from driftline.config import load_config
    from driftline.registry.client import ModelRegistry, tracking_setup

    loaded = load_config(args.model, args.conf_dir, args.overrides, args.workspace)
    cfg = loaded.config
    if args.action == "adopt":
        return adopt(args, loaded)
    registry = ModelRegistry(tracking_setup(cfg.mlflow, cfg.workspace), cfg.name)
    if args.action == "list":
        print_versions(registry)
    elif args.action == "promote":
        target = registry.get(args.version)
        current = registry.alias("champion")
        if current is not None and current.version == target.version:
            print(f"{cfg.name}: v{target.version} is already the champion; nothing changed")
            return 0
        old = registry.promote(target.version, "manual: driftline models promote")
        print(f"{cfg.name}: champion is now v{target.version}"
              + (f" (previous: v{old.version})" if old else " (no previous champion)"))
    else:
        restored, demoted = registry.rollback("manual: driftline models rollback")
        print(f"{cfg.name}: rolled back champion v{demoted.version if demoted else '-'} → v{restored.version}")
    return 0


def adopt(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """``driftline models adopt``: run `driftline.jobs.adopt` on a Spark session of the config."""
    import datetime as dt
    import os

    from driftline.cli.runner import job_context, setup_logging
    from driftline.jobs import guarded
    from driftline.jobs.adopt import Request, check, run
    from driftline.registry.client import ModelRegistry, tracking_setup

    cfg = loaded.config
    setup_logging(cfg.logging.level, cfg.logging.json_lines)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    date = args.date or dt.datetime.now(dt.UTC).date()
    request = Request(args.model_uri, args.reference_from, args.reference_to, args.promote, args.reference_table,
                      args.label_column)
    checked = check(cfg, request, date)        # the model is read and checked before Spark starts
    with job_context("adopt", loaded, (date,), force=args.force) as ctx:
        result = guarded(ctx, lambda c: run(c, request, checked))   # alerts job_failed rules, syncs the catalog
    registry = ModelRegistry(tracking_setup(cfg.mlflow, cfg.workspace), cfg.name)
    info = registry.get(str(result.model_version))
    gate = {"true": "gate passed", "false": "gate failed"}.get(info.tags.get("driftline.gate.passed", ""), "no gate")
    roles = ", ".join(info.aliases) or "no alias"
    print(f"{cfg.name}: v{info.version} {'already adopted' if result.status == 'skipped' else 'adopted'} from "
          f"{request.source(cfg)} ({gate}; {roles})")
    return result.exit_code


def print_versions(registry: ModelRegistry) -> None:
    """CLI output: one line per version (newest first)."""
    versions = registry.versions()
    if not versions:
        print(f"{registry.name}: no registered versions")
        return
    header = ("VERSION", "ALIASES", "CREATED (UTC)", "DATE", "GATE", "METRIC", "SHA256")
    rows = []
    for v in reversed(versions):
        t = v.tags
        gate = {"true": "passed", "false": "failed"}.get(t.get("driftline.gate.passed", ""), "-")
        metric = (f"{t['driftline.gate.metric']}={float(t['driftline.gate.challenger']):.4f}"
                  if "driftline.gate.metric" in t and "driftline.gate.challenger" in t else "-")
        rows.append((v.version, ",".join(v.aliases) or "-", f"{v.created:%Y-%m-%d %H:%M:%S}",
                     t.get("driftline.date", "-"), gate, metric, (v.sha256 or "-")[:12]))
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(models_command(sys.argv[1:]))
