#!/usr/bin/env python
"""Soak test (issue #11): a long pipeline backfill on the demo scenario, then a forced rerun of the whole range.

One workspace, everything through the public jobs (`driftline.cli.runner.run_job`, as `driftline
demo` runs them) on real Delta tables and a real MLflow (SQLite) registry:

1. the demo's churn scenario (`driftline.demo`) over ``--lead-days`` + ``--days`` days: source
   tables written, features backfilled for the lead days, the first champion trained on D1 with
   every label matured by then (as the demo trains its first champion);
2. ``pipeline --from D1 --to DN`` (prepare_features → score → monitor → retrain per date);
3. every Delta table of the workspace is read with delta-rs: rows, duplicate natural keys;
4. ``pipeline --from D1 --to DN --force`` (every date again), then: rows per table unchanged, no
   duplicate keys, every table's rows identical apart from `RUN_COLUMNS` (run ids, timestamps,
   durations, report paths, code version; doubles to 1e-12 relative + absolute: Spark merges
   float partial aggregates in task-completion order), the registry holds the same versions (the
   rerun trained nothing, R23) and the same champion, and the rerun rewrote every date.

Prints the wall time of both runs (and per date), rows and Delta versions per table, the driver's
and the JVM's memory, the load average, the checks passed, and a last line ``soak: OK`` or
``soak: FAILED: <what>`` (exit 0 / 1). Every pipeline step gets the same ``--set`` overrides: the
training windows of the first champion (the demo's; its retrain settings are the config's), no Evidently page (the demo
writes one on its last day only; ``--evidently`` writes one per date), the log level.

    .venv/bin/python scripts/soak_test.py                              # 60-day backfill, 1000 customers
    .venv/bin/python scripts/soak_test.py --days 6 --customers 200     # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_scoring import memory_line  # noqa: E402  (a sibling script: driver and JVM RSS probes)

MODEL = "churn"
# Days before D1: their labels matured by D1 train the first champion (the demo's default: 31 days,
# 16 labelled as-of dates with a 14-day horizon, 12 train and 4 validate).
LEAD_DAYS = 31
TOLERANCE = 1e-12
# Columns that legitimately differ between two runs of the same job (tests/jobs/test_pipeline_backfill.py).
RUN_COLUMNS = {"run_id", "train_run_id", "mlflow_run_id", "started_at", "created_at", "scored_at", "computed_at",
               "completed_at", "elapsed_seconds", "report_path", "code_version"}
EXAMPLES = 3  # example rows shown per failed comparison


def natural_keys(entity_key: str) -> dict[str, tuple[str, ...] | None]:
    """Natural key of every table the scenario and the jobs write (docs/*.md table contracts).

    None: no key is documented (every column apart from `RUN_COLUMNS` together is the key, so a
    duplicate is an identical row).
    """
    return {
        "churn_customers": ("customer_id", "valid_from"),
        "churn_events": None,
        "churn_labels": ("customer_id", "as_of_date"),
        f"{MODEL}__features": (entity_key, "as_of_date"),
        "quality_results": ("model", "as_of_date", "check"),
        "quarantine": None,
        "reference_profiles": ("model", "model_version", "column", "stat", "bin", "category", "quantile"),
        f"{MODEL}__predictions": ("model", "score_date", "role", entity_key),
        "scoring_stats": ("model", "score_date", "role", "column", "metric"),
        "monitor_metrics": ("model", "run_date", "model_version", "window_start", "window_end", "slice",
                            "baseline", "column", "metric"),
        "monitor_runs": ("model", "run_date"),
        "retrain_decisions": ("model", "decision_date"),
        "pipeline_runs": ("model", "run_date"),
    }


# --------------------------------------------------------------------------- checks


@dataclass
class Checks:
    """Named checks: passed ones counted, failed ones printed at once and named in the last line."""

    passed: int = 0
    failed: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
            print(f"  FAILED {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Table:
    name: str
    version: int
    frame: Any  # pandas DataFrame without RUN_COLUMNS
    key: tuple[str, ...]
    declared_key: bool
    run_ids: frozenset[str]  # the run ids that wrote the rows (the run_id column, when there is one)


def snapshot(tables_root: Path, keys: dict[str, tuple[str, ...] | None]) -> dict[str, Table]:
    """Every Delta table under ``tables_root``, read with delta-rs (no Spark), without `RUN_COLUMNS`."""
    from deltalake import DeltaTable

    out = {}
    for path in sorted(p for p in tables_root.iterdir() if (p / "_delta_log").is_dir()):
        table = DeltaTable(str(path))
        frame = table.to_pyarrow_table().to_pandas()
        run_ids = frozenset(frame["run_id"].dropna()) if "run_id" in frame else frozenset()
        frame = frame[[c for c in frame.columns if c not in RUN_COLUMNS]]
        declared = keys.get(path.name)
        out[path.name] = Table(path.name, table.version(), frame, tuple(declared or frame.columns),
                               declared is not None, run_ids)
    return out


def duplicates(table: Table) -> tuple[int, str]:
    """(rows whose key another row also holds, an example key)."""
    dup = table.frame.duplicated(subset=list(table.key), keep=False)
    if not dup.any():
        return 0, ""
    rows = dup.to_numpy().nonzero()[0][:2]
    return int(dup.sum()), "; ".join(_key_text(table.frame.iloc[i], table.key) for i in rows)


def compare(before: Table, after: Table) -> list[str]:
    """Differences between two snapshots of a table, rows matched on the key; empty when identical.

    Doubles match within `TOLERANCE` (relative and absolute), nulls match nulls, everything else
    exactly. Each problem names a count, the dates it touches and a few example rows.
    """
    import numpy as np
    import pandas as pd

    if list(before.frame.columns) != list(after.frame.columns):
        return [f"columns differ: {list(before.frame.columns)} vs {list(after.frame.columns)}"]
    key = list(before.key)

    def indexed(frame: pd.DataFrame) -> pd.DataFrame:
        # Keys as text: None/NaN and mixed types match the same on both sides.
        index = frame[key].astype(str).agg("\x1f".join, axis=1)
        out = frame.set_index(index.rename("__key"))
        return out[~out.index.duplicated(keep="first")].sort_index()  # duplicates are reported on their own

    a, b = indexed(before.frame), indexed(after.frame)
    problems = []
    for side, rows, other in (("before", a, b), ("after", b, a)):
        only = rows.index.difference(other.index)
        if len(only):
            problems.append(f"{len(only)} key(s) only {side} the rerun{_dates(rows.loc[only])}, e.g. "
                            + "; ".join(_key_text(rows.loc[k], key) for k in only[:EXAMPLES]))
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            same = np.isclose(x.to_numpy(), y.to_numpy(), rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True)
        else:
            same = ((x == y) | (x.isna() & y.isna())).to_numpy()
        if not same.all():
            rows = np.flatnonzero(~same)
            shown = "; ".join(f"{_key_text(a.iloc[i], key)}: {_plain(x.iloc[i])} → {_plain(y.iloc[i])}"
                              for i in rows[:EXAMPLES])
            problems.append(f"column {column}: {len(rows)} of {len(same)} rows differ{_dates(a.iloc[rows])}, "
                            f"e.g. {shown}")
    return problems


DATE_COLUMNS = ("score_date", "run_date", "decision_date", "as_of_date")


def _dates(rows: Any) -> str:
    """` on <dates>` of the rows' logical date column, when the table has one."""
    column = next((c for c in DATE_COLUMNS if c in rows.columns), None)
    if column is None:
        return ""
    days = sorted(set(rows[column]))
    return f" on {len(days)} {column}(s) " + _compact(days)


def _compact(days: list[dt.date]) -> str:
    """Dates as ranges: 2026-02-01..2026-02-03, 2026-02-07."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def _key_text(row: Any, key: Any) -> str:
    return "(" + ", ".join(f"{k}={_plain(row[k])}" for k in key) + ")"


def _plain(value: Any) -> str:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    text = str(value)
    return text if len(text) <= 160 else text[:160] + "…"


@dataclass(frozen=True)
class RegistryState:
    versions: tuple[str, ...]
    champion: str | None
    gates: tuple[tuple[tuple[str, str], ...], ...]


def registry_state(cfg: Any, workspace: str) -> RegistryState:
    from driftline.registry.client import ModelRegistry, clear_cache, tracking_setup
    from driftline.vocabulary import CHAMPION

    clear_cache()
    registry = ModelRegistry(tracking_setup(cfg.mlflow, workspace), MODEL)
    versions = registry.versions()
    champion = registry.alias(CHAMPION)
    gates = tuple(tuple(sorted((k, v) for k, v in info.tags.items() if k.startswith("driftline.gate.")))
                  for info in versions)
    return RegistryState(tuple(v.version for v in versions), champion.version if champion else None, gates)


# --------------------------------------------------------------------------- running


class SoakFailed(Exception):
    """A setup step or a pipeline run failed: the soak stops with this line."""


def progress_to_stdout() -> None:
    """The pipeline's per-date lines (and its warnings) on stdout, whatever level the jobs log at."""
    logger = logging.getLogger("driftline.jobs.pipeline")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("    %(message)s"))
    handler.addFilter(lambda r: r.levelno >= logging.WARNING or "completed" in r.getMessage())
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the runner's stderr handler gets the rest of driftline's records


def job(name: str, args: list[str], what: str) -> float:
    """Run one job through the shared runner; its wall time in seconds. `SoakFailed` on a non-zero exit."""
    from driftline.cli.runner import run_job

    t0 = time.monotonic()
    code = run_job(name, args)
    if code != 0:
        raise SoakFailed(f"{name} {what} exited {code}, expected 0 (its error is on stderr above)")
    return time.monotonic() - t0


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def build_parser() -> argparse.ArgumentParser:
    from driftline.cli.demo import non_negative_int, positive_int  # the demo's checks of the same options

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=positive_int, default=60, help="dates of the pipeline backfill D1..DN (default 60)")
    ap.add_argument("--customers", type=positive_int, default=1000, help="customers of the scenario (default 1000)")
    ap.add_argument("--seed", type=non_negative_int, default=7, help="random seed of the scenario (default 7)")
    ap.add_argument("--lead-days", type=positive_int, default=LEAD_DAYS, metavar="N",
                    help="scenario days before D1; their matured labels train the first champion "
                         f"(default {LEAD_DAYS})")
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1), metavar="YYYY-MM-DD",
                    help="first day of the scenario (default 2026-01-01; D1 is --lead-days later)")
    ap.add_argument("--conf-dir", default=str(ROOT / "conf"), metavar="DIR",
                    help="folder with base.yaml and models/churn.yaml (default: the repository's conf/)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                    help="extra config override for every job (repeatable), e.g. runtime.shuffle_partitions=4")
    ap.add_argument("--evidently", action="store_true", help="write the Evidently page of every date's report")
    ap.add_argument("--log-level", default="ERROR", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                    help="log level of the jobs on stderr (default ERROR; the pipeline's per-date lines always show)")
    ap.add_argument("--keep", action="store_true", help="keep the workspace (default: removed at the end)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    for name in ("days", "customers", "lead_days"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')}: expected a whole number >= 1, found {getattr(args, name)}")
    ws = Path(tempfile.mkdtemp(prefix="soak-"))
    checks = Checks()
    print(f"# soak test: {args.days}-day pipeline backfill then a forced rerun; {args.customers:,} customers, "
          f"seed {args.seed}; workspace {ws}", flush=True)
    print(f"start: {load_line()}", flush=True)
    try:
        failure = soak(args, ws, checks)
    except SoakFailed as exc:
        failure = str(exc)
    finally:  # soak() stops its SparkSession itself
        if args.keep:
            print(f"workspace kept: {ws}")
        else:
            shutil.rmtree(ws, ignore_errors=True)
    print(f"end: {load_line()}")
    print(f"checks: {checks.passed} passed, {len(checks.failed)} failed")
    if failure or checks.failed:
        what = failure or f"{len(checks.failed)} check(s): " + ", ".join(checks.failed)
        print(f"soak: FAILED: {what}")
        return 1
    print("soak: OK")
    return 0


def soak(args: argparse.Namespace, ws: Path, checks: Checks) -> str | None:
    """The soak run; returns the failure line of a step that could not run (None when all ran)."""
    from driftline.cli.demo import HISTORY_DAYS, _split, _windows, prepare_workspace
    from driftline.config import load_config
    from driftline.demo.data import Scenario, write_scenario
    from driftline.jobs.context import code_version, new_run_id
    from driftline.registry.client import ModelRegistry, tracking_setup
    from driftline.runtime import build_spark
    from driftline.tables import CommitInfo, open_store
    from driftline.vocabulary import CHAMPION

    workspace = str(ws)
    scenario = Scenario(customers=args.customers, days=args.lead_days + args.days, seed=args.seed, start=args.start,
                        history_days=HISTORY_DAYS)
    first, last = scenario.date(args.lead_days), scenario.end
    horizon = scenario.horizon_days
    labelled = args.lead_days - horizon - 1  # as-of dates 1 .. lead - horizon - 1 have matured labels on D1
    if labelled < 4:
        return f"--lead-days: expected at least {horizon + 5} days (4 labelled as-of dates), found {args.lead_days}"
    overrides = [*_windows(*_split(labelled)), "--set", f"logging.level={args.log_level}"]
    if not args.evidently:
        overrides += ["--set", "monitoring.report.evidently_rows=0"]
    for item in args.overrides:
        overrides += ["--set", item]
    common = ["--model", MODEL, "--conf-dir", args.conf_dir, "--workspace", workspace, *overrides]
    loaded = load_config(MODEL, args.conf_dir, [a for a in overrides if a != "--set"], workspace)
    cfg = loaded.config
    from driftline.cli.runner import setup_logging

    setup_logging(args.log_level)
    import mlflow  # noqa: F401  (imported first: mlflow sets its own log level on import)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    progress_to_stdout()
    ph = scenario.phases
    print(f"scenario: {scenario.days} days from {scenario.start} ({HISTORY_DAYS} history days before); backfill "
          f"D1..DN = {first}..{last}; covariate shift {scenario.date(ph.shift_day)}, new categories "
          f"{scenario.date(ph.new_category_day)}, concept change {scenario.date(ph.concept_day)}", flush=True)
    prepare_workspace(ws)
    spark = build_spark(cfg.runtime, workspace)
    store = open_store(spark, cfg.storage, workspace)

    try:
        t0 = time.monotonic()
        run_id = new_run_id("soak", dt.datetime.now(dt.UTC))
        key = f"scenario-{scenario.start}-{scenario.days}d-{scenario.customers}c-seed{scenario.seed}"
        written = write_scenario(store, scenario, lambda table: CommitInfo(
            job="soak", run_id=run_id, key=key, code_version=code_version(), config_hash=loaded.config_hash))
        print(f"[1] source tables in {time.monotonic() - t0:.1f} s: "
              + ", ".join(f"{name} {rows:,} rows" for name, rows in written.items()), flush=True)
        lead = f"{scenario.date(1)}..{first - dt.timedelta(days=1)}"
        took = job("prepare_features", [*common, "--from", str(scenario.date(1)), "--to",
                                        str(first - dt.timedelta(days=1))], lead)
        print(f"    prepare_features {lead} in {took:.1f} s", flush=True)
        took = job("train", [*common, "--date", str(first)], str(first))
        registry = ModelRegistry(tracking_setup(cfg.mlflow, workspace), MODEL)
        if registry.alias(CHAMPION) is None:  # the first gate is not what a soak is about
            registry.promote("1", "soak test: first champion")
        print(f"    first champion v{registry.alias(CHAMPION).version} trained for {first} in {took:.1f} s "
              f"({_split(labelled)[0]} train + {_split(labelled)[1]} validation days)", flush=True)

        backfill_args = [*common, "--from", str(first), "--to", str(last)]
        print(f"[2] backfill: driftline pipeline --from {first} --to {last}", flush=True)
        backfill = job("pipeline", backfill_args, f"{first}..{last}")
        print(f"    backfill: {args.days} dates in {backfill:.1f} s ({backfill / args.days:.1f} s per date)")
        print(memory_line("    after the backfill"), flush=True)

        print("[3] snapshot of every Delta table", flush=True)
        keys = natural_keys(cfg.entity_key)
        tables_root = Path(store.location(f"{MODEL}__features")).parent
        before = snapshot(tables_root, keys)
        reg_before = registry_state(cfg, workspace)
        print(memory_line("    after the snapshot (held in memory for the comparison)"), flush=True)
        for table in before.values():
            checks.check(f"{table.name}: no duplicate keys after the backfill", *_no_duplicates(table))
        _coverage(before, first, last, checks)

        print(f"[4] rerun: driftline pipeline --from {first} --to {last} --force", flush=True)
        rerun = job("pipeline", [*backfill_args, "--force"], f"{first}..{last} --force")
        print(f"    rerun: {args.days} dates in {rerun:.1f} s ({rerun / args.days:.1f} s per date)")
        print(memory_line("    after the rerun"), flush=True)
        after = snapshot(tables_root, keys)
        reg_after = registry_state(cfg, workspace)
    finally:
        spark.stop()

    print("[5] checks after the rerun", flush=True)
    checks.check("same tables after the rerun", sorted(before) == sorted(after),
                 f"{sorted(before)} vs {sorted(after)}")
    for name in sorted(set(before) & set(after)):
        b, a = before[name], after[name]
        checks.check(f"{name}: row count unchanged", len(a.frame) == len(b.frame), f"{len(b.frame)} → {len(a.frame)}")
        checks.check(f"{name}: no duplicate keys after the rerun", *_no_duplicates(a))
        problems = compare(b, a)
        checks.check(f"{name}: rows identical", not problems, "\n      " + "\n      ".join(problems))
    pr_b, pr_a = before.get("pipeline_runs"), after.get("pipeline_runs")
    if pr_b is not None and pr_a is not None:
        checks.check("pipeline_runs: the rerun recorded every date again (new run ids only)",
                     pr_a.version > pr_b.version and not (pr_a.run_ids & pr_b.run_ids),
                     f"version {pr_b.version} → {pr_a.version}, run ids kept: {sorted(pr_a.run_ids & pr_b.run_ids)}")
    checks.check("registry: no new version (R23)", reg_after.versions == reg_before.versions,
                 f"{list(reg_before.versions)} → {list(reg_after.versions)}")
    checks.check("registry: champion unchanged", reg_after.champion == reg_before.champion,
                 f"v{reg_before.champion} → v{reg_after.champion}")
    checks.check("registry: gate tags unchanged", reg_after.gates == reg_before.gates)

    print("\nfigures:")
    print(f"  backfill {args.days} dates: {backfill:8.1f} s  ({backfill / args.days:5.1f} s per date)")
    print(f"  rerun    {args.days} dates: {rerun:8.1f} s  ({rerun / args.days:5.1f} s per date, "
          f"{rerun / backfill:.2f}x the backfill)")
    print(f"  registry after the backfill: versions {', '.join(reg_before.versions)}, champion v{reg_before.champion}; "
          f"after the rerun: versions {', '.join(reg_after.versions)}, champion v{reg_after.champion}")
    for label, tables in (("backfill", before), ("rerun", after)):
        print(f"  {label}: {_retrains(tables)}; champion that scored: {_scored_by(tables)}")
    print(f"  {'table':<22} {'rows':>10}  {'rows after rerun':>16}  delta versions (backfill → rerun)")
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        rows_b, rows_a = (f"{len(t.frame):,}" if t else "-" for t in (b, a))
        print(f"  {name:<22} {rows_b:>10}  {rows_a:>16}  {b.version if b else '-'} → {a.version if a else '-'}")
    return None


def _retrains(tables: dict[str, Table]) -> str:
    """The retrain decisions that fired: date, version trained, gate verdict."""
    decisions = tables.get("retrain_decisions")
    if decisions is None:
        return "no retrain_decisions"
    fired = decisions.frame[decisions.frame["fired"].astype(bool)].sort_values("decision_date")
    if fired.empty:
        return "retrain never fired"
    return "retrain fired " + ", ".join(
        f"{r.decision_date} (v{r.trained_version} {r.train_status}, gate "
        f"{'passed' if r.gate_passed else 'failed'})" for r in fired.itertuples())


def _scored_by(tables: dict[str, Table]) -> str:
    """Which version scored which dates as champion: v1 on D1..D5, v2 on D6..DN."""
    predictions = tables.get(f"{MODEL}__predictions")
    if predictions is None:
        return "no predictions"
    champion = predictions.frame[predictions.frame["role"] == "champion"]
    by_version = champion.groupby("model_version")["score_date"].agg(lambda d: sorted(set(d)))
    return ", ".join(f"v{v} on {_compact(days)}" for v, days in sorted(by_version.items(), key=lambda i: i[1][0]))


def _no_duplicates(table: Table) -> tuple[bool, str]:
    count, example = duplicates(table)
    what = (f"share a key ({', '.join(table.key)})" if table.declared_key
            else "are identical to another row (no documented key: the whole row is the key)")
    return count == 0, f"{count} rows {what}, e.g. {example}"


def _coverage(tables: dict[str, Table], first: dt.date, last: dt.date, checks: Checks) -> None:
    """The backfill wrote every date: pipeline_runs, monitor_runs, retrain_decisions, predictions."""
    want = {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}
    for name, column in (("pipeline_runs", "run_date"), ("monitor_runs", "run_date"),
                         ("retrain_decisions", "decision_date"), (f"{MODEL}__predictions", "score_date")):
        table = tables.get(name)
        got = set(table.frame[column]) if table is not None else set()
        missing = sorted(want - got)
        checks.check(f"{name}: every backfill date present", not missing,
                     f"{len(missing)} missing, e.g. {[str(d) for d in missing[:EXAMPLES]]}")


if __name__ == "__main__":
    sys.exit(main())
