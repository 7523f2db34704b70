"""The jobs: the registry (every job's name, help, inputs and outputs, and the ``run(ctx) -> JobResult`` behind
it), the context a run gets (`context`) and one module per job (`prepare_features`, `train`, `score`,
`monitor`, `retrain`, `pipeline`). Only this layer sees the whole config; the library packages below it get
their slice and the table store.

A job is a function of a `JobContext` that returns a `JobResult` (what it wrote, the model version it
trained, how long it took). The command line (`driftline.cli`) turns argv into a context and calls
`run`; the pipeline and retrain jobs call other jobs in process with `run_step` / `run_child`, on the
same config, Spark session and table store, and read what a step did from its result.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


@dataclass(frozen=True)
class TableWrite:
    """One Delta commit of a run: the table, the version it created and the rows written."""

    table: str
    version: int
    rows: int


@dataclass(frozen=True)
class JobResult:
    """What one job run did.

    ``status``: ``ok``; ``skipped`` when the work was already done (e.g. a model trained for the same
    date, config and rows); ``failed`` with ``exit_code`` and a one-line ``error``. ``tables``: the
    commits of the run in order (a pipeline's include its steps'); ``model_version``: the version
    the run trained or found already trained; ``steps``: the results of the jobs it ran in process.
    """

    job: str
    run_id: str
    status: str
    exit_code: int
    elapsed_seconds: float
    tables: tuple[TableWrite, ...] = ()
    model_version: str | None = None
    steps: tuple[JobResult, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


JobFunction = Callable[["JobContext"], JobResult]


@dataclass(frozen=True)
class JobSpec:
    """A job: one-line summary, longer help, what it reads and writes, and the function that runs it."""

    summary: str
    description: str
    reads: str
    writes: str
    run: JobFunction


# The job modules import Spark, pandas, scikit-learn or MLflow: they load when their job runs, not when
# the command line prints its help or rejects an option.


def _prepare_features(ctx: JobContext) -> JobResult:
    from driftline.jobs.prepare_features import run

    return run(ctx)


def _train(ctx: JobContext) -> JobResult:
    from driftline.jobs.train import run

    return run(ctx)


def _score(ctx: JobContext) -> JobResult:
    from driftline.jobs.score import run

    return run(ctx)


def _monitor(ctx: JobContext) -> JobResult:
    from driftline.jobs.monitor import run

    return run(ctx)


def _retrain(ctx: JobContext) -> JobResult:
    from driftline.jobs.retrain import run

    return run(ctx)


def _pipeline(ctx: JobContext) -> JobResult:
    from driftline.jobs.pipeline import run

    return run(ctx)


JOBS: dict[str, JobSpec] = {
    "prepare_features": JobSpec(
        "compute the model's feature table for a date or a date range",
        "Compute one feature row per entity and as_of_date from the model's source tables, using only "
        "events strictly before the date (00:00 UTC), run the data-quality gate and write "
        "<model>__features (partition as_of_date).",
        "source tables", "<model>__features, quality_results, quarantine", _prepare_features,
    ),
    "train": JobSpec(
        "train a model version and register it behind the promotion gate",
        "Fit the configured scikit-learn pipeline on features joined point-in-time with matured labels, "
        "evaluate on a later validation window, register the version in MLflow with its reference "
        "profile, and move the champion alias only if the promotion gate passes.",
        "<model>__features, labels", "MLflow run + model version, reference_profiles", _train,
    ),
    "score": JobSpec(
        "score the feature partition of a date with the champion (and shadow challenger)",
        "Load the champion (and challenger) after verifying its artifact hash, validate the features "
        "against the model signature and write <model>__predictions (partition score_date).",
        "<model>__features, MLflow registry", "<model>__predictions", _score,
    ),
    "monitor": JobSpec(
        "profile the window ending at a date: drift, data quality, late-label performance",
        "Profile features and predictions of the window in one distributed pass, compare with the "
        "reference profile and the previous window, and write monitor_metrics, monitor_runs and an "
        "HTML report.",
        "features, predictions, labels, reference profile", "monitor_metrics, monitor_runs, HTML report", _monitor,
    ),
    "retrain": JobSpec(
        "evaluate the retrain policy on the monitoring history and retrain when it fires",
        "Evaluate the retrain policy over recent monitoring windows, record the decision, and when it "
        "fires train a challenger and run the promotion gate.",
        "monitor_metrics, monitor_runs", "retrain_decisions, MLflow", _retrain,
    ),
    "pipeline": JobSpec(
        "run prepare_features → score → monitor → retrain for a date or a backfill range",
        "Run the jobs in order for each date, stopping at the first failure with that step's exit "
        "code; dates already completed are skipped unless --force.",
        "—", "everything the steps write, pipeline_runs", _pipeline,
    ),
}


def run(ctx: JobContext) -> JobResult:
    """Run the job ``ctx.job`` names (`guarded`)."""
    return guarded(ctx, JOBS[ctx.job].run)


def guarded(ctx: JobContext, function: JobFunction) -> JobResult:
    """Run ``function(ctx)``; its errors propagate (the caller maps them to an exit code). A top-level run
    then registers the tables in ``storage.catalog`` when that is enabled (`JobContext.sync_catalog`). A failure
    is alerted first when a ``job_failed`` rule is configured (`driftline.jobs.notify.notify_failure`)."""
    try:
        result = function(ctx)
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt) and ctx.config.alerts.rules_for(("job_failed",)):
            from driftline.jobs.notify import notify_failure

            notify_failure(ctx, exc)
        raise
    ctx.sync_catalog()
    return result


def run_child(parent: JobContext, job: str, dates: tuple[dt.date, ...], force: bool = False,
              onset: dt.date | None = None) -> JobResult:
    """Run ``job`` in process for ``dates`` on the parent's config, session and store; errors propagate.
    ``onset``: the drift episode's onset date a retrain's training is anchored on (`JobContext.onset`)."""
    return run(parent.child(job, dates, force=force, onset=onset))


def run_step(parent: JobContext, job: str, dates: tuple[dt.date, ...], force: bool = False) -> JobResult:
    """`run_child`, with a failure returned as a ``failed`` result carrying the job's exit code.

    An expected failure (`DriftlineError`) becomes its one-line message; anything else is logged
    with its traceback and exits 1, as it would on the command line.
    """
    ctx = parent.child(job, dates, force=force)
    try:
        return run(ctx)
    except DriftlineError as exc:
        return ctx.result(FAILED, exit_code=exc.exit_code, error=" ".join(str(exc).split()))
    except Exception as exc:
        log.exception("%s: unexpected error", job)
        return ctx.result(FAILED, exit_code=1, error=" ".join(f"{type(exc).__name__}: {exc}".split()))
