"""Two versions compared on the same rows: both scored every (entity, score_date) compared, so what differs is the
model, not the population. Used by the automatic rollback (champion against ``previous``) and the canary rollout
(``canary`` against champion).

`compare` reads the two roles' rows of the given score dates from ``<model>__predictions``, keeps the (entity,
date) pairs both scored, joins the labels that matured before the decision date (the monitor's late-label pass,
`driftline.monitoring.inputs.labelled_frame`) and computes the metric per role with the monitor's own
`driftline.monitoring.performance.performance_rows`; optionally the PSI of the second role's scores against the
first's on all paired rows (10 bins at the first role's deciles).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.tables.contracts import PREDICTIONS
from driftline.vocabulary import MODEL_VERSION, ROLE, SCORE, SCORE_DATE

if TYPE_CHECKING:
    from driftline.jobs.context import JobContext

LOWER_IS_BETTER = ("log_loss", "brier", "rmse", "mae")
PSI_BINS = 10
QUANTILE_ERROR = 1e-4   # approxQuantile's relative error for the PSI's bin edges


@dataclass(frozen=True)
class Paired:
    """The metric of each role on the same labelled rows (None where not computed), and why not when not."""

    values: dict[str, float | None]
    labelled_rows: int
    first_date: dt.date | None
    last_date: dt.date | None
    reason: str | None = None          # why there is no comparison (too few labels ...), None when there is one
    psi: float | None = None           # the second role's scores against the first's (when asked)
    paired_rows: int = 0


def worse_by(metric: str, candidate: float | None, incumbent: float | None) -> float | None:
    """How much worse ``candidate`` is than ``incumbent`` on ``metric`` (negative: better; None: not comparable)."""
    if candidate is None or incumbent is None:
        return None
    return candidate - incumbent if metric in LOWER_IS_BETTER else incumbent - candidate


def paired_rows(ctx: JobContext, dates: Sequence[dt.date], first: tuple[str, str], second: tuple[str, str]) -> Any:
    """The predictions of ``first`` and ``second`` ((role, version)) on ``dates``, only the (entity, date) pairs
    both scored (one row per (key, date, role), so two rows of a (key, date) are the pair); None without a table."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = ctx.config.entity_key
    table = PREDICTIONS.table(ctx.config.name)
    if not ctx.store.exists(table) or not dates:
        return None
    wanted = None
    for role, version in (first, second):
        cond = (F.col(ROLE) == role) & (F.col(MODEL_VERSION).cast("string") == version)
        wanted = cond if wanted is None else wanted | cond
    preds = ctx.store.read(table, partitions={SCORE_DATE: list(dates)}).filter(wanted)
    return (preds.withColumn("_roles", F.count("*").over(Window.partitionBy(key, SCORE_DATE)))
            .filter(F.col("_roles") == 2).drop("_roles"))


def compare(ctx: JobContext, date: dt.date, dates: Sequence[dt.date], first: tuple[str, str],
            second: tuple[str, str], metric: str, min_labels: int, with_psi: bool = False) -> Paired:
    """``metric`` of both roles on the rows both scored on ``dates`` whose label matured before ``date``."""
    from pyspark.sql import functions as F

    from driftline.jobs.monitor_parts import decision_threshold, scope_of
    from driftline.monitoring.inputs import labelled_frame
    from driftline.monitoring.performance import performance_rows
    from driftline.training.dataset import LABEL

    cfg = ctx.config
    dates = sorted(dates)
    paired = paired_rows(ctx, dates, first, second)
    if paired is None:
        return Paired({}, 0, None, None, f"no predictions of the compared dates in {PREDICTIONS.table(cfg.name)}")
    paired = paired.cache()
    try:
        psi, n_paired = score_psi(paired, first[0], second[0]) if with_psi else (None, 0)
        frame = labelled_frame(scope_of(ctx), paired, date, dates, keep=(ROLE, SCORE_DATE))
        if frame is None:
            return Paired({}, 0, None, None, "no labels table (sources.labels)", psi, n_paired)
        frame = frame.filter(F.col(LABEL).isNotNull()).cache()
        try:
            span = frame.filter(F.col(ROLE) == first[0]).agg(
                F.count("*").alias("n"), F.min(SCORE_DATE).alias("lo"), F.max(SCORE_DATE).alias("hi")).first()
            n = int(span["n"]) if span is not None else 0
            lo, hi = (span["lo"], span["hi"]) if span is not None else (None, None)
            if n < min_labels:
                return Paired({}, n, lo, hi, f"{n} rows both versions scored have a matured label, fewer than "
                                             f"{min_labels}", psi, n_paired)
            pcfg = cfg.monitoring.performance.model_copy(update={"min_labels": min_labels, "min_label_coverage": 0.0})
            rows = performance_rows(frame.drop(SCORE_DATE), pcfg, cfg.label.task, ROLE,
                                    threshold=decision_threshold(ctx))
        finally:
            frame.unpersist()
    finally:
        paired.unpersist()
    values = {role: next((r["value"] for r in rows.get(role, []) if r["metric"] == metric), None)
              for role in (first[0], second[0])}
    values = {r: (float(x) if x is not None and math.isfinite(x) else None) for r, x in values.items()}
    if any(x is None for x in values.values()):
        return Paired(values, n, lo, hi, f"{metric} undefined on the {n} labelled rows (e.g. one class only)", psi,
                      n_paired)
    return Paired(values, n, lo, hi, None, psi, n_paired)


def score_psi(paired: Any, first: str, second: str) -> tuple[float | None, int]:
    """PSI of ``second``'s scores against ``first``'s on the paired rows: 10 bins at ``first``'s deciles (equal
    edges merged), both sides' finite scores; (None, 0) when ``first`` has none."""
    from pyspark.sql import functions as F

    from driftline.monitoring.measures import psi

    finite = paired.filter(F.col(SCORE).isNotNull() & ~F.isnan(F.col(SCORE)))
    base = finite.filter(F.col(ROLE) == first)
    qs = base.approxQuantile(SCORE, [i / PSI_BINS for i in range(1, PSI_BINS)], QUANTILE_ERROR)
    if not qs:
        return None, 0
    edges = sorted(set(qs))
    bucket = sum((F.when(F.col(SCORE) > F.lit(e), 1).otherwise(0) for e in edges), F.lit(0))
    counts = {(r[ROLE], int(r["b"])): int(r["n"]) for r in
              finite.groupBy(ROLE, bucket.alias("b")).agg(F.count("*").alias("n")).collect()}
    ref = [counts.get((first, b), 0) for b in range(len(edges) + 1)]
    cur = [counts.get((second, b), 0) for b in range(len(edges) + 1)]
    return float(psi(ref, cur)), sum(ref)
