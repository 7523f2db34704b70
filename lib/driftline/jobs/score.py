"""The score job: champion (+ shadow challenger) → verified load → signature check → predictions → stats.

Order of work, so a failure leaves nothing half-written: resolve the versions and verify their
artifacts (R16, R17) → check the feature table's schema against every signature (R18, no Spark
action) → count the date's feature rows (footers only; a date without rows fails here) → one
``mapInArrow`` pass scoring every model and tallying the date's statistics, profiles and sample in
the workers (`driftline.scoring.tally`) → replace the ``score_date`` partition of
``<model>__predictions`` (the commit point, idempotent per date: R1) → replace the ``score_date``
partition of ``<model>__daily_profiles`` → replace the (model, date) partition of ``scoring_stats``.
On Spark Connect (no accumulators) the statistics are Spark aggregations (`driftline.scoring.sql_stats`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from driftline.errors import MissingInputError
from driftline.jobs import canary
from driftline.jobs.score_versions import LoadedVersion, resolve_versions, versions_by_date
from driftline.jvm import is_connect
from driftline.monitoring.daily import daily_profile_row, profiled_columns
from driftline.monitoring.estimated import CELL_COLUMN
from driftline.profiling.bins import CategoricalBins
from driftline.profiling.sample import bottom_rows, sample_threshold, to_ipc
from driftline.registry.client import ModelRegistry, tracking_setup
from driftline.scoring.signature import (
    validate_features,
)
from driftline.scoring.spark import BatchScorer, TallySink, hash_input
from driftline.scoring.sql_stats import feature_stats, prediction_stats
from driftline.scoring.tally import ProfilePlan, Stat, Tally, TallySpec, merge_tallies, tally_stats
from driftline.tables.contracts import DAILY_PROFILES, FEATURES, PREDICTIONS, SCORING_STATS
from driftline.vocabulary import (
    AS_OF,
    CANARY,
    CHALLENGER,
    CODE_VERSION,
    CONFIG_HASH,
    MODEL,
    MODEL_VERSION,
    PREDICTED_LABEL,
    PUBLISHED,
    ROLE,
    RUN_ID,
    SCORE,
    SCORE_DATE,
)

if TYPE_CHECKING:

    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"



# --------------------------------------------------------------------------- the job


def run(ctx: JobContext) -> JobResult:
    """Score the features of every date of the run with the champion (and shadow challenger)."""
    cfg = ctx.config
    key = cfg.entity_key
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name, cfg.adopt.trust_pickle)
    store = ctx.store
    features_table = FEATURES.table(cfg.name)
    groups = versions_by_date(ctx, registry)
    runs = []
    for roles, dates in groups.items():   # every version loaded, verified and checked before any write
        versions = resolve_versions(registry, cfg, roles)
        for v in versions:
            log.info("%s: %s v%s (sha256 %s…) verified; %d numeric, %d categorical features", cfg.name, v.ref.role,
                     v.ref.version, v.ref.sha256[:12], len(v.ref.signature.numeric), len(v.ref.signature.categorical))
        runs.append((versions, dates))

    if not store.exists(features_table):
        raise MissingInputError(f"table {features_table}: expected it to exist for scoring, found none "
                                "(run prepare_features first)")
    schema = store.schema(features_table)
    for versions, _ in runs:
        labels = [(f"{v.ref.role} v{v.ref.version}", v.ref.signature) for v in versions]
        extra = validate_features(schema, key, labels, features_table)
        if extra:
            log.info("%s: columns not used by the model(s), ignored: %s", features_table, ", ".join(extra))

    scfg = cfg.scoring
    spark = ctx.spark
    previous_batch = spark.conf.get(ARROW_BATCH, None)
    if scfg.batch_size is not None:
        spark.conf.set(ARROW_BATCH, str(scfg.batch_size))
    try:
        for versions, dates in runs:
            scorer = BatchScorer([(v.ref, v.data) for v in versions], key=key, threshold=cfg.label.threshold,
                                 threads=scfg.threads_per_worker)
            plans = profile_plans(ctx, versions) if scfg.daily_profiles else []
            canary_version = next((v.ref.version for v in versions if v.ref.role == CANARY), None)
            shares = canary.fractions(ctx, dates, canary_version) if canary_version is not None else {}
            try:
                for date in dates:
                    score_date(ctx, date, versions, scorer, features_table, schema[key].dataType, plans,
                               shares.get(date))
            finally:
                scorer.close()
    finally:
        if scfg.batch_size is not None:
            if previous_batch is None:
                spark.conf.unset(ARROW_BATCH)
            else:
                spark.conf.set(ARROW_BATCH, previous_batch)
    return ctx.result()


def score_date(ctx: JobContext, date: dt.date, versions: Sequence[LoadedVersion], scorer: BatchScorer,
               features_table: str, key_type: Any, plans: Sequence[ProfilePlan], fraction: float | None = None) -> None:
    """Score one date in one pass that also tallies its statistics, write its ``score_date`` partition, then its
    per-date profiles and ``scoring_stats``. ``fraction``: the canary's published fraction (with a canary role)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField

    cfg = ctx.config
    key = cfg.entity_key
    store = ctx.store
    features = store.read(features_table, partitions={AS_OF: [date]}).filter(F.col(AS_OF) == F.lit(date))
    sink = tally_sink(ctx.spark)
    if sink is None:   # Spark Connect: no accumulators; the statistics are Spark aggregations (a second read)
        rows, stats = feature_stats(features, spec_of(versions, key, date))
    else:
        rows = features.count()   # Parquet footers only: the empty date fails before anything is written
    if rows == 0:
        raise MissingInputError(f"table {features_table}: expected feature rows for {AS_OF} {date}, found none "
                                f"(run prepare_features --date {date})")
    spec = spec_of(versions, key, date, plans if sink is not None else (),
                   sample_threshold(rows, cfg.monitoring.report.evidently_rows))
    scored_at = ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None)
    out = scorer.transform(features, spec if sink is not None else None, sink).select(
        F.col(key), F.col(SCORE), F.col(PREDICTED_LABEL),
        F.lit(cfg.name).alias(MODEL), F.col(MODEL_VERSION), F.col(ROLE),
        F.lit(ctx.run_id).alias(RUN_ID), F.lit(ctx.code_version).alias(CODE_VERSION),
        F.lit(ctx.config_hash).alias(CONFIG_HASH), F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(date).cast("date").alias(SCORE_DATE),
    )
    canary_version = next((v.ref.version for v in versions if v.ref.role == CANARY), None)
    out = out.withColumn(PUBLISHED, canary.published(key, cfg.name, canary_version, fraction or 0.0))
    expected = PREDICTIONS.schema(leading=[StructField(key, key_type)])
    out = out.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in expected.fields])
    table = PREDICTIONS.table(cfg.name)
    commit = ctx.commit_info(date.isoformat())
    written = store.replace_partitions(table, out, PREDICTIONS.partition_by, commit,
                                       partitions=[{SCORE_DATE: date}])
    log.info("%s %s=%s: %d rows for %d feature rows (%s) — version %s, %s", table, SCORE_DATE, date, written.rows,
             rows, ", ".join(f"{v.ref.role} v{v.ref.version}" for v in versions), written.version,
             "replaced the previous rows" if written.replaced else "new partition")
    shadow = len(versions) > 1
    if sink is None:
        committed = store.read(table, version=written.version, partitions={SCORE_DATE: [date]})
        stats += prediction_stats(committed, key, cfg.label.task, any(v.ref.role == CHALLENGER for v in versions))
    else:
        tally = merge_tallies(sink.value)
        stats = tally_stats(tally, spec, cfg.label.task)
        write_daily_profiles(ctx, date, versions, plans, tally)
    warn_about_inputs(date, stats)
    if canary_version is not None:
        stats = [*stats, (CANARY, None, canary.FRACTION_METRIC, float(fraction or 0.0))]
        log.info("%s %s: canary v%s published for %.1f%% of the entities", cfg.name, date, canary_version,
                 100 * (fraction or 0.0))
    write_stats(ctx, date, versions, stats)
    if shadow:
        got = {m: v for r, _, m, v in stats if r == "comparison"}
        log.info("shadow %s v%s vs champion v%s: %s", versions[1].ref.role, versions[1].ref.version,
                 versions[0].ref.version,
                 ", ".join(f"{m}={v:.4f}" for m, v in got.items() if v is not None))


def warn_about_inputs(date: dt.date, stats: Sequence[Stat]) -> None:
    """One warning per feature with unseen categories or ±inf values on ``date``."""
    for role, column, metric, value in stats:
        if metric == "unseen_share" and value:
            log.warning("%s %s: %.2f%% of rows hold categories the %s never saw (encoded as all zeros)",
                        date, column, 100 * value, role)
        if metric == "invalid_rate" and value:
            log.warning("%s %s: %.2f%% of rows hold ±inf, scored as missing values", date, column, 100 * value)


def tally_sink(spark: Any) -> Any:
    """A fresh Spark accumulator for one date's per-task tallies, None on Spark Connect (which has none)."""
    if is_connect(spark):
        return None
    return spark.sparkContext.accumulator({}, TallySink())


def spec_of(versions: Sequence[LoadedVersion], key: str, date: dt.date, plans: Sequence[ProfilePlan] = (),
            sample_below: int = 0) -> TallySpec:
    """What each scoring task tallies on ``date`` (see `driftline.scoring.tally`)."""
    return TallySpec(
        key=key, roles=tuple(v.ref.role for v in versions),
        features=tuple(dict.fromkeys(c for v in versions for c in v.ref.signature.features)),
        numeric=frozenset(c for v in versions for c in v.ref.signature.numeric),
        known={v.ref.role: {c: v.categories[c] for c in v.ref.signature.categorical if v.categories.get(c)}
               for v in versions},
        plans=tuple(plans), sample_below=sample_below if plans else 0, salt=date.isoformat())


def profile_plans(ctx: JobContext, versions: Sequence[LoadedVersion]) -> list[ProfilePlan]:
    """Per version with a stored reference: the columns and bins its rows are profiled in while scoring (the
    monitor's, `driftline.monitoring.daily.profiled_columns`); a version without one gets none (said once)."""
    from driftline.jobs.monitor import estimation_cells
    from driftline.jobs.monitor_parts import scope_of
    from driftline.monitoring.inputs import load_reference

    plans = []
    for v in versions:
        try:
            ref = load_reference(scope_of(ctx), v.ref.version)
        except MissingInputError:
            log.info("%s v%s: no reference profile stored; no per-date profiles (the monitor scans its dates)",
                     ctx.config.name, v.ref.version)
            continue
        columns, bins = profiled_columns(ref, estimation_cells(ctx, ref))
        absent = [c for c in columns if c not in (SCORE, CELL_COLUMN) and c not in v.ref.signature.features]
        if absent:
            log.info("%s v%s: reference columns %s are not model inputs; no per-date profiles", ctx.config.name,
                     v.ref.version, ", ".join(absent))
            continue
        sources = tuple(SCORE if c == CELL_COLUMN else c for c in columns)
        hashes = {i: hash_input(c) for i, c in enumerate(columns)
                  if isinstance(bins[c], CategoricalBins) and bins[c].hashed}
        plans.append(ProfilePlan(v.ref.role, tuple(columns), bins, sources, hashes,
                                 tuple(c for c in columns if c != CELL_COLUMN)))
    return plans


def write_daily_profiles(ctx: JobContext, date: dt.date, versions: Sequence[LoadedVersion],
                         plans: Sequence[ProfilePlan], tally: Tally) -> None:
    """Replace the ``score_date`` partition of ``<model>__daily_profiles`` with the date's profiles (none when no
    version has a reference: a rerun leaves no stale profile behind; no table is created for none)."""
    cfg = ctx.config
    version_of = {v.ref.role: v.ref.version for v in versions}
    scored_at = ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None)
    rows = []
    for plan in plans:
        acc = tally.profiles.get(plan.role)
        if acc is None:
            continue
        sample = bottom_rows(tally.samples.get(plan.role, []), cfg.monitoring.report.evidently_rows)
        row = daily_profile_row(role=plan.role, version=version_of[plan.role],
                                reference_id=f"{cfg.name}/{version_of[plan.role]}", columns=plan.columns,
                                bins=plan.bins, acc=acc, rows=int(acc.add[0]),
                                sample=None if sample is None else to_ipc(sample),
                                sample_rows=0 if sample is None else sample.num_rows)
        rows.append(DAILY_PROFILES.row(**row, run_id=ctx.run_id, code_version=ctx.code_version,
                                       config_hash=ctx.config_hash, scored_at=scored_at, score_date=date))
    table = DAILY_PROFILES.table(cfg.name)
    if not rows and not ctx.store.exists(table):
        return   # nothing to write and nothing stale to replace
    df = ctx.spark.createDataFrame(rows, schema=DAILY_PROFILES.schema())
    ctx.store.replace_partitions(table, df, DAILY_PROFILES.partition_by, ctx.commit_info(date.isoformat()),
                                 partitions=[{SCORE_DATE: date}])
    log.info("%s %s=%s: %d per-date profile(s) folded in the scoring pass", table, SCORE_DATE, date, len(rows))


def write_stats(ctx: JobContext, date: dt.date, versions: Sequence[LoadedVersion], stats: Sequence[Stat]) -> None:
    """Replace the (model, date) partition of ``scoring_stats`` with this run's rows."""
    cfg = ctx.config
    champion = versions[0].ref.version
    challenger = versions[1].ref.version if len(versions) > 1 else None
    scored_at = ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None)
    rows = [(cfg.name, date, champion, challenger, role, column, metric, value, ctx.run_id, ctx.code_version,
             ctx.config_hash, scored_at) for role, column, metric, value in stats]
    df = ctx.spark.createDataFrame(rows, schema=SCORING_STATS.schema())
    ctx.store.replace_partitions(SCORING_STATS.table(), df, SCORING_STATS.partition_by,
                                 ctx.commit_info(date.isoformat()), partitions=[{MODEL: cfg.name, SCORE_DATE: date}])
