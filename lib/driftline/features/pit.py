"""Point-in-time feature computation for one date or a range of dates, in one Spark job.

Semantics (docs/features.md): the row for (entity, D) uses only events with
``event_ts < D 00:00 UTC``; a window ``Nd`` covers the N UTC days ``[D-N, D-1]``; entity
attributes come from the entity row valid as of D. All day arithmetic is done on epoch numbers
(``unix_micros``, ``unix_date``), never on the session or machine time zone (R24).

Backfill strategy: events are read once for the whole range, pre-aggregated per (entity, UTC day),
and every as_of_date of the range becomes one *probe row* per entity, unioned with the daily rows.
A RANGE window over the day number then evaluates all windows of all dates in one sort. The cost
grows with (event-days + entities × dates), not with dates × window length.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.errors import ConfigError
from driftline.features.compile import (
    DAY,
    EVENT_COUNT,
    MICROS_PER_DAY,
    FeaturePlan,
    daily_aggregate_columns,
    row_feature_column,
    trailing_days,
    window_feature_column,
)
from driftline.features.spec import EntitySource
from driftline.vocabulary import AS_OF

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
PROBE = "_probe"


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (the UTC day number Spark's ``unix_date`` returns)."""
    return (day - EPOCH).days


def utc_midnight(day_no: int) -> Column:
    """The instant ``day_no`` 00:00 UTC as a TIMESTAMP literal, whatever the session time zone."""
    return F.timestamp_micros(F.lit(day_no * MICROS_PER_DAY))


def dates_frame(spark: SparkSession, dates: Sequence[dt.date]) -> DataFrame:
    """One row per as_of_date: ``as_of_date`` (date), ``_day`` (its UTC day number)."""
    schema = T.StructType([T.StructField(AS_OF, T.DateType(), False),
                           T.StructField(DAY, T.IntegerType(), False)])
    return spark.createDataFrame([(d, day_number(d)) for d in sorted(set(dates))], schema)


# --------------------------------------------------------------------------- events


def with_event_time(df: DataFrame, key: str, timestamp: str, entity_key: str) -> DataFrame:
    """Rename the event key to ``entity_key``; add ``_ts_us`` (epoch micros) and ``_day`` (UTC day number)."""
    return (
        df.withColumnRenamed(key, entity_key)
        .withColumn("_ts_us", F.unix_micros(F.col(timestamp)))
        .withColumn(DAY, F.floor(F.col("_ts_us") / F.lit(MICROS_PER_DAY)).cast("int"))
    )


def filter_event_days(df: DataFrame, timestamp: str, first_day: int, end_day: int) -> DataFrame:
    """Keep events with ``first_day 00:00 UTC <= timestamp < end_day 00:00 UTC`` (pushed down to Parquet)."""
    return df.filter((F.col(timestamp) >= utc_midnight(first_day)) & (F.col(timestamp) < utc_midnight(end_day)))


def filter_keyed(df: DataFrame, entity_key: str) -> DataFrame:
    """Drop events without an entity key: they belong to no feature row (a not_null check reports them)."""
    return df.filter(F.col(entity_key).isNotNull())


def daily_aggregates(events: DataFrame, plan: FeaturePlan) -> DataFrame:
    """One row per (entity, ``_day``) of additive partials (reads ``_ts_us`` and the aggregated columns)."""
    return events.groupBy(plan.entity_key, DAY).agg(*daily_aggregate_columns(plan))


# --------------------------------------------------------------------------- entities


def valid_as_of(source: EntitySource, schema: T.StructType) -> Column:
    """Condition: the entity row is valid as of the row's ``_day`` (00:00 UTC)."""
    if source.valid_from is None:
        return F.lit(True)

    def as_day_start_micros(name: str) -> Column:
        dtype = schema[name].dataType
        if isinstance(dtype, T.DateType):
            return F.unix_date(F.col(name)).cast("long") * MICROS_PER_DAY
        if isinstance(dtype, T.TimestampType):
            return F.unix_micros(F.col(name))
        raise ConfigError(
            f"sources.entities: {name}: expected a date or timestamp column, found {dtype.simpleString()}")

    at = F.col(DAY).cast("long") * MICROS_PER_DAY
    cond = as_day_start_micros(source.valid_from) <= at
    if source.valid_to is not None:
        cond = cond & (F.col(source.valid_to).isNull() | (as_day_start_micros(source.valid_to) > at))
    return cond


def entity_rows_as_of(entities: DataFrame, plan: FeaturePlan, dates: DataFrame) -> DataFrame:
    """Raw entity rows valid as of each date: all entity columns (key renamed) + ``as_of_date, _day``.

    Overlapping validity ranges give several rows per (entity, date) here; `entities_as_of` resolves them.
    """
    source = plan.sources.entities
    if source is None:
        raise ConfigError("sources.entities: expected an entities source for attributes/population, found none")
    return (
        entities.withColumnRenamed(source.key, plan.entity_key)
        .join(F.broadcast(dates), how="cross")
        .filter(valid_as_of(source, entities.schema))
    )


def entities_as_of(entities: DataFrame, plan: FeaturePlan, dates: DataFrame) -> DataFrame:
    """One row per (entity, as_of_date) valid on that date: ``entity_key, as_of_date, _day`` + attribute features.

    Overlapping validity ranges resolve to the row with the latest ``valid_from`` (deterministic).
    """
    source = plan.sources.entities
    valid = entity_rows_as_of(entities, plan, dates)
    if source is not None and source.valid_from is not None:
        latest = Window.partitionBy(plan.entity_key, DAY).orderBy(F.col(source.valid_from).desc())
        valid = valid.withColumn("_rank", F.row_number().over(latest)).filter(F.col("_rank") == 1)
    else:
        valid = valid.dropDuplicates([plan.entity_key, DAY])
    attrs = [F.col(str(f.column)).alias(f.name) for f in plan.attributes]
    return valid.select(plan.entity_key, AS_OF, DAY, *attrs)


# --------------------------------------------------------------------------- population + windows


def population_probes(plan: FeaturePlan, daily: DataFrame, dates: DataFrame, asof: DataFrame | None) -> DataFrame:
    """Probe rows (entity, as_of_date, _day, attributes) for the population rule.

    ``active``: the entity rows valid as of D. ``seen``: every entity with events in the read range,
    crossed with the dates; rows without events in the lookback are dropped after the window pass.
    """
    if plan.sources.population.rule == "active":
        if asof is None:
            raise ConfigError("population.rule 'active' needs sources.entities, found none")
        return asof.withColumn(PROBE, F.lit(True))
    probes = daily.select(plan.entity_key).distinct().join(F.broadcast(dates), how="cross")
    if asof is not None:
        probes = probes.join(asof.drop(AS_OF), on=[plan.entity_key, DAY], how="left")
    return probes.withColumn(PROBE, F.lit(True))


def with_window_features(rows: DataFrame, plan: FeaturePlan, daily_schema: T.StructType) -> DataFrame:
    """Add every aggregate feature (and ``_seen`` for the seen rule) as a RANGE window over ``_day``."""
    cols = {f.name: window_feature_column(f, plan.entity_key, daily_schema) for f in plan.aggregates}
    if plan.sources.population.rule == "seen":
        cols["_seen"] = F.sum(EVENT_COUNT).over(trailing_days(plan.entity_key, plan.population_days))
    return rows.withColumns(cols)


def filter_probes(rows: DataFrame, plan: FeaturePlan) -> DataFrame:
    """Keep the as_of rows (and, for the seen rule, those with events in the lookback)."""
    rows = rows.filter(F.col(PROBE))
    if plan.sources.population.rule == "seen":
        rows = rows.filter(F.col("_seen") > 0)
    return rows


def with_derived_features(df: DataFrame, plan: FeaturePlan) -> DataFrame:
    """Ratio, flag and custom features in declared order; each sees the features declared before it."""
    base = [plan.entity_key, AS_OF]
    done = [f.name for f in plan.features if f.kind in ("aggregate", "attribute")]
    for spec in plan.derived:
        if spec.kind == "custom":
            out = plan.customs[spec.name](df.select(*base, *done))
            if spec.name not in out.columns:
                raise ConfigError(
                    f"features.{spec.name}: expected {spec.function} to add column {spec.name!r}, "
                    f"found columns {out.columns}"
                )
            df = out
        else:
            df = df.withColumn(spec.name, row_feature_column(spec))
        done.append(spec.name)
    return df


def select_features(df: DataFrame, plan: FeaturePlan) -> DataFrame:
    """Output contract: entity key, ``as_of_date``, then the features in declared order (categoricals as strings)."""
    cols = [F.col(f.name).cast("string").alias(f.name) if f.categorical else F.col(f.name) for f in plan.features]
    return df.select(plan.entity_key, AS_OF, *cols)


def compute_features(
    plan: FeaturePlan, events: DataFrame, entities: DataFrame | None, dates: Sequence[dt.date]
) -> DataFrame:
    """Feature rows for every (entity in the population, D in ``dates``), point-in-time.

    ``events`` is the raw event table (key, timestamp, aggregated columns); ``entities`` the raw
    entity table or None. Returns ``entity_key, as_of_date, <features...>``.
    """
    spark = events.sparkSession
    ev = plan.events
    days = sorted(day_number(d) for d in set(dates))
    first_day, end_day = days[0] - plan.lookback_days, days[-1]
    dates_df = dates_frame(spark, dates)

    daily = (
        events.transform(filter_event_days, ev.timestamp, first_day, end_day)
        .transform(with_event_time, ev.key, ev.timestamp, plan.entity_key)
        .transform(filter_keyed, plan.entity_key)
        .transform(daily_aggregates, plan)
    )
    asof = entities.transform(entities_as_of, plan, dates_df) if entities is not None else None
    probes = population_probes(plan, daily, dates_df, asof)
    rows = (
        daily.withColumn(PROBE, F.lit(False))
        .unionByName(probes, allowMissingColumns=True)
        .transform(with_window_features, plan, daily.schema)
        .transform(filter_probes, plan)
    )
    return rows.transform(with_derived_features, plan).transform(select_features, plan)
