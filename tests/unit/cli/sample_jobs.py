"""Job functions the runner tests register under a test job name (the runner imports them by path)."""

from __future__ import annotations

from driftline.context import JobContext
from driftline.errors import DriftlineError, QualityGateError

SEEN: list[JobContext] = []


def record(ctx: JobContext) -> None:
    SEEN.append(ctx)
    # a real Spark action through the session the runner built
    ctx.spark.range(3).count()


def gate_fails(ctx: JobContext) -> None:
    raise QualityGateError("quality gate: not_null(customer_id) failed: expected 0 nulls, found 3")


def expected_failure(ctx: JobContext) -> None:
    raise DriftlineError("concurrent run: another run committed churn__features for 2026-01-05 first\nretry")


def crashes(ctx: JobContext) -> None:
    raise RuntimeError("boom")
