"""The score job: champion (+ shadow challenger) → verified load → signature check → predictions → stats.

Order of work, so a failure leaves nothing half-written: resolve the versions and verify their
artifacts (R16, R17) → check the feature table's schema against every signature (R18, no Spark
action) → profile the date's features (rows, null rates, unseen categories; a date without rows
fails here) → one ``mapInPandas`` pass scoring every model → replace the ``score_date`` partition of
``<model>__predictions`` (the commit point, idempotent per date: R1) → agreement statistics from
the committed rows → replace the (model, date) partition of ``scoring_stats``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import MissingInputError, UsageError
from driftline.registry.artifact import deserialize
from driftline.registry.client import ModelRegistry, VersionInfo, tracking_setup
from driftline.scoring.signature import (
    ModelSignature,
    known_categories,
    signature_from_params,
    signature_from_pipeline,
    validate_features,
)
from driftline.scoring.spark import BatchScorer, ModelRef
from driftline.tables.contracts import FEATURES, PREDICTIONS, SCORING_STATS
from driftline.vocabulary import (
    AS_OF,
    CHALLENGER,
    CHAMPION,
    CODE_VERSION,
    CONFIG_HASH,
    MODEL,
    MODEL_VERSION,
    PREDICTED_LABEL,
    ROLE,
    RUN_ID,
    SCORE,
    SCORE_DATE,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.config.schema import DriftlineConfig
    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


@dataclass(frozen=True)
class LoadedVersion:
    """A model version ready to score with: its ref, verified bytes, the driver's copy and its categories."""

    ref: ModelRef
    data: bytes
    model: Any
    categories: dict[str, tuple[str, ...]]


Stat = tuple[str | None, str | None, str, float | None]  # role, column, metric, value


# --------------------------------------------------------------------------- models


def signature_of(registry: ModelRegistry, info: VersionInfo, model: Any) -> ModelSignature:
    """The feature split the train job recorded on the version's MLflow run, else the pipeline's own."""
    from mlflow.exceptions import MlflowException

    if info.run_id:
        try:
            found = signature_from_params(registry.client.get_run(info.run_id).data.params)
        except MlflowException:
            found = None
        if found is not None:
            return found
    log.warning("%s v%s: no feature lists on its MLflow run; using the fitted pipeline's", registry.name,
                info.version)
    return signature_from_pipeline(model)


def load_version(registry: ModelRegistry, info: VersionInfo, role: str) -> LoadedVersion:
    """Fetch and verify the artifact (hash before deserialization), load it once on the driver."""
    data = registry.verified_bytes(info)
    model = deserialize(data, f"{registry.name} v{info.version}")
    signature = signature_of(registry, info, model)
    ref = ModelRef(role, registry.name, info.version, str(info.sha256), signature)
    return LoadedVersion(ref, data, model, known_categories(model))


def current_roles(registry: ModelRegistry, cfg: DriftlineConfig) -> tuple[tuple[str, str], ...]:
    """(role, version) of the champion, and of the challenger when ``scoring.shadow`` is on and another
    version holds that alias."""
    champion = registry.alias(CHAMPION)
    if champion is None:
        raise UsageError(f"model {cfg.name}: expected a version with alias '{CHAMPION}', found none "
                         "(train the model or promote a version first)")
    roles = [(CHAMPION, champion.version)]
    challenger = registry.alias(CHALLENGER) if cfg.scoring.shadow else None
    if challenger is not None and challenger.version == champion.version:
        log.info("%s: challenger alias points at the champion v%s; no shadow scoring", cfg.name, champion.version)
    elif challenger is not None:
        roles.append((CHALLENGER, challenger.version))
    return tuple(roles)


def recorded_roles(ctx: JobContext, dates: Sequence[dt.date]) -> dict[dt.date, tuple[tuple[str, str], ...]]:
    """(role, version) pairs each already scored date holds in the predictions table (champion first)."""
    from pyspark.sql import functions as F

    from driftline.scoring.core import MODEL_VERSION

    table = PREDICTIONS.table(ctx.config.name)
    if not ctx.store.exists(table):
        return {}
    found = (ctx.store.read(table, partitions={SCORE_DATE: list(dates)})
             .select(SCORE_DATE, ROLE, F.col(MODEL_VERSION).cast("string").alias("v")).distinct().collect())
    out: dict[dt.date, list[tuple[str, str]]] = {}
    for r in found:
        out.setdefault(r[SCORE_DATE], []).append((r[ROLE], r["v"]))
    return {d: tuple(sorted(pairs, key=lambda p: (p[0] != CHAMPION, p))) for d, pairs in out.items()}


def versions_by_date(ctx: JobContext, registry: ModelRegistry) -> dict[tuple[tuple[str, str], ...], list[dt.date]]:
    """The dates of the run grouped by the (role, version) pairs that score them.

    A date never scored gets the versions holding the aliases now. A date scored before keeps the
    versions recorded in its predictions (``scoring.rerun_versions: recorded``, the default): its
    champion, and its challenger if it had one and ``scoring.shadow`` is on. A rerun after a later
    promotion thus reproduces its rows. ``current`` rescores it with the aliases as they are now.
    """
    cfg = ctx.config
    now = current_roles(registry, cfg)
    recorded = recorded_roles(ctx, ctx.dates) if cfg.scoring.rerun_versions == "recorded" else {}
    groups: dict[tuple[tuple[str, str], ...], list[dt.date]] = {}
    for date in ctx.dates:
        roles = recorded.get(date, now)
        if not cfg.scoring.shadow:
            roles = tuple(p for p in roles if p[0] == CHAMPION)
        if roles != now:
            log.info("%s %s: scored before by %s; scoring with the same versions (scoring.rerun_versions=recorded)",
                     cfg.name, date, ", ".join(f"{r} v{v}" for r, v in roles))
        groups.setdefault(roles, []).append(date)
    return groups


def resolve_versions(registry: ModelRegistry, cfg: DriftlineConfig,
                     roles: Sequence[tuple[str, str]]) -> list[LoadedVersion]:
    """Load and verify the versions of ``roles`` ((role, version) pairs, see `versions_by_date`)."""
    infos = [(role, registry.get(version)) for role, version in roles]
    loaded = [load_version(registry, info, role) for role, info in infos]
    for v in loaded:
        if v.ref.signature.task != cfg.label.task:
            raise UsageError(
                f"model {cfg.name} v{v.ref.version} ({v.ref.role}): expected label.task {cfg.label.task!r}, "
                f"found a model trained for {v.ref.signature.task!r}"
            )
    return loaded


# --------------------------------------------------------------------------- statistics


def feature_stats(features: DataFrame, versions: Sequence[LoadedVersion]) -> tuple[int, list[Stat]]:
    """Rows, per-feature null rate (null or NaN), invalid rate and per-model unseen-category share, in one pass.

    ``invalid_rate`` (numeric features) = share of rows holding ±inf, which the models treat as
    missing (R12). ``unseen_share`` = rows whose non-null value is not among the categories the
    model's encoder saw in training, divided by all rows (R14). Reads the models' features; adds nothing.
    """
    from pyspark.sql import functions as F

    numeric = {c for v in versions for c in v.ref.signature.numeric}
    columns = list(dict.fromkeys(c for v in versions for c in v.ref.signature.features))
    aggs = [F.count(F.lit(1)).alias("rows")]
    invalid: list[tuple[str, str]] = []
    for i, c in enumerate(columns):
        null = F.col(c).isNull()
        if c in numeric:
            value = F.col(c).cast("double")
            null = null | F.isnan(value)
            aggs.append(F.sum(F.when(F.abs(value) == F.lit(float("inf")), 1).otherwise(0)).alias(f"invalid_{i}"))
            invalid.append((c, f"invalid_{i}"))
        aggs.append(F.sum(F.when(null, 1).otherwise(0)).alias(f"null_{i}"))
    unseen: list[tuple[str, str, str]] = []
    for v in versions:
        for c in v.ref.signature.categorical:
            known = v.categories.get(c)
            if known:
                alias = f"unseen_{len(unseen)}"
                value = F.col(c).cast("string")
                aggs.append(F.sum(F.when(F.col(c).isNotNull() & ~value.isin(list(known)), 1).otherwise(0)).alias(alias))
                unseen.append((v.ref.role, c, alias))
    row = features.agg(*aggs).first()
    rows = int(row["rows"]) if row is not None else 0
    stats: list[Stat] = [(None, None, "rows", float(rows))]
    if rows == 0 or row is None:
        return rows, stats
    stats += [(None, c, "null_rate", row[f"null_{i}"] / rows) for i, c in enumerate(columns)]
    stats += [(None, c, "invalid_rate", row[alias] / rows) for c, alias in invalid]
    stats += [(role, c, "unseen_share", row[alias] / rows) for role, c, alias in unseen]
    return rows, stats


def prediction_stats(predictions: DataFrame, key: str, task: str, shadow: bool) -> list[Stat]:
    """Per role: rows, mean score, positive rate; with a challenger also the agreement on the same keys.

    ``label_agreement`` = share of compared keys whose predicted labels are equal (classification);
    ``mean_abs_score_diff`` / ``max_abs_score_diff`` over keys scored by both. Assumes one row per key
    and role (the features job checks the key is unique per date).
    """
    from pyspark.sql import functions as F

    def pick(role: str, col: str) -> Any:
        return F.max(F.when(F.col(ROLE) == role, F.col(col))).alias(f"{role}_{col}")

    roles = [CHAMPION, CHALLENGER] if shadow else [CHAMPION]
    if shadow:
        per_key = predictions.groupBy(key).agg(*[pick(r, c) for r in roles for c in (SCORE, PREDICTED_LABEL)])
    else:
        per_key = predictions.select(F.col(SCORE).alias(f"{CHAMPION}_{SCORE}"),
                                     F.col(PREDICTED_LABEL).alias(f"{CHAMPION}_{PREDICTED_LABEL}"))
    aggs = []
    for r in roles:
        aggs += [F.count(f"{r}_{SCORE}").alias(f"{r}_rows"), F.avg(f"{r}_{SCORE}").alias(f"{r}_mean_score"),
                 F.avg(f"{r}_{PREDICTED_LABEL}").alias(f"{r}_positive_rate")]
    if shadow:
        both = F.col(f"{CHAMPION}_{SCORE}").isNotNull() & F.col(f"{CHALLENGER}_{SCORE}").isNotNull()
        diff = F.abs(F.col(f"{CHAMPION}_{SCORE}") - F.col(f"{CHALLENGER}_{SCORE}"))
        same = (F.col(f"{CHAMPION}_{PREDICTED_LABEL}") == F.col(f"{CHALLENGER}_{PREDICTED_LABEL}")).cast("double")
        aggs += [F.sum(F.when(both, 1).otherwise(0)).alias("rows_compared"),
                 F.avg(F.when(both, diff)).alias("mean_abs_score_diff"),
                 F.max(F.when(both, diff)).alias("max_abs_score_diff"),
                 F.avg(F.when(both, same)).alias("label_agreement")]
    row = per_key.agg(*aggs).first()
    got_row = row.asDict() if row is not None else {}
    stats: list[Stat] = []
    for r in roles:
        stats += [(r, None, "rows", _num(got_row.get(f"{r}_rows"))),
                  (r, None, "mean_score", _num(got_row.get(f"{r}_mean_score")))]
        if task == "classification":
            stats.append((r, None, "positive_rate", _num(got_row.get(f"{r}_positive_rate"))))
    if shadow:
        stats += [("comparison", None, m, _num(got_row.get(m)))
                  for m in ("rows_compared", "mean_abs_score_diff", "max_abs_score_diff")]
        if task == "classification":
            stats.append(("comparison", None, "label_agreement", _num(got_row.get("label_agreement"))))
    return stats


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


# --------------------------------------------------------------------------- the job


def run(ctx: JobContext) -> JobResult:
    """Score the features of every date of the run with the champion (and shadow challenger)."""
    cfg = ctx.config
    key = cfg.entity_key
    registry = ModelRegistry(tracking_setup(cfg.mlflow, ctx.workspace), cfg.name)
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
            try:
                for date in dates:
                    score_date(ctx, date, versions, scorer, features_table, schema[key].dataType)
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
               features_table: str, key_type: Any) -> None:
    """Profile, score and write one ``score_date`` partition, then its statistics."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField

    cfg = ctx.config
    key = cfg.entity_key
    store = ctx.store
    features = store.read(features_table, partitions={AS_OF: [date]}).filter(F.col(AS_OF) == F.lit(date))
    rows, stats = feature_stats(features, versions)
    if rows == 0:
        raise MissingInputError(f"table {features_table}: expected feature rows for {AS_OF} {date}, found none "
                                f"(run prepare_features --date {date})")
    for role, column, metric, value in stats:
        if metric == "unseen_share" and value:
            log.warning("%s %s: %.2f%% of rows hold categories the %s never saw (encoded as all zeros)",
                        date, column, 100 * value, role)
        if metric == "invalid_rate" and value:
            log.warning("%s %s: %.2f%% of rows hold ±inf, scored as missing values", date, column, 100 * value)

    scored_at = ctx.started_at.astimezone(dt.UTC).replace(tzinfo=None)
    out = scorer.transform(features).select(
        F.col(key), F.col(SCORE), F.col(PREDICTED_LABEL),
        F.lit(cfg.name).alias(MODEL), F.col(MODEL_VERSION), F.col(ROLE),
        F.lit(ctx.run_id).alias(RUN_ID), F.lit(ctx.code_version).alias(CODE_VERSION),
        F.lit(ctx.config_hash).alias(CONFIG_HASH), F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(date).cast("date").alias(SCORE_DATE),
    )
    expected = PREDICTIONS.schema(leading=[StructField(key, key_type)])
    out = out.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in expected.fields])
    table = PREDICTIONS.table(cfg.name)
    commit = ctx.commit_info(date.isoformat())
    written = store.replace_partitions(table, out, PREDICTIONS.partition_by, commit,
                                       partitions=[{SCORE_DATE: date}])
    log.info("%s %s=%s: %d rows for %d feature rows (%s) — version %s, %s", table, SCORE_DATE, date, written.rows,
             rows, ", ".join(f"{v.ref.role} v{v.ref.version}" for v in versions), written.version,
             "replaced the previous rows" if written.replaced else "new partition")

    committed = store.read(table, version=written.version, partitions={SCORE_DATE: [date]})
    shadow = len(versions) > 1
    stats += prediction_stats(committed, key, cfg.label.task, shadow)
    write_stats(ctx, date, versions, stats)
    if shadow:
        got = {m: v for r, _, m, v in stats if r == "comparison"}
        log.info("shadow %s v%s vs champion v%s: %s", CHALLENGER, versions[1].ref.version, versions[0].ref.version,
                 ", ".join(f"{m}={v:.4f}" for m, v in got.items() if v is not None))


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
