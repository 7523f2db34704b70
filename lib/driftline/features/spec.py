"""Configuration slice of feature preparation: sources, population and feature definitions.

Every model is frozen and forbids unknown keys. Cross-references between features (a ratio's
numerator, a flag's column) are checked when the features are compiled (`driftline.features.compile`),
still before any Spark action.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from driftline.spec import Frozen, Identifier

DURATION = re.compile(r"^([1-9]\d{0,3})d$")
FUNCTION_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def window_days(window: str) -> int:
    """Number of whole UTC days in a window string such as ``'30d'``."""
    match = DURATION.match(window)
    if not match:
        raise ValueError(f"expected a window like '7d' (1..9999 days), found {window!r}")
    return int(match.group(1))


class EventSource(Frozen):
    """Fact/event table: one row per event of an entity, with an event timestamp (TIMESTAMP, UTC instant)."""

    table: Identifier
    key: Identifier
    timestamp: Identifier
    # R7: a date whose input day (D-1, UTC) holds no event fails the job unless this is true.
    allow_empty: bool = False


class EntitySource(Frozen):
    """Entity/dimension table with optional validity dates (slowly changing attributes).

    A row is valid as of D when ``valid_from <= D`` and (``valid_to`` is null or ``D < valid_to``);
    DATE columns compare as calendar dates, TIMESTAMP columns against the instant D 00:00 UTC.
    """

    table: Identifier
    key: Identifier
    valid_from: Identifier | None = None
    valid_to: Identifier | None = None

    @model_validator(mode="after")
    def _validity_pair(self) -> EntitySource:
        if self.valid_to is not None and self.valid_from is None:
            raise ValueError("valid_to needs valid_from as well, found only valid_to")
        return self


class LabelSource(Frozen):
    """Label table: when the outcome of an entity became known and its value (never read by features).

    One row per (entity, as-of date) the outcome is about: ``as_of`` (a DATE, or a TIMESTAMP cast to its UTC
    date) is the date of the feature row the label belongs to — the day the prediction was made — and
    ``timestamp`` the instant the outcome became known (a label is used only once it has matured: known before
    the run date). Several rows of one (entity, as-of date): the latest known wins."""

    table: Identifier
    key: Identifier
    timestamp: Identifier
    value: Identifier
    as_of: Identifier = "as_of_date"


class InferenceSource(Frozen):
    """An inference log written by someone else's serving or batch code: one row per prediction, the features the
    model was given and the score it returned (a monitor-only model: driftline ingests, profiles and judges these
    rows; it trains and scores nothing). ``date`` (a DATE) or ``timestamp`` (a TIMESTAMP, taken as its UTC date)
    says which as_of_date a row belongs to; with ``timestamp`` the latest row of an (entity, date) wins. ``version``:
    the log's column naming the serving model's version, kept as ``serving_version`` (a segment column: per-version
    performance, drift and quality rows when ``monitoring.segments`` names it)."""

    table: Identifier
    key: Identifier
    score: Identifier
    date: Identifier | None = None
    timestamp: Identifier | None = None
    version: Identifier | None = None   # the serving model's own version label: copied as ``serving_version``

    @model_validator(mode="after")
    def _one_time_column(self) -> InferenceSource:
        if (self.date is None) == (self.timestamp is None):
            raise ValueError("expected exactly one of date or timestamp, found "
                             f"{'both' if self.date else 'neither'}")
        return self


class PopulationConfig(Frozen):
    """Which entities get a feature row on D.

    ``active``: entities with an entity-table row valid as of D. ``seen``: entities with at least
    one event in the ``lookback`` days before D (default: the longest feature window).
    """

    rule: Literal["active", "seen"] = "seen"
    lookback: str | None = None

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, v: str | None) -> str | None:
        if v is not None:
            window_days(v)
        return v


class SourcesConfig(Frozen):
    """Where a model's rows come from: ``events`` (+ ``entities``) for features driftline computes, or
    ``inference`` for a monitor-only model whose features and scores were logged elsewhere; ``labels`` either way."""

    events: EventSource | None = None
    inference: InferenceSource | None = None
    entities: EntitySource | None = None
    labels: LabelSource | None = None
    population: PopulationConfig = Field(default_factory=PopulationConfig)

    @model_validator(mode="after")
    def _consistent(self) -> SourcesConfig:
        if (self.events is None) == (self.inference is None):
            raise ValueError("expected exactly one of events (features computed by driftline) or inference (a "
                             f"monitor-only model's logged rows), found {'both' if self.events else 'neither'}")
        if self.inference is not None:
            if self.entities is not None:
                raise ValueError("a monitor-only model (inference) reads its features from the inference log, "
                                 "expected no entities source, found one")
            return self
        if self.population.rule == "active" and self.entities is None:
            raise ValueError("population.rule 'active' needs an entities source, found none")
        if self.labels is not None:
            # Labels are for training/monitoring only; a feature source must never be the label table.
            used = {source.table for source in (self.events, self.entities) if source is not None}
            if self.labels.table in used:
                raise ValueError(
                    f"labels.table {self.labels.table!r} is also a feature source; "
                    "expected the label table to be separate (labels must never be visible to features)"
                )
        return self


AggregateName = Literal[
    "count", "sum", "mean", "min", "max", "stddev", "distinct_count", "last", "days_since_last"
]
FlagOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "is_null", "not_null"]


class FeatureSpec(Frozen):
    """One feature. ``kind`` selects which of the other keys apply (checked below).

    - ``aggregate``: ``agg`` of ``column`` over the events of the trailing ``window`` before D.
    - ``attribute``: ``column`` of the entity row valid as of D.
    - ``ratio``: ``numerator / denominator`` (two earlier features); null when the denominator is 0 or null.
    - ``flag``: ``column`` (an earlier feature) compared with ``value`` by ``op``; false when the input is null.
    - ``custom``: ``function`` (``package.module:name``), a ``DataFrame -> DataFrame`` that adds column ``name``.
    - ``logged``: ``column`` (default: the feature's name) of ``sources.inference``, as the model was given it
      (monitor-only models, and only those).
    """

    name: Identifier
    kind: Literal["aggregate", "attribute", "ratio", "flag", "custom", "logged"]
    column: Identifier | None = None
    agg: AggregateName | None = None
    window: str | None = None
    numerator: Identifier | None = None
    denominator: Identifier | None = None
    op: FlagOp | None = None
    value: float | int | str | bool | None = None
    function: str | None = None
    categorical: bool = False
    description: str = ""

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None:
            window_days(v)
        return v

    @field_validator("function")
    @classmethod
    def _function(cls, v: str | None) -> str | None:
        if v is not None and not FUNCTION_REF.match(v):
            raise ValueError(f"expected 'package.module:function', found {v!r}")
        return v

    @model_validator(mode="after")
    def _kind_keys(self) -> FeatureSpec:
        needed = {
            "aggregate": ("agg", "window"),
            "attribute": ("column",),
            "ratio": ("numerator", "denominator"),
            "flag": ("column", "op"),
            "custom": ("function",),
            "logged": (),
        }[self.kind]
        missing = [k for k in needed if getattr(self, k) is None]
        if missing:
            raise ValueError(f"feature kind {self.kind!r} needs {', '.join(missing)}, found them missing")
        allowed = {
            "aggregate": {"agg", "window", "column"},
            "attribute": {"column"},
            "ratio": {"numerator", "denominator"},
            "flag": {"column", "op", "value"},
            "custom": {"function"},
            "logged": {"column"},
        }[self.kind]
        stray = [k for k in ("column", "agg", "window", "numerator", "denominator", "op", "value", "function")
                 if k not in allowed and getattr(self, k) is not None]
        if stray:
            raise ValueError(f"feature kind {self.kind!r} does not use {', '.join(stray)}")
        if self.kind == "aggregate":
            if self.agg in ("count", "days_since_last"):
                if self.agg == "days_since_last" and self.column is not None:
                    raise ValueError("aggregate 'days_since_last' counts any event, expected no column")
            elif self.column is None:
                raise ValueError(f"aggregate {self.agg!r} needs a column, found none")
        if self.kind == "flag":
            if self.op in ("is_null", "not_null"):
                if self.value is not None:
                    raise ValueError(f"flag op {self.op!r} takes no value, found {self.value!r}")
            elif self.value is None:
                raise ValueError(f"flag op {self.op!r} needs a value, found none")
        return self

    @property
    def days(self) -> int | None:
        """Window length in days (aggregates only)."""
        return window_days(self.window) if self.window else None
