"""Configuration slice of feature preparation: sources and feature definitions."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import field_validator, model_validator

from driftline.config.base import Frozen, Identifier

DURATION = re.compile(r"^(\d+)d$")


class EventSource(Frozen):
    """Fact/event table: one row per event of an entity."""

    table: Identifier
    key: Identifier
    timestamp: Identifier


class EntitySource(Frozen):
    """Entity/dimension table with optional validity dates (slowly changing attributes)."""

    table: Identifier
    key: Identifier
    valid_from: Identifier | None = None
    valid_to: Identifier | None = None


class LabelSource(Frozen):
    """Label table: when the outcome of an entity became known and its value."""

    table: Identifier
    key: Identifier
    timestamp: Identifier
    value: Identifier


class SourcesConfig(Frozen):
    events: EventSource
    entities: EntitySource | None = None
    labels: LabelSource | None = None


AggregateName = Literal[
    "count", "sum", "mean", "min", "max", "stddev", "distinct_count", "last", "days_since_last"
]


class FeatureSpec(Frozen):
    """One feature. ``kind`` selects which of the other keys apply (checked below)."""

    name: Identifier
    kind: Literal["aggregate", "attribute", "ratio", "flag"]
    column: Identifier | None = None
    agg: AggregateName | None = None
    window: str | None = None
    numerator: Identifier | None = None
    denominator: Identifier | None = None
    op: Literal["eq", "ne", "lt", "le", "gt", "ge"] | None = None
    value: float | int | str | bool | None = None
    categorical: bool = False

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and not DURATION.match(v):
            raise ValueError(f"expected a window like '7d', found {v!r}")
        return v

    @model_validator(mode="after")
    def _kind_keys(self) -> FeatureSpec:
        needed = {
            "aggregate": ("agg", "window"),
            "attribute": ("column",),
            "ratio": ("numerator", "denominator"),
            "flag": ("column", "op", "value"),
        }[self.kind]
        missing = [k for k in needed if getattr(self, k) is None]
        if missing:
            raise ValueError(f"feature kind {self.kind!r} needs {', '.join(missing)}")
        if self.kind == "aggregate" and self.agg not in ("count", "days_since_last") and not self.column:
            raise ValueError(f"aggregate {self.agg!r} needs a column")
        return self
