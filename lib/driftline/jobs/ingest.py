"""``prepare_features`` of a monitor-only model: ingest the rows of its inference log (``sources.inference``).

A monitor-only model's predictions were made by someone else's serving or batch code, which logged one row per
prediction: the entity, when (a DATE, or a TIMESTAMP taken as its UTC date), the features the model was given and
the score it returned. For each as_of_date D of the run this job copies the log's rows of D into
``<model>__features`` (the entity key, ``as_of_date``, the ``logged`` features as logged, ``serving_version`` when
``sources.inference.version`` names the serving model's version column, ``logged_score``), so the
score job (a version adopted with ``driftline models adopt`` without ``--model-uri``, whose "prediction" is the
row's logged score), the monitor, the retrain policy, alerts and reports all work on it unchanged.

Order of work, as for computed features: the log's schema is checked first (metadata only: a missing column or a
wrong type fails with one line, nothing written) → the rows of the dates (with a timestamp: the latest row of each
(entity, date) wins; rows without a key are left out) → a date without a row, or a row without a usable score
(null, NaN, infinite, a classification score outside [0, 1]), fails (R7) → the feature checks
(the key unique per date, always; row, row-count checks of target ``features``) → the gate → ``quarantine``,
``quality_results`` and last ``<model>__features``, each replacing the run's partitions (a rerun replaces, never
duplicates).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.errors import ConfigError, QualityGateError
from driftline.features.compile import MICROS_PER_DAY
from driftline.features.pit import day_number, filter_event_days, filter_keyed
from driftline.jobs.prepare_features import feature_checks, feature_quarantine, write_outputs
from driftline.quality.checks import InputPresentCheck, gate, input_present_results
from driftline.vocabulary import AS_OF, LOGGED_SCORE, SERVING_VERSION

if TYPE_CHECKING:
    from driftline.features.compile import FeaturePlan
    from driftline.features.spec import InferenceSource
    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)

NUMERIC_TYPES = (T.NumericType, T.BooleanType)


def run(ctx: JobContext, src: InferenceSource, plan: FeaturePlan, checks: Sequence[object],
        dates: Sequence[dt.date]) -> JobResult:
    """Ingest the inference log ``src``'s rows of ``dates`` into ``<model>__features`` behind the feature checks."""
    cfg = ctx.config
    for check in checks:
        target = getattr(check, "target", None)
        if target in ("events", "entities"):
            raise ConfigError(f"quality.checks.{getattr(check, 'check_name', '?')}: expected target features for a "
                              f"monitor-only model (sources.inference), found {target}")
    if not ctx.store.exists(src.table):
        raise QualityGateError(f"sources.inference: expected source table {src.table!r} to exist, found no table; "
                               "nothing was written")
    logged = ctx.store.read(src.table)
    problems = schema_problems(src, plan, logged.schema)
    if problems:
        raise QualityGateError(f"sources.inference: table {src.table}: expected {'; '.join(problems)}; nothing was "
                               "written")
    if src.version and SERVING_VERSION not in cfg.monitoring.segments:
        log.info("sources.inference.version: ingested as %s; add it to monitoring.segments for performance, drift "
                 "and quality per serving version", SERVING_VERSION)
    rows = rows_of(src, plan, logged, dates).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        score = F.col(LOGGED_SCORE)
        unusable = score.isNull() | F.isnan(score) | (F.abs(score) == F.lit(float("inf")))
        if cfg.label.task == "classification":
            unusable = unusable | (score < 0) | (score > 1)
        per_date = rows.groupBy(AS_OF).agg(F.count(F.lit(1)).alias("rows"),
                                           F.count(F.when(unusable, 1)).alias("unscored"))
        counts, unscored = {}, {}
        for r in per_date.collect():
            counts[r[AS_OF]] = int(r["rows"])
            if r["unscored"]:
                unscored[r[AS_OF]] = int(r["unscored"])
        if unscored:
            first = min(unscored)
            usable = "a probability in [0, 1]" if cfg.label.task == "classification" else "a finite score"
            raise QualityGateError(f"sources.inference: table {src.table}: expected {usable} in {src.score} on every "
                                   f"row, found {sum(unscored.values())} rows without one (null, NaN, infinite"
                                   f"{' or out of range' if cfg.label.task == 'classification' else ''}) on "
                                   f"{len(unscored)} date(s), {unscored[first]} on {first}; nothing was written")
        log.info("inference log %s: %d rows for %d dates (%s .. %s)", src.table, sum(counts.values()), len(dates),
                 dates[0], dates[-1])
        results = input_present_results(InputPresentCheck("error", "inference", check_name="input_present_inference"),
                                        counts, dates)
        ft = feature_checks(ctx.store, cfg.name, plan, checks, rows, dates)
        results += ft.results
        gate(results)   # nothing has been written so far, and nothing is if it fails
        write_outputs(ctx, dates, results, feature_quarantine(ctx, ft, results, plan.entity_key, rows.columns), rows)
    finally:
        rows.unpersist()
    return ctx.result()


def column_of(name: str, plan: FeaturePlan) -> str:
    """The inference log's column of feature ``name`` (its ``column``, default the name)."""
    spec = next(f for f in plan.logged if f.name == name)
    return spec.column or spec.name


def schema_problems(src: InferenceSource, plan: FeaturePlan, schema: T.StructType) -> list[str]:
    """What the log's schema lacks or types wrongly (empty list: all good)."""
    types = {f.name: f.dataType for f in schema.fields}
    problems = []
    time_column, time_type = (src.date, T.DateType) if src.date else (src.timestamp, T.TimestampType)
    wanted: list[tuple[str, str, tuple[type, ...] | None]] = [
        (src.key, "the entity key", None),
        (str(time_column), f"a {time_type.typeName()}", (time_type,)),
        (src.score, "a numeric score", (T.NumericType,)),
        *([(src.version, "the serving model's version", None)] if src.version else []),
        *[(column_of(f.name, plan), "a numeric or boolean feature" if not f.categorical else "a feature",
           None if f.categorical else NUMERIC_TYPES) for f in plan.logged],
    ]
    for column, what, allowed in wanted:
        if column not in types:
            problems.append(f"column {column} ({what}), found it missing")
        elif allowed is not None and not isinstance(types[column], allowed):
            problems.append(f"column {column} to be {what}, found {types[column].simpleString()}")
    return problems


def rows_of(src: InferenceSource, plan: FeaturePlan, logged: DataFrame, dates: Sequence[dt.date]) -> DataFrame:
    """The log's rows of ``dates`` with an entity key: key, as_of_date, the features as logged (categorical ones as
    strings, as computed features), ``serving_version``, ``logged_score`` (double); with a timestamp, the latest row
    of each (key, UTC date) (on equal timestamps, the larger usable score: a deterministic choice among retries)."""
    keyed = filter_keyed(logged, src.key)
    if src.date is not None:
        rows = keyed.filter(F.col(src.date).isin(list(dates))).withColumn(AS_OF, F.col(src.date))
    else:
        ts = str(src.timestamp)
        day = F.date_from_unix_date(F.floor(F.unix_micros(F.col(ts)) / F.lit(MICROS_PER_DAY)).cast("int"))
        rows = (filter_event_days(keyed, ts, day_number(dates[0]), day_number(dates[-1]) + 1)   # pushed down
                .withColumn(AS_OF, day).filter(F.col(AS_OF).isin(list(dates))))
        # on equal timestamps a usable score wins over NaN (Spark sorts NaN above every number), then the larger
        score = F.col(src.score).cast("double")
        usable = F.when(F.isnan(score), None).otherwise(score)
        latest = Window.partitionBy(src.key, AS_OF).orderBy(F.col(ts).desc(), usable.desc_nulls_last())
        rows = rows.withColumn("_nth", F.row_number().over(latest)).filter(F.col("_nth") == 1)
    return rows.select(
        F.col(src.key).alias(plan.entity_key), F.col(AS_OF).cast("date").alias(AS_OF),
        *[F.col(column_of(f.name, plan)).cast("string").alias(f.name) if f.categorical
          else F.col(column_of(f.name, plan)).alias(f.name) for f in plan.logged],
        *([F.col(src.version).cast("string").alias(SERVING_VERSION)] if src.version else []),
        F.col(src.score).cast("double").alias(LOGGED_SCORE),
    )
