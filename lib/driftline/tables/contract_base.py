"""The shape of a table contract (`TableContract`, `Column`) and the helpers the declarations in
`driftline.tables.contracts` are written with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from driftline import vocabulary as v
from driftline.errors import TableError


@dataclass(frozen=True)
class Column:
    name: str
    type: DataType
    doc: str
    nullable: bool = True

    def field(self) -> StructField:
        return StructField(self.name, self.type, self.nullable)


@dataclass(frozen=True)
class TableContract:
    """One table: ``name`` is the table name, or ``<model>__<suffix>`` for a per-model table."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...]
    key: tuple[str, ...]  # at most one row per key
    idempotency: str  # what one write replaces
    per_model: bool = False
    model_columns: str = ""  # per-model tables: the columns that come from the model's config
    values: dict[str, str] = field(default_factory=dict)  # column → its documented vocabulary

    def table(self, model: str | None = None) -> str:
        """The table's name (a per-model table needs the model)."""
        if not self.per_model:
            return self.name
        if not model:
            raise TableError(f"table {self.name}: a per-model table needs the model name")
        return self.name.replace("<model>", model)

    def schema(self, leading: Sequence[StructField] = (), trailing: Sequence[StructField] = ()) -> StructType:
        """The columns in table order; a per-model table's model columns go in ``leading``/``trailing``."""
        return StructType([*leading, *(c.field() for c in self.columns), *trailing])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def row(self, **values: Any) -> tuple[Any, ...]:
        """One row in column order, every column given by name (a missing or unknown one is an error)."""
        missing = [c for c in self.names if c not in values]
        unknown = [k for k in values if k not in self.names]
        if missing or unknown:
            raise TableError(f"table {self.name}: a row needs exactly the contract's columns: "
                             f"missing {missing}, unknown {unknown}")
        return tuple(values[c] for c in self.names)


S, D, F, L, INT = StringType(), DateType(), DoubleType(), LongType(), IntegerType()
B, TS = BooleanType(), TimestampType()


def _c(name: str, type_: DataType, doc: str, nullable: bool = True) -> Column:
    return Column(name, type_, doc, nullable)


def _provenance(run_doc: str) -> tuple[Column, ...]:
    return (
        _c(v.RUN_ID, S, run_doc, False),
        _c(v.CODE_VERSION, S, "driftline version (and git commit) that wrote the row; null on rows written "
           "before release 0.2 recorded it"),
        _c(v.CONFIG_HASH, S, "hash of the resolved configuration the row was computed under"),
    )
