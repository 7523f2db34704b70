"""Canary rollout of a version that passed the promotion gate (``retrain.canary``).

Start (`start`, called by the train job when the gate passed and a champion exists): the new version gets the
``canary`` alias instead of ``champion``; a ``canary_steps`` row (job ``train``, status ``started``) records the
first fraction (``steps[0]``).

Scoring (`driftline.jobs.score`): the score job scores every row with the champion and the canary (role
``canary``) and marks one row per (entity, score_date) ``published`` (`published`): the canary's for the entities
whose hashed bucket (xxhash64 of model, canary version and key, 10 000 buckets: stable across days, and a wider
fraction keeps every entity of a narrower one) is below the fraction, the champion's for the rest. The fraction of
a date is recorded in ``scoring_stats`` (role ``canary``, metric ``published_fraction``), so a rerun of the date
publishes the same rows (`fractions`).

Steps (`check`, run by the retrain job for each date D before its policy): the canary is compared with the champion
on the same rows of the score dates before D scored at the current fraction (`driftline.jobs.paired`) — the metric
on rows whose label matured before D, and the PSI of the canary's scores against the champion's — and `decide`
rolls it back, holds it, widens it to the next step, or after the last step promotes it. Every decision is a
``canary_steps`` row (job ``retrain``) and a ``canary`` alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from driftline.alerts.rules import Facts
from driftline.jobs import paired
from driftline.jobs.notify import notify_retrain
from driftline.tables.contracts import CANARY_STEPS, SCORING_STATS
from driftline.vocabulary import CANARY, CHAMPION, DECISION_DATE, MODEL, ROLE, SCORE_DATE

if TYPE_CHECKING:
    from driftline.jobs.context import JobContext
    from driftline.retrain.spec import CanaryRule

log = logging.getLogger(__name__)

STARTED, WIDENED, HELD, INSUFFICIENT = "started", "widened", "held", "insufficient_data"
PROMOTED, ROLLED_BACK = "promoted", "rolled_back"
BUCKETS = 10_000
FRACTION_METRIC = "published_fraction"   # scoring_stats: the canary's published fraction of the date
LOOKBACK_DAYS = 366


# --------------------------------------------------------------------------- the published rows


def bucket_threshold(fraction: float) -> int:
    """Entities whose bucket is below this are the canary's (fraction of `BUCKETS`, rounded)."""
    return int(round(min(max(fraction, 0.0), 1.0) * BUCKETS))


def published(key: str, model: str, canary_version: str | None, fraction: float) -> Any:
    """The ``published`` column of a date's prediction rows: without a canary the champion's row; with one the
    canary's row for the entities in its hashed fraction and the champion's row for the others; never another
    role's."""
    from pyspark.sql import functions as F

    role = F.col(ROLE)
    if canary_version is None:
        return role == F.lit(CHAMPION)
    bucket = F.pmod(F.xxhash64(F.lit(model), F.lit(str(canary_version)), F.col(key).cast("string")), F.lit(BUCKETS))
    in_canary = bucket < F.lit(bucket_threshold(fraction))
    return (F.when(role == F.lit(CANARY), in_canary).when(role == F.lit(CHAMPION), ~in_canary)
            .otherwise(F.lit(False)))


def fractions(ctx: JobContext, dates: Sequence[dt.date], version: str) -> dict[dt.date, float]:
    """The published fraction of canary ``version`` per date: the one a date recorded when scored before
    (``scoring_stats``; with ``scoring.rerun_versions: recorded``), else the rollout's current one
    (`current_fraction`)."""
    recorded = recorded_fractions(ctx, version, dates) if ctx.config.scoring.rerun_versions == "recorded" else {}
    now = current_fraction(step_rows(ctx), version, ctx.config.retrain.canary)
    return {d: recorded.get(d, now) for d in dates}


# --------------------------------------------------------------------------- state


def step_rows(ctx: JobContext) -> list[dict[str, Any]]:
    """The model's ``canary_steps`` rows in decision order (date, the train job's start before the retrain job's
    step of the same date)."""
    table = CANARY_STEPS.table()
    if not ctx.store.exists(table):
        return []
    rows = [r.asDict() for r in ctx.store.read(table, partitions={MODEL: [ctx.config.name]}).collect()]
    return sorted(rows, key=lambda r: (r[DECISION_DATE], r["job"] != "train", r["started_at"]))


def current_fraction(rows: Sequence[Mapping[str, Any]], version: str, rule: CanaryRule) -> float:
    """The fraction after the last decision about ``version`` (its first step when none is recorded)."""
    mine = [r for r in rows if r["canary_version"] == version]
    return float(mine[-1]["fraction_after"]) if mine else rule.steps[0]


def step_dates(ctx: JobContext, date: dt.date, version: str, fraction: float) -> list[dt.date]:
    """Score dates before ``date`` (within `LOOKBACK_DAYS`) whose canary ``version`` was published at
    ``fraction``."""
    days = [date - dt.timedelta(days=i) for i in range(LOOKBACK_DAYS, 0, -1)]
    return sorted(d for d, f in recorded_fractions(ctx, version, days).items()
                  if bucket_threshold(f) == bucket_threshold(fraction))


def recorded_fractions(ctx: JobContext, version: str, dates: Sequence[dt.date]) -> dict[dt.date, float]:
    """The published fraction of canary ``version`` each of ``dates`` recorded in ``scoring_stats`` when scored
    (dates scored without it are absent)."""
    from pyspark.sql import functions as F

    table = SCORING_STATS.table()
    if not dates or not ctx.store.exists(table):
        return {}
    rows = (ctx.store.read(table, partitions={MODEL: [ctx.config.name], SCORE_DATE: list(dates)})
            .filter((F.col(ROLE) == CANARY) & (F.col("metric") == FRACTION_METRIC)
                    & (F.col("challenger_version") == version))
            .select(SCORE_DATE, "value").collect())
    return {r[SCORE_DATE]: float(r["value"]) for r in rows if r["value"] is not None}


# --------------------------------------------------------------------------- decisions


def decide(rule: CanaryRule, fraction: float, days: int, cmp: paired.Paired, canary: str,
           champion: str) -> tuple[str, float, str]:
    """(status, fraction after, reason) of one step (pure): rolled back when its prediction PSI against the champion
    exceeds ``max_prediction_psi`` or its metric is worse by more than ``margin``; else held until ``min_days``
    dates were scored at the step and ``min_labels`` labels matured; then widened to the next step, or promoted
    after the last."""
    psi_bound = rule.max_prediction_psi
    if cmp.psi is not None and psi_bound is not None and cmp.psi > psi_bound:
        return ROLLED_BACK, 0.0, (f"v{canary} scores vs champion v{champion}'s on the same {cmp.paired_rows} rows: "
                                  f"PSI {cmp.psi:.4g} > retrain.canary.max_prediction_psi {psi_bound:g}")
    ours, theirs = cmp.values.get(CANARY), cmp.values.get(CHAMPION)
    worse = paired.worse_by(rule.metric, ours, theirs) if cmp.reason is None else None
    compared = (f"v{canary} {rule.metric} {ours:.4g} vs champion v{champion} {theirs:.4g} on the same "
                f"{cmp.labelled_rows} labelled rows ({cmp.first_date}..{cmp.last_date})"
                if worse is not None and ours is not None and theirs is not None else "")
    if worse is not None and worse > rule.margin:
        return ROLLED_BACK, 0.0, f"{compared}: worse by {worse:.4g} > margin {rule.margin:g}"
    if cmp.reason is not None:
        return INSUFFICIENT, fraction, cmp.reason.replace("fewer than", "fewer than retrain.canary.min_labels")
    if days < rule.min_days:
        return HELD, fraction, f"{compared}: holds; {days} of retrain.canary.min_days {rule.min_days} days at " \
                               f"{fraction:.0%} scored"
    wider = [s for s in rule.steps if bucket_threshold(s) > bucket_threshold(fraction)]
    if not wider:
        return PROMOTED, 1.0, f"{compared}: holds after the last step ({fraction:.0%}, {days} days)"
    return WIDENED, wider[0], f"{compared}: holds for {days} days at {fraction:.0%}; widened to {wider[0]:.0%}"


def start(ctx: JobContext, date: dt.date, version: str, champion: str) -> dict[str, Any]:
    """Start the rollout of ``version`` (its gate passed against ``champion``): the ``canary`` alias, the
    ``started`` row, the alert."""
    from driftline.registry.client import ModelRegistry, tracking_setup

    cfg = ctx.config
    rule = cfg.retrain.canary
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
    replaced = registry.start_canary(version, f"gate passed against champion v{champion}")
    reason = (f"v{version} passed the gate against champion v{champion}; its predictions are published for "
              f"{rule.steps[0]:.0%} of the entities" + (f" (replaces canary v{replaced.version})" if replaced else ""))
    log.info("canary %s %s: %s", cfg.name, date, reason)
    row = _record(ctx, "train", date, STARTED, version, champion, 0.0, rule.steps[0], 0, paired.Paired({}, 0, None,
                                                                                                      None), reason,
                  champion)
    _notify(ctx, "train", date, row)
    return row


def check(ctx: JobContext, date: dt.date) -> dict[str, Any] | None:
    """Evaluate (and apply) the step of the running canary for ``date``; the ``canary_steps`` row written, None when
    the rollout is off or no version holds the ``canary`` alias."""
    from driftline.registry.client import ModelRegistry, tracking_setup

    cfg = ctx.config
    rule = cfg.retrain.canary
    if not rule.enabled:
        return None
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
    canary, champion = registry.alias(CANARY), registry.alias(CHAMPION)
    if canary is None or champion is None or canary.version == champion.version:
        return None
    before = [r for r in step_rows(ctx) if (r[DECISION_DATE], r["job"]) != (date, "retrain")]
    fraction = current_fraction(before, canary.version, rule)
    dates = step_dates(ctx, date, canary.version, fraction)
    cmp = paired.compare(ctx, date, dates, (CHAMPION, champion.version), (CANARY, canary.version), rule.metric,
                         rule.min_labels, with_psi=True)
    status, after, reason = decide(rule, fraction, len(dates), cmp, canary.version, champion.version)
    champion_after = champion.version
    if status in (PROMOTED, ROLLED_BACK):
        registry.end_canary(promote=status == PROMOTED, reason=f"canary {status}: {reason}")
        champion_after = canary.version if status == PROMOTED else champion.version
    (log.warning if status == ROLLED_BACK else log.info)("canary %s %s: v%s %s — %s", cfg.name, date,
                                                         canary.version, status, reason)
    row = _record(ctx, "retrain", date, status, canary.version, champion.version, fraction, after, len(dates), cmp,
                  reason, champion_after)
    _notify(ctx, "retrain", date, row)
    return row


def _record(ctx: JobContext, job: str, date: dt.date, status: str, canary: str, champion: str, before: float,
            after: float, days: int, cmp: paired.Paired, reason: str, champion_after: str) -> dict[str, Any]:
    cfg = ctx.config
    rule = cfg.retrain.canary
    row = CANARY_STEPS.row(
        model=cfg.name, job=job, decision_date=date, status=status, canary_version=canary, champion_version=champion,
        fraction_before=before, fraction_after=after, days_at_step=days, metric=rule.metric,
        canary_value=cmp.values.get(CANARY), champion_value=cmp.values.get(CHAMPION), margin=rule.margin,
        labelled_rows=cmp.labelled_rows, prediction_psi=cmp.psi, first_date=cmp.first_date, last_date=cmp.last_date,
        reason=reason, champion_after=champion_after, run_id=ctx.run_id, code_version=ctx.code_version,
        config_hash=ctx.config_hash, started_at=ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None))
    df = ctx.spark.createDataFrame([row], schema=CANARY_STEPS.schema())
    ctx.store.replace_partitions(CANARY_STEPS.table(), df, CANARY_STEPS.partition_by,
                                 ctx.commit_info(f"{cfg.name}@{job}@{date}"),
                                 partitions=[{MODEL: cfg.name, "job": job, DECISION_DATE: date}])
    return dict(zip(CANARY_STEPS.names, row, strict=True))


def _notify(ctx: JobContext, job: str, date: dt.date, row: Mapping[str, Any]) -> None:
    notify_retrain(ctx, Facts(job=job, run_date=date, window=f"{date.isoformat()}/canary-{row['status']}",
                              canary=(row["status"], row["canary_version"], float(row["fraction_before"]),
                                      float(row["fraction_after"])),
                              decision_reasons=row["reason"]))
