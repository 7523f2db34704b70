"""``driftline demo``: generate the drifting churn scenario and run the pipeline's jobs on it.

The demo writes the scenario's source tables through the table layer, then runs the jobs through
the same runner the command line uses (each with its own ``--set`` overrides), and prints a short
story with numbers and where everything is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline.cli.demo_story import (
    day_line,
    step,
    story_loop,
    story_monitoring,
    story_quality,
    story_registry,
    story_retrain,
    story_scores,
)
from driftline.cli.runner import CliParser, add_conf_dir, command, run_job, setup_logging
from driftline.config import load_config
from driftline.config.schema import DriftlineConfig
from driftline.demo.data import Scenario, write_scenario
from driftline.errors import UsageError
from driftline.jobs.context import code_version, new_run_id
from driftline.registry.client import tracking_setup
from driftline.tables import contracts as T

log = logging.getLogger(__name__)

MODEL = "churn"
# Days of stable events before the scenario starts, so the feature windows (at most 14 days) are full on day one.
HISTORY_DAYS = 30
# The day offset of the change of the world: a covariate shift and new categories the same day, then a stable
# new regime (no concept change within the demo's days). The default --days leave room for the whole loop:
# drift, a retrain armed while labels are pre-shift, fired once the new regime's labels matured
# (retrain.wait_for_labels in conf/models/churn.yaml), the promotion, and a week of labels after it.
SHIFT_DAY = 40
DEFAULT_DAYS = 87
# Stable days scored and monitored before the covariate shift (the monitor's false-alarm check).
STABLE_DAYS = 5
# Validation days of a retrain (the newest matured days; inside a drift episode, all after its onset).
RETRAIN_VALIDATION_DAYS = 7


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(  # usage errors in one line
        prog="driftline demo",
        description="Generate a deterministic churn scenario (stable period, covariate shift, a new category, "
                    "a concept change) as Delta source tables and run the pipeline on it day by day.",
        epilog="example: driftline demo --days 77 --customers 5000 --seed 7 --workspace .driftline/demo",
    )
    parser.add_argument("--days", type=positive_int, default=DEFAULT_DAYS,
                        help=f"days of events to simulate; the world changes on day {SHIFT_DAY} "
                             f"(default {DEFAULT_DAYS})")
    parser.add_argument("--customers", type=positive_int, default=5000, help="customers at the start (default 5000)")
    parser.add_argument("--seed", type=non_negative_int, default=7, help="random seed of the scenario (default 7)")
    parser.add_argument("--stable-days", type=non_negative_int, default=STABLE_DAYS, metavar="N",
                        help="stable days before the covariate shift to score and monitor day by day (the first "
                             f"champion is trained before them; default {STABLE_DAYS})")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1), metavar="YYYY-MM-DD",
                        help="first day of the scenario (default 2026-01-01)")
    parser.add_argument("--workspace", default=".driftline/demo", metavar="DIR",
                        help="workspace folder for the demo's tables and stores (default .driftline/demo)")
    add_conf_dir(parser)
    return parser


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, found {text!r}")
    return value


def demo_command(argv: Sequence[str]) -> int:
    """Run the demo; returns the exit code (the first failing step's code, 0 when all passed)."""
    return command("driftline demo", build_parser(), argv, _run)


@dataclass(frozen=True)
class _Demo:
    """One demo run: its config and scenario, the options every job gets, the first champion's dates."""

    args: argparse.Namespace
    workspace: str
    cfg: DriftlineConfig
    config_hash: str
    scenario: Scenario
    windows: list[str]  # the first champion's training windows (--set options)
    common: list[str]
    train_date: dt.date  # the first champion's run date, --stable-days before the shift
    shift_date: dt.date


def _run(args: argparse.Namespace) -> int:
    demo = _load(args)
    t_all = time.monotonic()
    store, written = _write_sources(demo)
    for stage in (_backfill_features, _first_champion, _day_by_day):
        code = stage(demo, store)
        if code != 0:
            return code
    _closing_story(demo, store, written, t_all)
    return 0


def _load(args: argparse.Namespace) -> _Demo:
    """The config and the scenario; fails early on a scenario too short to train on."""
    workspace = str(Path(args.workspace))
    loaded = load_config(MODEL, args.conf_dir, (), workspace)
    setup_logging("ERROR")  # the demo tells its own story on stdout (quality warnings included)
    import mlflow  # noqa: F401  (imported first: mlflow sets its own log level on import)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # one change of the world on SHIFT_DAY (covariate shift and new categories), no concept change in the demo
    scenario = Scenario(customers=args.customers, days=args.days, seed=args.seed, start=args.start,
                        history_days=HISTORY_DAYS, shift_day=SHIFT_DAY, new_category_day=SHIFT_DAY,
                        concept_day=max(args.days, SHIFT_DAY + 1))
    windows = _windows(*_training_split(scenario, loaded.config.label.horizon_days, args.stable_days))  # fail early
    common = ["--model", MODEL, "--conf-dir", args.conf_dir, "--workspace", workspace, "--log-level", "ERROR"]
    return _Demo(args, workspace, loaded.config, loaded.config_hash, scenario, windows, common,
                 scenario.date(scenario.phases.shift_day - args.stable_days), scenario.date(scenario.phases.shift_day))


def _write_sources(demo: _Demo) -> tuple[Any, dict[str, int]]:
    """[1] A clean workspace, Spark, and the scenario's source tables; the store and the rows written per table."""
    from driftline.runtime import build_spark
    from driftline.tables import CommitInfo, open_store

    scenario, workspace = demo.scenario, demo.workspace
    step(f"driftline demo: {scenario.customers} customers, {scenario.days} days from {scenario.start} "
         f"(seed {scenario.seed}), workspace {workspace}")
    ph = scenario.phases
    step(f"    scenario: stable until {scenario.date(ph.shift_day - 1)}, then from {scenario.date(ph.shift_day)} a "
         "covariate shift (activity x2, a price rise, web to app) and new categories (a voice channel, a family "
         f"plan), stable again once the 14-day features settle; labels arrive {scenario.horizon_days} days late")
    if prepare_workspace(Path(workspace)):
        step(f"    replaced the previous demo in {workspace} (a demo run starts from a clean workspace)")
    spark = build_spark(demo.cfg.runtime, workspace)
    store = open_store(spark, demo.cfg.storage, workspace)

    t0 = time.monotonic()
    run_id = new_run_id("demo", dt.datetime.now(dt.UTC))
    key = f"scenario-{scenario.start}-{scenario.days}d-{scenario.customers}c-seed{scenario.seed}"
    written = write_scenario(store, scenario, lambda table: CommitInfo(
        job="demo", run_id=run_id, key=key, code_version=code_version(), config_hash=demo.config_hash))
    step(f"[1] source tables written in {time.monotonic() - t0:.1f} s: "
          + ", ".join(f"{name} {rows:,} rows" for name, rows in written.items()))
    return store, written


def _backfill_features(demo: _Demo, store: Any) -> int:
    """[2] One prepare_features job over every date, then what the quality checks flagged."""
    first, last = demo.scenario.start + dt.timedelta(days=1), demo.scenario.end
    t0 = time.monotonic()
    code = run_job("prepare_features", [*demo.common, "--from", str(first), "--to", str(last)])
    if code != 0:
        step(f"[2] prepare_features failed with exit code {code}; stopping")
        return code
    per_day = store.read(T.FEATURES.table(MODEL)).groupBy("as_of_date").count().orderBy("as_of_date").collect()
    step(f"[2] prepare_features {first}..{last} (one backfill job) in {time.monotonic() - t0:.1f} s: "
         f"{sum(r['count'] for r in per_day):,} feature rows over {len(per_day)} dates")
    story_quality(store)
    return 0


def _first_champion(demo: _Demo, store: Any) -> int:
    """[3] Train the first champion on the stable period."""
    train_date = demo.train_date
    t0 = time.monotonic()
    code = run_job("train", [*demo.common, "--date", str(train_date), *demo.windows])
    if code != 0:
        step(f"[3] train for {train_date} failed with exit code {code}; stopping")
        return code
    step(f"[3] train on the stable period (run date {train_date}, {demo.args.stable_days} day(s) before the "
         f"shift) in {time.monotonic() - t0:.1f} s:")
    story_registry(demo.cfg, demo.workspace)
    return 0


def _day_by_day(demo: _Demo, store: Any) -> int:
    """[4] From the first champion's day to the last: score, monitor, retrain policy — one line per day."""
    cfg, scenario, last, shift_date = demo.cfg, demo.scenario, demo.scenario.end, demo.shift_date
    step(f"[4] day by day {demo.train_date}..{last} ({demo.args.stable_days} stable day(s), then the shift from "
         f"{shift_date}): score with the champion, monitor the {cfg.monitoring.window_days}-day window against "
         "the champion's reference, evaluate the retrain policy")
    t0 = time.monotonic()
    day = demo.train_date
    while day <= last:
        t_day = time.monotonic()
        # A retrain trains on every label matured by its day (as the first champion did on its day).
        labelled = scenario.days_from_start(day) - cfg.label.horizon_days - 1
        policy = _windows(*_split(labelled)) if labelled >= 4 else []
        # The Evidently page (seconds and ~4 MB per day) only for the last day: its report links it.
        pages = [] if day == last else ["--set", "monitoring.report.evidently_rows=0"]
        for job, extra in (("score", []), ("monitor", pages), ("retrain", policy)):
            code = run_job(job, [*demo.common, "--date", str(day), *extra])
            if code != 0:
                step(f"    {day}: {job} failed with exit code {code}; stopping")
                return code
        phase = "stable" if day < shift_date else "shift "
        step(f"    {day} {phase}: {day_line(store, day)}  ({time.monotonic() - t_day:.1f} s)")
        day += dt.timedelta(days=1)
    step(f"    {(last - demo.train_date).days + 1} days in {time.monotonic() - t0:.1f} s")
    return 0


def _closing_story(demo: _Demo, store: Any, written: dict[str, int], t_all: float) -> None:
    """[5] What happened (scores, monitoring, retrains, versions) and where everything is."""
    cfg, workspace, conf_dir = demo.cfg, demo.workspace, demo.args.conf_dir
    step("[5] what happened:")
    story_scores(store, cfg.label.threshold)
    story_monitoring(store, demo.shift_date)
    story_retrain(store)
    story_registry(cfg, workspace)
    story_loop(store, cfg, workspace, demo.shift_date, demo.scenario.end)

    tables_root = Path(store.location(T.FEATURES.table(MODEL))).parent
    step(f"\nDone in {time.monotonic() - t_all:.0f} s. Tables are Delta tables under {tables_root}:")
    for name in (*written, *(c.table(MODEL) for c in T.ALL)):
        if store.exists(name):
            step(f"  {name:<22} version {store.version(name)}  {store.location(name)}")
    step("Open one in pandas:   python -c \"import deltalake; "
         f"print(deltalake.DeltaTable('{store.location(T.FEATURES.table(MODEL))}').to_pandas().head())\"")
    step(f"MLflow store: {tracking_setup(cfg.mlflow, workspace).tracking_uri}  "
         f"(browse: mlflow ui --backend-store-uri {tracking_setup(cfg.mlflow, workspace).tracking_uri})")
    step(f"Model versions:       driftline models list --model {MODEL} --conf-dir {conf_dir} "
         f"--workspace {workspace}")
    step("Rerun: the same command starts again from a clean workspace and gives the same tables and metrics.")


MARKER = ".driftline-demo"


def prepare_workspace(path: Path) -> bool:
    """Make ``path`` an empty demo workspace; True when a previous demo's workspace was replaced.

    A demo run is a reproducible scenario, so it starts clean: a folder that a previous demo made
    (it holds the marker file) is emptied; any other non-empty folder is refused, never deleted.
    """
    replaced = False
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).is_file():
            raise UsageError(f"--workspace: expected an empty folder or a previous demo's workspace, found {path} "
                             "holding other files; choose another folder")
        shutil.rmtree(path)
        replaced = True
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by driftline demo; the next demo run empties this folder\n")
    return replaced


def _training_split(scenario: Scenario, horizon_days: int, stable_days: int = 0) -> tuple[int, int]:
    """Training and validation days that use every as-of date whose label matured by the first scored day.

    The first champion is trained on the day ``stable_days`` before the shift; that run sees labels
    of as-of offsets ``1 .. shift - stable_days - horizon - 1`` (features start on offset 1); the
    last quarter of them (at least 2 days) validates, the rest trains.
    """
    shift = scenario.phases.shift_day
    if scenario.days <= shift + 1:
        raise UsageError(f"--days: expected more than {shift + 1} days (the world changes on day {shift}), "
                         f"found {scenario.days}")
    labelled = shift - stable_days - horizon_days - 1
    if labelled < 4:
        raise UsageError(f"--stable-days: expected at most {shift - horizon_days - 5} stable days (the first champion "
                         f"trains on at least 4 days of labels matured before the first scored day, with a "
                         f"{horizon_days}-day label horizon), found {stable_days}")
    return _split(labelled)


def _split(labelled: int) -> tuple[int, int]:
    """(train, validation) days of ``labelled`` days: the last week validates (a whole weekly cycle for the
    estimated performance's calibration), the last quarter (at least 2 days) when there are fewer than 14."""
    validation = RETRAIN_VALIDATION_DAYS if labelled >= 2 * RETRAIN_VALIDATION_DAYS else max(2, labelled // 4)
    return labelled - validation, validation


def _windows(train_days: int, validation_days: int) -> list[str]:
    return ["--set", f"training.train_days={train_days}", "--set", f"training.validation_days={validation_days}",
            "--set", "training.gap_days=0"]
