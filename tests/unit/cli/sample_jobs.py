"""Job functions the runner tests register under a test job name in the job registry."""

from __future__ import annotations

from driftline.errors import DriftlineError, QualityGateError
from driftline.jobs import JobResult
from driftline.jobs.context import JobContext

SEEN: list[JobContext] = []


def record(ctx: JobContext) -> JobResult:
    SEEN.append(ctx)
    # a real Spark action through the session the runner built
    ctx.spark.range(3).count()
    return ctx.result()


def gate_fails(ctx: JobContext) -> JobResult:
    raise QualityGateError("quality gate: not_null(customer_id) failed: expected 0 nulls, found 3")


def expected_failure(ctx: JobContext) -> JobResult:
    raise DriftlineError("concurrent run: another run committed churn__features for 2026-01-05 first\nretry")


def crashes(ctx: JobContext) -> JobResult:
    raise RuntimeError("boom")
