"""The pipeline job: prepare_features → score → monitor → retrain for each date, in order; resumable.

Each step runs in this process on the pipeline's own config, Spark session and table store
(`driftline.jobs.run_step`), one date at a time; what it did comes back as its `JobResult`. The
first step that fails stops the pipeline with that step's exit code (`StepFailed`, whose one line
carries the step's error). A date whose four steps all succeeded is recorded in ``pipeline_runs``
(one row per (model, date) with the config hash); a later run with the same config hash skips it, so
an interrupted backfill resumes at the first incomplete date. ``--force`` runs completed dates again
(it is not passed on to the steps: a forced pipeline never retrains a date twice, R23).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from driftline.errors import DriftlineError
from driftline.jobs import JobResult, run_step
from driftline.tables.contracts import PIPELINE_RUNS
from driftline.vocabulary import MODEL, RUN_DATE

if TYPE_CHECKING:

    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

STEPS = ("prepare_features", "score", "monitor", "retrain")
COMPLETED = "completed"


class StepFailed(DriftlineError):
    """A step of the pipeline exited non-zero: the pipeline stops with that step's exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def completed_dates(ctx: JobContext) -> set[dt.date]:
    """Dates of this model recorded complete under the current config hash."""
    from pyspark.sql import functions as F

    if not ctx.store.exists(PIPELINE_RUNS.table()):
        return set()
    rows = (ctx.store.read(PIPELINE_RUNS.table())
            .filter((F.col(MODEL) == ctx.config.name) & (F.col("status") == COMPLETED)
                    & (F.col("config_hash") == ctx.config_hash))
            .select("run_date").collect())
    return {r["run_date"] for r in rows}


def run(ctx: JobContext) -> JobResult:
    """Run the four steps for every date of the run, skipping completed dates unless ``--force``.

    Logs one line per step (its tables and versions, or the version it trained) and one per date.
    """
    name = ctx.config.name
    done = set() if ctx.force else completed_dates(ctx)
    todo = [d for d in ctx.dates if d not in done]
    skipped = len(ctx.dates) - len(todo)
    if skipped:
        log.info("pipeline %s: %d of %d dates already completed with config %s; skipped (use --force to rerun)",
                 name, skipped, len(ctx.dates), ctx.config_hash)
    steps: list[JobResult] = []
    t_all = time.monotonic()
    for i, date in enumerate(todo, start=1):
        t_date = time.monotonic()
        for j, step in enumerate(STEPS, start=1):
            result = run_step(ctx, step, (date,))
            steps.append(result)
            where = f"pipeline {name} {date} [date {i}/{len(todo)}, step {j}/{len(STEPS)}] {step}"
            if not result.ok:
                raise StepFailed(
                    f"{where}: exited {result.exit_code}, expected 0 after {result.elapsed_seconds:.1f} s: "
                    f"{result.error}; stopped ({i - 1} of {len(todo)} dates completed, a rerun resumes at {date})",
                    result.exit_code)
            log.info("%s: %s in %.1f s (%s)", where, result.status, result.elapsed_seconds, _did(result))
        elapsed = time.monotonic() - t_date
        _record(ctx, date, elapsed)
        log.info("pipeline %s %s [date %d/%d]: completed in %.1f s (total %.1f s)", name, date, i, len(todo),
                 elapsed, time.monotonic() - t_all)
    return ctx.result(steps=tuple(steps))


def _did(result: JobResult) -> str:
    """What a step did, for its progress line: the tables it committed (with versions), the version it trained."""
    parts = [f"{t.table} v{t.version}" for t in result.tables]
    if result.model_version is not None:
        parts.append(f"model v{result.model_version}")
    return ", ".join(parts) or "nothing written"


def _record(ctx: JobContext, date: dt.date, elapsed: float) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    row = PIPELINE_RUNS.row(model=ctx.config.name, run_date=date, status=COMPLETED, steps=",".join(STEPS),
                            run_id=ctx.run_id, code_version=ctx.code_version, config_hash=ctx.config_hash,
                            elapsed_seconds=round(elapsed, 3), completed_at=now)
    df = ctx.spark.createDataFrame([row], schema=PIPELINE_RUNS.schema())
    ctx.store.replace_partitions(PIPELINE_RUNS.table(), df, PIPELINE_RUNS.partition_by,
                                 ctx.commit_info(f"{ctx.config.name}@{date}"),
                                 partitions=[{MODEL: ctx.config.name, RUN_DATE: date}])
