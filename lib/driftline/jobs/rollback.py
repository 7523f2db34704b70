"""Automatic rollback of a newly promoted champion (``retrain.rollback``), run by the retrain job for each date
before its policy.

With rollback on, the score job scores the version holding the ``previous`` alias beside the champion (role
``previous`` in the predictions, `previous_role`). For date D the rows both versions scored in the last
``window_days`` score dates before D whose label matured before D 00:00 UTC are compared: the same rows, the same
labels, ``metric`` computed by the monitor's own late-label pass (`driftline.monitoring.performance`) grouped by
role. When the champion is worse by more than ``margin`` with at least ``min_labels`` labelled rows — or its
latest estimated performance is below ``estimated_min`` — the champion alias moves back to the previous version
(`ModelRegistry.rollback`). Every evaluation is a ``champion_rollbacks`` row; a version is rolled back at most
once (a later re-promotion of it is held); too few labels never roll back (``insufficient_data``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.jobs import paired
from driftline.jobs.paired import LOWER_IS_BETTER, worse_by
from driftline.tables.contracts import CHAMPION_ROLLBACKS, MONITOR_METRICS
from driftline.vocabulary import CHAMPION, DECISION_DATE, MODEL, MODEL_VERSION, PREVIOUS, RUN_DATE

if TYPE_CHECKING:
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

ROLLED_BACK, HELD, INSUFFICIENT = "rolled_back", "held", "insufficient_data"
__all__ = ["HELD", "INSUFFICIENT", "LOWER_IS_BETTER", "ROLLED_BACK", "check", "compare"]


@dataclass(frozen=True)
class Comparison:
    champion: float | None
    previous: float | None
    labelled_rows: int
    first_date: dt.date | None
    last_date: dt.date | None
    reason: str | None          # why there is no comparison (too few labels ...), None when there is one


def check(ctx: JobContext, date: dt.date) -> dict[str, Any] | None:
    """Evaluate (and apply) the rollback rule for ``date``; the ``champion_rollbacks`` row written, None when the
    rule is off or there is no previous version."""
    from driftline.registry.client import ModelRegistry, tracking_setup

    cfg = ctx.config
    rb = cfg.retrain.rollback
    if not rb.enabled:
        return None
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
    champion, previous = registry.alias(CHAMPION), registry.alias(PREVIOUS)
    if champion is None or previous is None or previous.version == champion.version:
        log.info("rollback %s %s: no previous version to compare the champion with", cfg.name, date)
        return None
    before = rolled_back_before(ctx, champion.version, date)
    cmp = compare(ctx, date, champion.version, previous.version)
    estimated = latest_estimate(ctx, date, champion.version, rb.metric) if rb.estimated_min is not None else None
    worse = worse_by(rb.metric, cmp.champion, cmp.previous)
    realized_worse = worse is not None and worse > rb.margin
    estimate_low = estimated is not None and rb.estimated_min is not None and estimated < rb.estimated_min
    if before is not None:
        status, reason = HELD, f"v{champion.version} was rolled back once already (on {before}); not again"
    elif realized_worse:
        status = ROLLED_BACK
        reason = (f"v{champion.version} {rb.metric} {cmp.champion:.4g} vs v{previous.version} {cmp.previous:.4g} on "
                  f"the same {cmp.labelled_rows} labelled rows ({cmp.first_date}..{cmp.last_date}): worse by "
                  f"{worse:.4g} > margin {rb.margin:g}")
    elif estimate_low:
        status = ROLLED_BACK
        reason = (f"v{champion.version} estimated_{rb.metric} {estimated:.4g} < retrain.rollback.estimated_min "
                  f"{rb.estimated_min:g}")
    elif cmp.reason is not None:
        status, reason = INSUFFICIENT, cmp.reason
    else:
        status = HELD
        reason = (f"v{champion.version} {rb.metric} {cmp.champion:.4g} vs v{previous.version} {cmp.previous:.4g} on "
                  f"{cmp.labelled_rows} labelled rows: not worse by more than {rb.margin:g}")
    after = champion.version
    if status == ROLLED_BACK:
        restored, _ = registry.rollback(reason=f"automatic rollback: {reason}")
        after = restored.version
        log.warning("rollback %s %s: champion v%s → v%s: %s", cfg.name, date, champion.version, after, reason)
    else:
        log.info("rollback %s %s: %s — %s", cfg.name, date, status, reason)
    row = CHAMPION_ROLLBACKS.row(
        model=cfg.name, decision_date=date, status=status, champion_version=champion.version,
        previous_version=previous.version, metric=rb.metric, champion_value=cmp.champion,
        previous_value=cmp.previous, margin=rb.margin, labelled_rows=cmp.labelled_rows, first_date=cmp.first_date,
        last_date=cmp.last_date, estimated_value=estimated, reason=reason, champion_after=after, run_id=ctx.run_id,
        code_version=ctx.code_version, config_hash=ctx.config_hash,
        started_at=ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None))
    df = ctx.spark.createDataFrame([row], schema=CHAMPION_ROLLBACKS.schema())
    ctx.store.replace_partitions(CHAMPION_ROLLBACKS.table(), df, CHAMPION_ROLLBACKS.partition_by,
                                 ctx.commit_info(f"{cfg.name}@{date}"), partitions=[{MODEL: cfg.name,
                                                                                     DECISION_DATE: date}])
    return dict(zip(CHAMPION_ROLLBACKS.names, row, strict=True))


def rolled_back_before(ctx: JobContext, version: str, date: dt.date) -> dt.date | None:
    """The decision date an earlier run rolled ``version`` back on (None: never)."""
    table = CHAMPION_ROLLBACKS.table()
    if not ctx.store.exists(table):
        return None
    rows = [r for r in ctx.store.read(table, partitions={MODEL: [ctx.config.name]}).collect()
            if r["status"] == ROLLED_BACK and r["champion_version"] == version and r[DECISION_DATE] != date]
    return min(r[DECISION_DATE] for r in rows) if rows else None


def compare(ctx: JobContext, date: dt.date, champion: str, previous: str) -> Comparison:
    """The rule's metric of both versions on the rows both scored, whose label matured before ``date``."""
    rb = ctx.config.retrain.rollback
    dates = [date - dt.timedelta(days=rb.window_days - i) for i in range(rb.window_days)]
    got = paired.compare(ctx, date, dates, (CHAMPION, champion), (PREVIOUS, previous), rb.metric, rb.min_labels)
    reason = got.reason
    if reason is not None and reason.endswith(f"fewer than {rb.min_labels}"):
        reason = reason.replace("fewer than", "fewer than retrain.rollback.min_labels")
    return Comparison(got.values.get(CHAMPION), got.values.get(PREVIOUS), got.labelled_rows, got.first_date,
                      got.last_date, reason)


def latest_estimate(ctx: JobContext, date: dt.date, version: str, metric: str) -> float | None:
    """The champion's estimated ``metric`` of the latest monitor run before ``date`` (None: none)."""
    from pyspark.sql import functions as F

    from driftline.monitoring.performance import PERFORMANCE

    if not ctx.store.exists(MONITOR_METRICS.table()):
        return None
    rows = (ctx.store.read(MONITOR_METRICS.table(), partitions={MODEL: [ctx.config.name]})
            .filter((F.col(RUN_DATE) < F.lit(date)) & (F.col("column") == PERFORMANCE)
                    & (F.col("metric") == f"estimated_{metric}") & (F.col(MODEL_VERSION) == version)
                    & (F.col("baseline") == "reference") & (F.col("window_end") == F.col(RUN_DATE)))
            .orderBy(F.col(RUN_DATE).desc()).limit(1).collect())
    value = rows[0]["value"] if rows else None
    return float(value) if value is not None and math.isfinite(value) else None
