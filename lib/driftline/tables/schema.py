"""Schema and partition policy checked before every commit (delta-rs validates almost nothing)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DataType,
    DateType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from driftline.errors import TableError
from driftline.spec import IDENTIFIER

# Partition values are folder names and strings in the log: keep to types that print one way.
PARTITION_TYPES = (StringType, DateType, ByteType, ShortType, IntegerType, LongType, BooleanType)


def to_delta_json(schema: StructType) -> str:
    """Delta's schema string is Spark's StructType JSON."""
    return json.dumps(schema.jsonValue())


def from_delta_json(text: str) -> StructType:
    return StructType.fromJson(json.loads(text))


def as_nullable(schema: StructType) -> StructType:
    """Top-level fields made nullable, as delta-spark does for a table created by a DataFrame write."""
    return StructType([StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])


def type_text(data_type: DataType) -> str:
    return data_type.simpleString()


def check_partition_columns(table: str, schema: StructType, partition_by: Sequence[str]) -> None:
    """Partition columns exist, are distinct, are not all the columns, and have a supported type."""
    if len(set(partition_by)) != len(partition_by):
        raise TableError(f"table {table}: duplicate partition column in {list(partition_by)}")
    by_name = {f.name: f for f in schema.fields}
    for col in partition_by:
        if isinstance(col, str) and col.startswith(("_", ".")):
            # Folders named _x=... or .x=... are hidden files to Spark and Hadoop: rows would vanish.
            raise TableError(
                f"table {table}: partition column {col!r} starts with {col[0]!r}: expected a name starting "
                "with a letter (Spark and Hadoop skip folders starting with '_' or '.', hiding the rows)"
            )
        if not isinstance(col, str) or not IDENTIFIER.fullmatch(col):
            raise TableError(f"table {table}: partition column {col!r} is not an identifier")
        if col not in by_name:
            raise TableError(f"table {table}: partition column {col!r} not in columns {list(by_name)}")
        if not isinstance(by_name[col].dataType, PARTITION_TYPES):
            raise TableError(
                f"table {table}: partition column {col!r} has type {type_text(by_name[col].dataType)}, "
                "expected one of string, date, tinyint, smallint, int, bigint, boolean"
            )
    if len(partition_by) >= len(schema.fields):
        raise TableError(f"table {table}: at least one column must not be a partition column")


def check_same_partitioning(table: str, expected: Sequence[str], found: Sequence[str]) -> None:
    if list(expected) != list(found):
        raise TableError(
            f"table {table}: partition columns differ: table has {list(expected)}, write has {list(found)}"
        )


def merge_write_schema(
    table: str, table_schema: StructType, write_schema: StructType, allow_new_columns: bool
) -> StructType:
    """Schema to commit: the table's own, plus new nullable columns when allowed.

    Columns are matched by name. A missing column, a type change or a case-only rename is a
    `TableError` naming the column, the table's type and the type found.
    """
    table_fields = {f.name: f for f in table_schema.fields}
    lower = {f.name.lower(): f.name for f in table_schema.fields}
    write_names = {f.name for f in write_schema.fields}
    missing = [n for n in table_fields if n not in write_names]
    for field in write_schema.fields:
        known = table_fields.get(field.name)
        if known is None and field.name.lower() in lower:
            raise TableError(
                f"table {table}: column {field.name!r} differs only in case from existing column "
                f"{lower[field.name.lower()]!r}"
            )
        if known is not None and type_text(known.dataType) != type_text(field.dataType):
            raise TableError(
                f"table {table}: column {field.name!r} type change refused: "
                f"expected {type_text(known.dataType)}, found {type_text(field.dataType)}"
            )
    missing = [n for n in missing if n.lower() not in {w.lower() for w in write_names}]
    if missing:
        raise TableError(f"table {table}: columns missing from the write: {missing}")
    new = [f for f in write_schema.fields if f.name not in table_fields]
    if new and not allow_new_columns:
        raise TableError(
            f"table {table}: new columns {[f.name for f in new]} refused "
            "(set storage.allow_new_columns: true to add new nullable columns)"
        )
    return StructType(
        list(table_schema.fields) + [StructField(f.name, f.dataType, True, f.metadata) for f in new]
    )


def check_compatible_declared(table: str, existing: StructType, declared: StructType) -> None:
    """create_if_absent on an existing table: the declared columns must exist with the same types."""
    have = {f.name: f for f in existing.fields}
    for field in declared.fields:
        if field.name not in have:
            raise TableError(f"table {table}: exists without declared column {field.name!r}")
        if type_text(have[field.name].dataType) != type_text(field.dataType):
            raise TableError(
                f"table {table}: column {field.name!r} type change refused: "
                f"expected {type_text(have[field.name].dataType)}, found {type_text(field.dataType)}"
            )


def partition_value_text(value: Any) -> str | None:
    """A Python partition value → Delta's string form (None stays None, i.e. null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        raise TableError(f"partition value {value!r}: timestamps are not supported as partition values")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | str | Decimal):
        return str(value)
    raise TableError(f"partition value {value!r} of type {type(value).__name__} is not supported")


def canonical_partition_text(data_type: DataType, text: str | None) -> str | None:
    """Normalize a string partition value for comparison (e.g. int "05" → "5", date checked)."""
    if text is None:
        return None
    try:
        if isinstance(data_type, ByteType | ShortType | IntegerType | LongType):
            return str(int(text))
        if isinstance(data_type, DateType):
            return dt.date.fromisoformat(text).isoformat()
        if isinstance(data_type, BooleanType):
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower()
    except ValueError:
        raise TableError(f"partition value {text!r} is not a valid {type_text(data_type)}") from None
    return text


def normalize_partitions(
    table: str, schema: StructType, partition_by: Sequence[str], partitions: Iterable[Mapping[str, Any]]
) -> list[tuple[str | None, ...]]:
    """Explicit partition dicts → tuples of canonical strings in ``partition_by`` order."""
    types = {f.name: f.dataType for f in schema.fields}
    out: list[tuple[str | None, ...]] = []
    for spec in partitions:
        if set(spec) != set(partition_by):
            raise TableError(
                f"table {table}: partition {dict(spec)!r} must name exactly the partition columns {list(partition_by)}"
            )
        out.append(
            tuple(canonical_partition_text(types[c], partition_value_text(spec[c])) for c in partition_by)
        )
    return sorted(set(out), key=repr)
