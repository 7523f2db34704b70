"""Feature definitions → Spark expressions.

Windowed aggregates are computed in two steps so that a backfill over many dates stays cheap:

1. one row per (entity, UTC day) of *additive partial aggregates* (`daily_aggregate_columns`):
   event count, per-column count / sum / sum of squares / min / max, the latest (timestamp, value)
   pair, the set of distinct values, the newest event time;
2. per (entity, as_of day D), the partials of the days ``[D - window, D - 1]`` are combined by a
   Spark window function with a RANGE frame ``(-window, -1)`` over the day number
   (`window_feature_column`). The frame never includes day D itself: point-in-time by construction.

Row features (ratio, flag) are plain column expressions over earlier features; custom features
are named Python functions ``DataFrame -> DataFrame`` resolved here, at compile time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.errors import ConfigError
from driftline.features.spec import (
    EventSource,
    FeatureSpec,
    InferenceSource,
    LabelSource,
    SourcesConfig,
    window_days,
)
from driftline.tables.contracts import FEATURES
from driftline.vocabulary import LOGGED_SCORE, SCORE, SERVING_VERSION

log = logging.getLogger(__name__)

MICROS_PER_DAY = 86_400_000_000
DAY = "_day"  # internal: UTC day number (days since 1970-01-01) of an event or of an as_of_date
EVENT_COUNT = "_n"
NEWEST_US = "_newest_us"

NUMERIC_AGGS = ("sum", "mean", "stddev")
ORDERED_AGGS = ("min", "max")


@dataclass(frozen=True)
class FeaturePlan:
    """Compiled feature definitions of one model (built once, before any Spark action)."""

    entity_key: str
    sources: SourcesConfig
    features: tuple[FeatureSpec, ...]
    customs: dict[str, Callable[[DataFrame], DataFrame]] = field(default_factory=dict)

    @property
    def aggregates(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.kind == "aggregate")

    @property
    def attributes(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.kind == "attribute")

    @property
    def derived(self) -> tuple[FeatureSpec, ...]:
        """Ratio, flag and custom features, in declared order."""
        return tuple(f for f in self.features if f.kind in ("ratio", "flag", "custom"))

    @property
    def events(self) -> EventSource:
        """``sources.events`` (every model but a monitor-only one has it)."""
        if self.sources.events is None:
            raise ConfigError("sources.events: expected an events source for computed features, found none "
                              "(a monitor-only model's features come from sources.inference)")
        return self.sources.events

    @property
    def logged(self) -> tuple[FeatureSpec, ...]:
        """Columns of a monitor-only model's inference log (``sources.inference``)."""
        return tuple(f for f in self.features if f.kind == "logged")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def lookback_days(self) -> int:
        """Days before the first as_of_date whose events the run must read."""
        windows = [f.days or 0 for f in self.aggregates]
        pop = self.sources.population.lookback
        if self.sources.population.rule == "seen":
            windows.append(window_days(pop) if pop else max(windows, default=1))
        return max(windows, default=1)

    @property
    def population_days(self) -> int:
        pop = self.sources.population.lookback
        return window_days(pop) if pop else max((f.days or 0 for f in self.aggregates), default=1)

    def event_columns(self) -> list[str]:
        """Event-table columns the aggregates read (key and timestamp excluded)."""
        return sorted({f.column for f in self.aggregates if f.column})

    def entity_columns(self) -> list[str]:
        return sorted({f.column for f in self.attributes if f.column})


def compile_features(entity_key: str, sources: SourcesConfig, features: Sequence[FeatureSpec]) -> FeaturePlan:
    """Check cross-references and resolve custom functions; raise `ConfigError` on any problem."""
    declared: set[str] = set()
    customs: dict[str, Callable[[DataFrame], DataFrame]] = {}
    # the table's own columns; the score is profiled beside them; a monitor-only model's features table holds the
    # logged score too
    reserved = {entity_key, *FEATURES.names, SCORE, LOGGED_SCORE, SERVING_VERSION}
    if sources.labels is not None:
        reserved.add(sources.labels.value)
    for spec in features:
        if spec.name in reserved:
            raise ConfigError(
                f"features.{spec.name}: expected a name other than {sorted(reserved)}, found {spec.name!r}")
        refs = {"ratio": [spec.numerator, spec.denominator], "flag": [spec.column]}.get(spec.kind, [])
        unknown = [r for r in refs if r not in declared]
        if unknown:
            raise ConfigError(
                f"features.{spec.name}: expected references to features declared before it, "
                f"found unknown {', '.join(map(str, unknown))}"
            )
        if (spec.kind == "logged") != (sources.inference is not None):
            raise ConfigError(
                f"features.{spec.name}: expected kind logged for a monitor-only model (sources.inference) and only "
                f"there, found kind {spec.kind} {'with' if sources.inference else 'without'} sources.inference")
        if spec.kind == "logged" and sources.inference is not None:
            _check_logged_column(spec, sources.inference, sources.labels)
        if spec.kind == "attribute" and sources.entities is None:
            raise ConfigError(f"features.{spec.name}: attribute features need sources.entities, found none")
        if spec.kind == "custom":
            customs[spec.name] = _resolve(spec)
        declared.add(spec.name)
    return FeaturePlan(entity_key, sources, tuple(features), customs)


def _check_logged_column(spec: FeatureSpec, src: InferenceSource, labels: LabelSource | None) -> None:
    """A logged feature reads a feature column of the log: not its key, time, score or version column, nor the
    label column when the labels live in the log too (`ConfigError`)."""
    column = spec.column or spec.name
    roles = {src.key: "key", src.score: "score", **({src.date: "date"} if src.date else {}),
             **({src.timestamp: "timestamp"} if src.timestamp else {}), **({src.version: "version"} if src.version
                                                                           else {})}
    if labels is not None and labels.table == src.table:   # labels (and when they arrived) never reach features
        roles.update({labels.value: "label", labels.timestamp: "label timestamp", labels.as_of: "label as-of"})
    if column in roles:
        raise ConfigError(f"features.{spec.name}: expected a feature column of the inference log, found {column}, "
                          f"its {roles[column]} column")


def _resolve(spec: FeatureSpec) -> Callable[[DataFrame], DataFrame]:
    module_name, _, func_name = str(spec.function).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"features.{spec.name}.function: cannot import module {module_name!r}: {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(
            f"features.{spec.name}.function: expected a callable {func_name!r} in {module_name}, found "
            f"{type(func).__name__ if func is not None else 'nothing'}"
        )
    return func  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- schema expectations


def event_type_problems(plan: FeaturePlan, schema: T.StructType) -> list[str]:
    """What the aggregates need from the event schema and did not find (empty list: all good)."""
    types = {f.name: f.dataType for f in schema.fields}
    problems = []
    ev = plan.events
    if ev.timestamp in types and not isinstance(types[ev.timestamp], T.TimestampType):
        problems.append(f"{ev.timestamp}: expected timestamp, found {types[ev.timestamp].simpleString()}")
    for spec in plan.aggregates:
        col = spec.column
        if col is None or col not in types:
            continue
        dtype = types[col]
        if spec.agg in NUMERIC_AGGS and not isinstance(dtype, T.NumericType):
            problems.append(
                f"{col}: expected a numeric type for {spec.agg} ({spec.name}), found {dtype.simpleString()}")
        if spec.agg in ORDERED_AGGS and isinstance(dtype, (T.MapType, T.ArrayType, T.StructType)):
            problems.append(
                f"{col}: expected an orderable type for {spec.agg} ({spec.name}), found {dtype.simpleString()}")
    return problems


# --------------------------------------------------------------------------- step 1: daily partials


def _p(kind: str, column: str) -> str:
    return f"_{kind}__{column}"


def daily_aggregate_columns(plan: FeaturePlan) -> list[Column]:
    """Aggregate expressions of one (entity, day) group; reads ``_ts_us`` and the event columns."""
    exprs: dict[str, Column] = {
        EVENT_COUNT: F.count(F.lit(1)),
        NEWEST_US: F.max("_ts_us"),
    }
    for spec in plan.aggregates:
        c = spec.column
        if c is None:
            continue
        if spec.agg in ("count", "mean", "stddev"):
            exprs[_p("n", c)] = F.count(c)
        if spec.agg in ("sum", "mean", "stddev"):
            exprs[_p("s", c)] = F.sum(c)
        if spec.agg == "stddev":
            exprs[_p("ss", c)] = F.sum(F.col(c).cast("double") * F.col(c).cast("double"))
        if spec.agg == "min":
            exprs[_p("mn", c)] = F.min(c)
        if spec.agg == "max":
            exprs[_p("mx", c)] = F.max(c)
        if spec.agg == "distinct_count":
            exprs[_p("ds", c)] = F.collect_set(c)
        if spec.agg == "last":
            # Latest non-null value; a tie on the timestamp goes to the larger value (deterministic).
            exprs[_p("lst", c)] = F.max(F.when(F.col(c).isNotNull(), F.struct(F.col("_ts_us").alias("t"),
                                                                                F.col(c).alias("v"))))
    return [e.alias(n) for n, e in exprs.items()]


# --------------------------------------------------------------------------- step 2: windows over days


def trailing_days(entity_key: str, days: int) -> Window:
    """Frame of the ``days`` UTC days before the row's day (the row's own day excluded)."""
    return Window.partitionBy(entity_key).orderBy(DAY).rangeBetween(-days, -1)


def window_feature_column(spec: FeatureSpec, entity_key: str, daily_schema: T.StructType) -> Column:
    """The feature value at an as_of row, from the daily partials of its trailing window."""
    w = trailing_days(entity_key, int(spec.days or 0))
    c = spec.column
    agg = spec.agg
    if agg == "count":
        return F.coalesce(F.sum(EVENT_COUNT if c is None else _p("n", c)).over(w), F.lit(0)).cast("bigint")
    col_name = c or ""
    if agg == "days_since_last":
        return ((F.col(DAY).cast("long") * MICROS_PER_DAY - F.max(NEWEST_US).over(w)) / float(MICROS_PER_DAY))
    if agg == "sum":
        dtype = daily_schema[_p("s", col_name)].dataType
        return F.coalesce(F.sum(_p("s", col_name)).over(w), F.lit(0).cast(dtype))
    if agg == "mean":
        n = F.sum(_p("n", col_name)).over(w)
        return F.when(n > 0, F.sum(_p("s", col_name)).over(w).cast("double") / n)
    if agg == "stddev":
        n = F.sum(_p("n", col_name)).over(w).cast("double")
        s = F.sum(_p("s", col_name)).over(w).cast("double")
        ss = F.sum(_p("ss", col_name)).over(w)
        # Sample standard deviation (n - 1); clamp the rounding error of the sum-of-squares form.
        return F.when(n >= 2, F.sqrt(F.greatest((ss - s * s / n) / (n - 1), F.lit(0.0))))
    if agg == "min":
        return F.min(_p("mn", col_name)).over(w)
    if agg == "max":
        return F.max(_p("mx", col_name)).over(w)
    if agg == "distinct_count":
        return F.size(F.array_distinct(F.flatten(F.collect_list(_p("ds", col_name)).over(w)))).cast("bigint")
    if agg == "last":
        return F.max(_p("lst", col_name)).over(w).getField("v")
    raise ConfigError(f"features.{spec.name}: unknown aggregate {agg!r}")


# --------------------------------------------------------------------------- row features


_OPS: dict[str, Callable[[Column, Column], Column]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}


def row_feature_column(spec: FeatureSpec) -> Column:
    """Ratio or flag over earlier feature columns."""
    if spec.kind == "ratio":
        den = F.col(str(spec.denominator)).cast("double")
        return F.when(den.isNotNull() & (den != 0), F.col(str(spec.numerator)).cast("double") / den)
    col = F.col(str(spec.column))
    if spec.op == "is_null":
        return col.isNull()
    if spec.op == "not_null":
        return col.isNotNull()
    return F.coalesce(_OPS[str(spec.op)](col, F.lit(spec.value)), F.lit(False))
