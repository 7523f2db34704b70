"""Configuration slice of the data-quality gate (``quality:`` in the model config).

A check is a small frozen spec (what, where, bounds, severity), separate from the code that
computes it (`driftline.quality.checks`). Every check is evaluated once per as_of_date D on:

- ``events``: the events of D's input day (UTC day D-1, the newest day D's features use);
- ``entities``: the entity rows valid as of D;
- ``features``: the feature rows of D.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from driftline.spec import Frozen, Identifier

Target = Literal["events", "entities", "features"]
Severity = Literal["error", "warn"]

# Spark simple type names accepted in a schema contract (DataType.simpleString()).
TYPE_NAMES = (
    "string", "boolean", "tinyint", "smallint", "int", "bigint", "float", "double",
    "date", "timestamp", "timestamp_ntz", "binary",
)


class _Check(Frozen):
    name: Identifier | None = None  # default: <kind>_<target>_<columns>
    target: Target
    severity: Severity = "error"

    @property
    def check_name(self) -> str:
        return self.name or "_".join([self.kind, self.target, *self.columns_of()])  # type: ignore[attr-defined]

    def columns_of(self) -> list[str]:
        return []


class SchemaCheck(_Check):
    """Required columns and their Spark types (``bigint``, ``double``, ``string``, ``timestamp`` ...)."""

    kind: Literal["schema"]
    columns: dict[Identifier, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _types(self) -> SchemaCheck:
        bad = {c: t for c, t in self.columns.items() if t not in TYPE_NAMES and not t.startswith("decimal(")}
        if bad:
            raise ValueError(f"expected Spark type names ({', '.join(TYPE_NAMES)}, decimal(p,s)), found {bad}")
        return self


class _RowCheck(_Check):
    # Share of the checked rows allowed to violate (0: none). Violating rows always go to quarantine.
    max_fraction: float = Field(0.0, ge=0, le=1)
    # events only: also drop the violating events before the features are computed.
    drop: bool = False

    @model_validator(mode="after")
    def _drop_events_only(self) -> _RowCheck:
        if self.drop and self.target != "events":
            raise ValueError(
                f"drop: only events can be dropped before computing features, found target {self.target!r}")
        return self


class NotNullCheck(_RowCheck):
    kind: Literal["not_null"]
    columns: list[Identifier] = Field(min_length=1)

    def columns_of(self) -> list[str]:
        return list(self.columns)


class RangeCheck(_RowCheck):
    """``min <= column <= max`` (either bound optional); nulls pass (use not_null for them)."""

    kind: Literal["range"]
    column: Identifier
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("range check needs min, max or both, found neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range check: expected min <= max, found {self.min} > {self.max}")
        return self

    def columns_of(self) -> list[str]:
        return [self.column]


class AllowedValuesCheck(_RowCheck):
    """Column value in ``values`` (compared as strings); nulls pass."""

    kind: Literal["allowed_values"]
    column: Identifier
    values: list[str | int | float | bool] = Field(min_length=1)

    def columns_of(self) -> list[str]:
        return [self.column]


class UniqueCheck(_Check):
    """No two rows share ``columns`` (default for features: the entity key; rows of one date)."""

    kind: Literal["unique"]
    columns: list[Identifier] = Field(min_length=1)

    def columns_of(self) -> list[str]:
        return list(self.columns)


class RowCountCheck(_Check):
    """Row count of the date: at least ``min_rows``, and within ``[min_ratio, max_ratio]`` × the mean
    of the ``history`` previous dates (skipped while fewer than ``min_history`` are known)."""

    kind: Literal["row_count"]
    min_rows: int = Field(0, ge=0)
    history: int = Field(7, ge=1, le=366)
    min_history: int = Field(3, ge=1)
    min_ratio: float | None = Field(None, ge=0)
    max_ratio: float | None = Field(None, ge=0)


class FreshnessCheck(_Check):
    """The newest event before D 00:00 UTC is at most ``max_age_hours`` older than D 00:00 UTC."""

    kind: Literal["freshness"]
    target: Literal["events"] = "events"
    max_age_hours: float = Field(gt=0)


CheckSpec = Annotated[
    SchemaCheck | NotNullCheck | RangeCheck | AllowedValuesCheck | UniqueCheck | RowCountCheck | FreshnessCheck,
    Field(discriminator="kind"),
]


class QualityConfig(Frozen):
    """Data-quality checks run on sources and produced features before a commit."""

    checks: list[CheckSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> QualityConfig:
        seen: set[str] = set()
        dupes = sorted({c.check_name for c in self.checks if c.check_name in seen or seen.add(c.check_name)})
        if dupes:
            raise ValueError(f"check names must be unique, found repeated: {', '.join(dupes)} (set name:)")
        return self
