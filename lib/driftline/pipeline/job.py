"""The pipeline job: prepare_features → score → monitor → retrain for each date, in order; resumable.

Each step runs through the shared runner (`driftline.cli.runner.run_job`) in this process, with the
pipeline's own ``--model``, ``--conf-dir``, ``--workspace`` and ``--set`` options, one date at a
time. The first step that exits non-zero stops the pipeline with that step's exit code
(`StepFailed`). A date whose four steps all succeeded is recorded in ``pipeline_runs`` (one row per
(model, date) with the config hash); a later run with the same config hash skips it, so an
interrupted backfill resumes at the first incomplete date. ``--force`` runs completed dates again
(it is not passed on to the steps: a forced pipeline never retrains a date twice, R23).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from driftline.context import JobContext

log = logging.getLogger(__name__)

STEPS = ("prepare_features", "score", "monitor", "retrain")
PIPELINE_RUNS = "pipeline_runs"
PARTITIONS = ("model", "run_date")
COMPLETED = "completed"


class StepFailed(DriftlineError):
    """A step of the pipeline exited non-zero: the pipeline stops with that step's exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def pipeline_runs_schema() -> StructType:
    """Schema of ``pipeline_runs`` (documented in ``docs/retrain.md``)."""
    from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType, TimestampType

    return StructType([
        StructField("model", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("status", StringType(), False),
        StructField("steps", StringType(), False),
        StructField("run_id", StringType(), False),
        StructField("config_hash", StringType(), False),
        StructField("code_version", StringType(), False),
        StructField("elapsed_seconds", DoubleType(), False),
        StructField("completed_at", TimestampType(), False),
    ])


def step_args(ctx: JobContext, date: dt.date) -> list[str]:
    """The command line a step gets: the pipeline's model, date, conf dir, workspace and overrides."""
    args = ["--model", ctx.config.name, "--date", date.isoformat(), "--conf-dir", ctx.loaded.conf_dir or "conf",
            "--workspace", str(ctx.config.workspace)]
    for item in ctx.loaded.overrides:
        args += ["--set", item]
    return args


def completed_dates(ctx: JobContext) -> set[dt.date]:
    """Dates of this model recorded complete under the current config hash."""
    from pyspark.sql import functions as F

    if not ctx.store.exists(PIPELINE_RUNS):
        return set()
    rows = (ctx.store.read(PIPELINE_RUNS)
            .filter((F.col("model") == ctx.config.name) & (F.col("status") == COMPLETED)
                    & (F.col("config_hash") == ctx.config_hash))
            .select("run_date").collect())
    return {r["run_date"] for r in rows}


def run(ctx: JobContext, runner: Callable[[str, Sequence[str]], int] | None = None) -> None:
    """Run the four steps for every date of the run, skipping completed dates unless ``--force``."""
    if runner is None:
        from driftline.cli.runner import run_job

        runner = run_job
    name = ctx.config.name
    done = set() if ctx.force else completed_dates(ctx)
    todo = [d for d in ctx.dates if d not in done]
    skipped = len(ctx.dates) - len(todo)
    if skipped:
        log.info("pipeline %s: %d of %d dates already completed with config %s; skipped (use --force to rerun)",
                 name, skipped, len(ctx.dates), ctx.config_hash)
    t_all = time.monotonic()
    for i, date in enumerate(todo, start=1):
        t_date = time.monotonic()
        for j, step in enumerate(STEPS, start=1):
            log.info("pipeline %s %s [date %d/%d, step %d/%d] %s: started", name, date, i, len(todo), j, len(STEPS),
                     step)
            t_step = time.monotonic()
            code = runner(step, step_args(ctx, date))
            took = time.monotonic() - t_step
            if code != 0:
                raise StepFailed(
                    f"pipeline {name} {date}: step {step} exited {code}, expected 0 after {took:.1f} s; "
                    f"stopped ({i - 1} of {len(todo)} dates completed, a rerun resumes at {date})", code)
            log.info("pipeline %s %s [date %d/%d, step %d/%d] %s: ok in %.1f s", name, date, i, len(todo), j,
                     len(STEPS), step, took)
        elapsed = time.monotonic() - t_date
        _record(ctx, date, elapsed)
        log.info("pipeline %s %s [date %d/%d]: completed in %.1f s (total %.1f s)", name, date, i, len(todo),
                 elapsed, time.monotonic() - t_all)


def _record(ctx: JobContext, date: dt.date, elapsed: float) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    row: tuple[Any, ...] = (ctx.config.name, date, COMPLETED, ",".join(STEPS), ctx.run_id, ctx.config_hash,
                            ctx.code_version, round(elapsed, 3), now)
    df = ctx.spark.createDataFrame([row], schema=pipeline_runs_schema())
    ctx.store.replace_partitions(PIPELINE_RUNS, df, list(PARTITIONS), ctx.commit_info(f"{ctx.config.name}@{date}"),
                                 partitions=[{"model": ctx.config.name, "run_date": date}])
